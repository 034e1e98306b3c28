"""Batched sampling of responses with the KV cache, reporting whether each one ended.

prefpipe's own sampling loop over a causal LM's forward (any HF causal LM, LoRA-wrapped or not)
rather than `model.generate`: the prompt is read once per prompt and its cache repeated for the
samples, the loop stops as soon as every row has emitted EOS, the one host sync per token is that
all-ended check, and the log-prob of each sampled token under the unscaled logits is recorded on
the way (the RL loop's behaviour log-probs: no second forward). `sample_responses` sorts prompts
by length before batching them, so that rows of a batch need little left padding.

Sampling applies exactly the `SamplingParams` knobs, in HF's order (temperature, top-k, top-p),
and nothing from the model's own generation_config; draws come from a generator seeded by `seed`
(the global RNG is left alone), so the same seed gives the same tokens on the same machine.

Long because the loop, its cache handling and the prompt fitting and bucketing around it are one
job, turning prompts into samples, and read best together."""
from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass

import torch

from prefpipe.errors import ConfigError
from prefpipe.models.formatting import encode_prompt_within

log = logging.getLogger("prefpipe")
ENDED_SHARE_TO_DROP = 0.25  # rows that ended leave the batch once they are this share of it


@dataclass(frozen=True)
class Sample:
    prompt_index: int
    sample_index: int
    response: str
    finished: bool  # emitted EOS before max_new_tokens
    num_tokens: int
    prompt_truncated: bool = False  # the prompt lost its start to fit (see `encode_prompts`)


@dataclass(frozen=True)
class TokenSample:
    prompt_ids: list[int]
    response_ids: list[int]  # ends in EOS when finished
    finished: bool


@dataclass(frozen=True)
class SampledBatch:
    """One batch of samples as tensors; row r answers prompt r // num_samples."""

    tokens: torch.Tensor  # (B, N) response tokens, pad after a row's end
    lengths: torch.Tensor  # (B,) response tokens, EOS included
    finished: torch.Tensor  # (B,) bool: the row emitted EOS
    logprobs: torch.Tensor | None  # (B, N) float32 log p(token) under the unscaled logits, 0 after the end


def _forward_arguments(model) -> set[str]:
    """The keyword names the underlying causal LM's forward takes (peft wrappers see through)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return set(inspect.signature(base.forward).parameters)


def _cache_of(out):
    """The KV cache a forward returned (`cache` since transformers 5.x, `past_key_values` before)."""
    cache = out.get("cache")
    return out.get("past_key_values") if cache is None else cache


def warp_logits(logits: torch.Tensor, sampling) -> torch.Tensor:
    """Temperature, then top-k, then top-p (nucleus) filtering, as HF's logits warpers do."""
    if sampling.temperature != 1.0:
        logits = logits / sampling.temperature
    if sampling.top_k and sampling.top_k < logits.shape[-1]:
        kth = torch.topk(logits, sampling.top_k).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if sampling.top_p < 1.0:
        ascending, order = torch.sort(logits, descending=False)
        drop = ascending.softmax(-1).cumsum(-1) <= 1 - sampling.top_p
        drop[:, -1] = False  # the most likely token always stays
        logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return logits


def draw_tokens(probs: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """One token per row of `probs` (B, V) by inverse CDF at `uniform` (B, 1) in [0, 1): one
    draw per row, where `torch.multinomial` draws one per vocabulary entry (a sixth of a CPU step
    at V = 1024, and most of it at a 100K vocabulary)."""
    cdf = probs.cumsum(-1)
    point = uniform.to(cdf.dtype) * cdf[:, -1:]
    return torch.searchsorted(cdf, point, right=True).squeeze(1).clamp_(max=probs.shape[-1] - 1)


class _Stepper:
    """One causal LM's forward passes for sampling: the prompts once, then one token at a time.

    Left-padded rows get position ids counted over their real tokens, as `generate` gives them.
    Without the cache (`use_cache` False: the check that the cache changes nothing) every step
    reads the whole rows again."""

    def __init__(self, model, input_ids, attention, max_new_tokens: int, use_cache: bool):
        names = _forward_arguments(model)
        self.model, self.use_cache, self.cache = model, use_cache, None
        self.cache_name = "cache" if "cache" in names else "past_key_values"
        self.with_positions = "position_ids" in names
        self.last_only = {"logits_to_keep": 1} if "logits_to_keep" in names else {}
        self.ids, self.width = input_ids, input_ids.shape[1]
        self.attention = torch.cat([attention, attention.new_ones(len(attention), max_new_tokens)], 1)
        self.positions = (self.attention.cumsum(-1) - 1).clamp(min=0)

    def _logits(self, ids: torch.Tensor, start: int) -> torch.Tensor:
        """float32 next-token logits (B, V) of `ids`, which hold positions start .. width-1."""
        kwargs = {"attention_mask": self.attention[:, :self.width], "use_cache": self.use_cache,
                  **self.last_only}
        if self.with_positions:
            kwargs["position_ids"] = self.positions[:, start:self.width]
        if self.cache is not None:
            kwargs[self.cache_name] = self.cache
        out = self.model(input_ids=ids, **kwargs)
        self.cache = _cache_of(out) if self.use_cache else None
        return out.logits[:, -1, :].float()

    def _repeat_rows(self, repeats: int) -> None:
        if repeats == 1:
            return
        self.ids, self.attention, self.positions = (
            t.repeat_interleave(repeats, 0) for t in (self.ids, self.attention, self.positions))

    def prompt(self, repeats: int) -> torch.Tensor:
        """Next-token logits after the prompts, each prompt's row repeated `repeats` times: with
        the cache each prompt is read once and its cache repeated."""
        if not self.use_cache:
            self._repeat_rows(repeats)
            return self._logits(self.ids, 0)
        logits = self._logits(self.ids, 0)
        if repeats > 1 and hasattr(self.cache, "batch_repeat_interleave"):
            self.cache.batch_repeat_interleave(repeats)
            logits = logits.repeat_interleave(repeats, 0)
        elif repeats > 1:  # a cache that cannot repeat rows: read the repeated prompts instead
            self.cache = None
            self._repeat_rows(repeats)
            return self._logits(self.ids, 0)
        self._repeat_rows(repeats)
        return logits

    def can_select(self) -> bool:
        return not self.use_cache or hasattr(self.cache, "batch_select_indices")

    def select(self, keep: torch.Tensor) -> None:
        """Keep only the rows `keep` (indices), cache included."""
        self.attention, self.positions = self.attention[keep], self.positions[keep]
        if self.use_cache:
            self.cache.batch_select_indices(keep)
        else:
            self.ids = self.ids[keep]

    def next(self, tokens: torch.Tensor) -> torch.Tensor:
        """Next-token logits after `tokens` (B,) joined every row."""
        self.width += 1
        if self.use_cache:
            return self._logits(tokens[:, None], self.width - 1)
        self.ids = torch.cat([self.ids, tokens[:, None]], dim=1)
        return self._logits(self.ids, 0)


def left_padded(prompt_ids: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input ids, attention mask) of the prompts, left-padded so that their ends line up."""
    width = max(len(ids) for ids in prompt_ids)
    input_ids = torch.full((len(prompt_ids), width), pad, dtype=torch.long)
    attention = torch.zeros_like(input_ids)
    for i, ids in enumerate(prompt_ids):
        input_ids[i, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
        attention[i, width - len(ids):] = 1
    return input_ids, attention


class _Drawn:
    """The output tensors of `sample_batch`, filled a step at a time for the rows still drawing."""

    def __init__(self, rows: int, steps: int, pad: int, device, with_logprobs: bool):
        self.tokens = torch.full((rows, steps), pad, dtype=torch.long, device=device)
        self.logprobs = torch.zeros((rows, steps), device=device) if with_logprobs else None
        self.lengths = torch.zeros(rows, dtype=torch.long, device=device)
        self.finished = torch.zeros(rows, dtype=torch.bool, device=device)

    def record(self, live, step: int, drawn, logits, ended, eos: int) -> torch.Tensor:
        """Keep step `step`'s tokens `drawn` of the output rows `live` (pad where a row had
        `ended`); returns which of them have ended now."""
        self.tokens[live, step] = drawn
        if self.logprobs is not None:
            chosen = logits.log_softmax(-1).gather(1, drawn[:, None]).squeeze(1)
            self.logprobs[live, step] = chosen.masked_fill(ended, 0.0)
        self.lengths[live] += ~ended
        ended = ended | (drawn == eos)
        self.finished[live] = ended
        return ended

    def batch(self) -> SampledBatch:
        used = int(self.lengths.max())
        return SampledBatch(self.tokens[:, :used], self.lengths, self.finished,
                            None if self.logprobs is None else self.logprobs[:, :used])


@torch.inference_mode()
def sample_batch(model, tokenizer, prompt_ids: list[list[int]], num_samples: int, sampling,
                 seed: int, precision: str = "fp32", with_logprobs: bool = False,
                 use_cache: bool = True) -> SampledBatch:
    """`num_samples` responses to each prompt as one batch of tensors, seeded by `seed`.

    Once a quarter of the rows still in the batch have ended they leave it (their cache too), so
    the steps after run on the rows still drawing; every row's uniform is drawn at every step, so
    this changes no token. `precision` "bf16" runs the forwards under bf16 autocast (as the
    trainers' `runtime.precision`); `with_logprobs` records each sampled token's log-prob under
    the unscaled logits."""
    model.eval()
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    eos = -1 if eos is None else eos  # no EOS: every row runs to max_new_tokens
    device = next(model.parameters()).device
    input_ids, attention = (t.to(device) for t in left_padded(prompt_ids, pad))
    rows, steps = len(prompt_ids) * num_samples, sampling.max_new_tokens
    draws = torch.Generator(device=device).manual_seed(seed)
    out = _Drawn(rows, steps, pad, device, with_logprobs)
    live = torch.arange(rows, device=device)  # the output rows still in the batch
    ended = torch.zeros(rows, dtype=torch.bool, device=device)  # of the live rows
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        stepper = _Stepper(model, input_ids, attention, steps, use_cache)
        logits = stepper.prompt(num_samples)
        for step in range(steps):
            uniform = torch.rand((rows, 1), generator=draws, device=device)[live]
            drawn = draw_tokens(warp_logits(logits, sampling).softmax(-1), uniform)
            drawn = drawn.masked_fill(ended, pad)
            ended = out.record(live, step, drawn, logits, ended, eos)
            count = int(ended.sum())  # the one host sync of a step
            if step + 1 == steps or count == len(live):
                break
            if count >= ENDED_SHARE_TO_DROP * len(live) and stepper.can_select():
                keep = (~ended).nonzero().squeeze(1)
                stepper.select(keep)
                live, ended, drawn = live[keep], ended[keep], drawn[keep]
            logits = stepper.next(drawn)
    return out.batch()


def sample_token_ids(model, tokenizer, prompt_ids: list[list[int]], num_samples: int, sampling,
                     seed: int, precision: str = "fp32", use_cache: bool = True
                     ) -> list[TokenSample]:
    """`num_samples` sampled responses per prompt as token ids, one KV-cached batch, seeded by `seed`.

    Rows come prompt by prompt: the samples of prompt i are rows i*num_samples .. +num_samples-1."""
    drawn = sample_batch(model, tokenizer, prompt_ids, num_samples, sampling, seed, precision,
                         use_cache=use_cache)
    return token_samples(drawn, prompt_ids, num_samples)


def token_samples(drawn: SampledBatch, prompt_ids: list[list[int]], num_samples: int
                  ) -> list[TokenSample]:
    """`drawn`'s rows as TokenSamples, each response cut at its end."""
    return [TokenSample(prompt_ids[row // num_samples], tokens[:length], finished)
            for row, (tokens, length, finished) in enumerate(zip(
                drawn.tokens.tolist(), drawn.lengths.tolist(), drawn.finished.tolist()))]


def sampling_device() -> torch.device:
    """Where a stage samples: the GPU where there is one (CUDA), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def on_sampling_device(model):
    """`model` moved to the GPU where there is one; untouched on a CPU-only machine."""
    return model.to(sampling_device()) if torch.cuda.is_available() else model


def model_positions(model) -> int | None:
    """The positions `model`'s config declares (GPT-2's n_positions answers to this name too)."""
    return getattr(getattr(model, "config", None), "max_position_embeddings", None)


def encode_prompts(tokenizer, prompts: list[str], max_length: int, max_new_tokens: int
                   ) -> tuple[list[list[int]], list[bool]]:
    """(prompt ids, whether each was cut): each prompt fits in `max_length` positions beside
    `max_new_tokens` sampled ones, longer prompts keeping their end (`encode_prompt_within`)."""
    room = max_length - max_new_tokens
    if room < 1:
        raise ConfigError(f"sampling.max_new_tokens {max_new_tokens} leaves no room for a prompt in "
                          f"{max_length} positions (model.n_positions); set it below {max_length}")
    fitted = [encode_prompt_within(tokenizer, p, room) for p in prompts]
    return [ids for ids, _ in fitted], [cut for _, cut in fitted]


def warn_truncated(count: int, total: int, max_length: int, max_new_tokens: int, knob: str) -> None:
    """One warning for the `count` of `total` prompts that `encode_prompts` cut; `knob` is the
    dotted params key of the sampler's max_new_tokens. Nothing when none was cut."""
    if count:
        log.warning("%d of %d prompts are longer than the %d tokens model.n_positions %d leaves "
                    "beside %s %d: they keep their last %d tokens; raise model.n_positions (up to "
                    "the positions the model reads) or lower %s to keep more", count, total,
                    max_length - max_new_tokens, max_length, knob, max_new_tokens,
                    max_length - max_new_tokens, knob)


def truncated_prompts(samples: list[Sample]) -> int:
    """How many distinct prompts of `samples` were cut to fit."""
    return len({s.prompt_index for s in samples if s.prompt_truncated})


def length_buckets(prompt_ids: list[list[int]], batch_size: int) -> list[list[int]]:
    """Prompt indices in batches of `batch_size`, shortest prompts first (ties in order), so that
    the prompts of a batch are of like length and need little left padding."""
    order = sorted(range(len(prompt_ids)), key=lambda i: len(prompt_ids[i]))
    return [order[start: start + batch_size] for start in range(0, len(order), batch_size)]


def sample_responses(model, tokenizer, prompts: list[str], num_samples: int, sampling, seed: int,
                     progress=None, max_length: int | None = None, precision: str = "fp32"
                     ) -> list[Sample]:
    """`num_samples` responses per prompt, in prompt order; batches of like-length prompts, each
    seeded from `seed` and its place in the length order, so output is stable. `precision`: as
    `sample_batch`'s, on the device the model is on.

    A prompt longer than `max_length` (default: the model's positions) less max_new_tokens keeps
    its end and is marked `prompt_truncated`; callers log `warn_truncated` once."""
    limits = [n for n in (max_length, model_positions(model)) if n]  # none known: nothing is cut
    special = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    encoded, cut = encode_prompts(tokenizer, prompts, min(limits, default=1 << 30),
                                  sampling.max_new_tokens)
    by_prompt: dict[int, list[Sample]] = {}
    for number, chunk in enumerate(length_buckets(encoded, sampling.batch_size)):
        drawn = sample_token_ids(model, tokenizer, [encoded[i] for i in chunk], num_samples,
                                 sampling, seed * 1_000_003 + number * sampling.batch_size,
                                 precision)
        for row, sample in enumerate(drawn):
            index = chunk[row // num_samples]
            tokens = [t for t in sample.response_ids if t not in special]
            by_prompt.setdefault(index, []).append(Sample(
                index, row % num_samples, tokenizer.decode(tokens, skip_special_tokens=True).strip(),
                sample.finished, len(tokens), cut[index]))
        if progress is not None:
            progress(len(chunk))
    return [sample for index in range(len(prompts)) for sample in by_prompt[index]]
