"""Tokens/s of prefpipe's sampler against HF `model.generate` on the same prompts and model.

Two settings from params.yaml: the generate stage's (generate.sampling, generate.candidates_per_prompt
samples per prompt) and evaluation's (evaluate.sampling, one sample per prompt). The model is the
embedded GPT-2 of params.yaml's model section (random init, or --sft-steps of SFT on the world's
demonstrations so that responses end as trained ones do), or --model PATH (a HF folder with its
tokenizer). Both sides get the same world prompts, encoded and cut to fit the same way, the same
sampling knobs and batch size, and decode what they drew: prefpipe through `sample_responses` (its
own KV-cached loop, length-bucketed batches), HF through `model.generate(do_sample=True, ...)` on
the batches in prompt order with HF's defaults otherwise (how prefpipe sampled before). A figure is
generated tokens (EOS included) per second, the median of --repeats runs after a warm-up batch,
on --device (default: the GPU where there is one). --precision fp32,bf16 measures both samplers at
each precision in turn (bf16: the forwards under bf16 autocast on both sides, as `precision`
"bf16" runs prefpipe's sampler); "vs fp32" compares a sampler with itself at fp32.

Run: .venv/bin/python bench/generation.py [--threads 2] [--prompts 256] [--repeats 3]
     [--sft-steps 0] [--model PATH] [--device cpu|cuda] [--precision fp32|bf16|fp32,bf16]"""
from __future__ import annotations

import argparse
import functools
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prefpipe.config import load_params  # noqa: E402
from prefpipe.models.formatting import prompt_text  # noqa: E402
from prefpipe.models.generation import (  # noqa: E402
    encode_prompts,
    left_padded,
    sample_responses,
    sampling_device,
)
from prefpipe.models.io import build_embedded_lm, load_causal_lm, load_tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def embedded_world(params, sft_steps: int, workdir: Path):
    """(tokenizer, model, prompt texts) of the default world, as prepare and sft make them."""
    from prefpipe.world.catalog import to_world_prompt, world_prompt_rows
    from prefpipe.world.corpus import sft_corpus
    from prefpipe.world.tokenizer import train_tokenizer

    rows = world_prompt_rows(params.world.max_operand, params.data.heldout_fraction, params.seed)
    train = [to_world_prompt(r) for r in rows if r["split"] == "train"]
    corpus = sft_corpus(train, max(2000, sft_steps * 64), params.world, params.seed)
    texts = [prompt_text(None, c["prompt"]) + " " + c["response"] for c in corpus]
    train_tokenizer(texts + [r["prompt"] for r in rows],
                    params.model.vocab_size).save_pretrained(workdir)
    tokenizer = load_tokenizer(workdir, params.model.prompt_format)
    model = build_embedded_lm(params.model, tokenizer, params.seed)
    if sft_steps:
        from prefpipe.config.schema import OptimParams
        from prefpipe.train.sft import train_sft

        optim = OptimParams(epochs=1.0, batch_size=64, lr=3e-3, warmup_steps=5)
        train_sft(model, tokenizer, corpus[: sft_steps * 64], optim, params.model.n_positions,
                  params.seed)
    return tokenizer, model.eval(), [r["prompt"] for r in rows]


def prefpipe_tokens(model, tokenizer, texts, n, sampling, seed, max_length,
                    precision: str = "fp32") -> int:
    samples = sample_responses(model, tokenizer, texts, n, sampling, seed, max_length=max_length,
                               precision=precision)
    return sum(s.num_tokens + s.finished for s in samples)


def hf_tokens(model, tokenizer, texts, n, sampling, seed, max_length, precision: str = "fp32"
              ) -> int:
    """HF `generate` on the batches in prompt order, decoded as prefpipe decodes; generated tokens."""
    encoded, _ = encode_prompts(tokenizer, texts, max_length, sampling.max_new_tokens)
    eos, total = tokenizer.eos_token_id, 0
    for start in range(0, len(encoded), sampling.batch_size):
        ids, attention = (t.to(model.device) for t in left_padded(
            encoded[start: start + sampling.batch_size], tokenizer.pad_token_id))
        torch.manual_seed(seed + start)
        with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = model.generate(input_ids=ids, attention_mask=attention, do_sample=True,
                                 temperature=sampling.temperature, top_k=sampling.top_k or None,
                                 top_p=sampling.top_p, max_new_tokens=sampling.max_new_tokens,
                                 num_return_sequences=n, eos_token_id=eos,
                                 pad_token_id=tokenizer.pad_token_id)[:, ids.shape[1]:]
        is_eos = out == eos
        ended = is_eos.any(1)
        lengths = torch.where(ended, is_eos.int().argmax(1) + 1, out.shape[1]).tolist()
        tokenizer.batch_decode([row[:k] for row, k in zip(out.tolist(), lengths)],
                               skip_special_tokens=True)
        total += sum(lengths)
    return total


def measure(sampler, model, tokenizer, texts, n, sampling, repeats: int, max_length) -> tuple:
    """(median tokens per wall second, per CPU second of this process, tokens of a run) over
    `repeats` runs, after one warm-up batch. CPU seconds show the work on a shared machine."""
    sampler(model, tokenizer, texts[: sampling.batch_size], n, sampling, 0, max_length)
    wall, cpu, tokens = [], [], 0
    for repeat in range(repeats):
        began, began_cpu = time.perf_counter(), time.process_time()
        tokens = sampler(model, tokenizer, texts, n, sampling, repeat + 1, max_length)
        wall.append(tokens / (time.perf_counter() - began))
        cpu.append(tokens / (time.process_time() - began_cpu))
    return statistics.median(wall), statistics.median(cpu), tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sft-steps", type=int, default=0, help="SFT steps of the embedded model")
    parser.add_argument("--model", help="a HF causal LM folder (with its tokenizer) instead")
    parser.add_argument("--device", default=str(sampling_device()))
    parser.add_argument("--precision", default="fp32",
                        help="fp32, bf16, or both comma-separated (each measured in turn)")
    args = parser.parse_args()
    precisions = args.precision.split(",")
    if not set(precisions) <= {"fp32", "bf16"}:
        parser.error(f"--precision takes fp32 and/or bf16, got {args.precision!r}")
    torch.set_num_threads(args.threads)
    params = load_params(ROOT / "params.yaml", check_paths=False)
    with tempfile.TemporaryDirectory() as workdir:
        tokenizer, model, pool = embedded_world(params, 0 if args.model else args.sft_steps,
                                                Path(workdir))
    if args.model:
        tokenizer = load_tokenizer(args.model, params.model.prompt_format)
        model = load_causal_lm(args.model).eval()
    model.to(args.device)
    texts = random.Random(0).choices(pool, k=args.prompts)
    max_length = params.model.n_positions
    settings = {"generate": (params.generate.sampling, params.generate.candidates_per_prompt),
                "evaluate": (params.evaluate.sampling, 1)}
    source = args.model or (f"embedded GPT-2, {args.sft_steps} SFT steps" if args.sft_steps
                            else "embedded GPT-2, random init")
    print(f"{source}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, "
          f"{args.device}, {args.threads} thread(s), {args.prompts} prompts, median of {args.repeats}")
    print(f"{'setting':9} {'sampler':12} {'prec':4} {'rows':>5} {'tokens/row':>10} {'tokens/s':>9} "
          f"{'tokens/cpu-s':>12} {'vs HF':>6} {'cpu-s vs ' + precisions[0]:>15}")
    for name, (sampling, n) in settings.items():
        rows, first = args.prompts * n, {}
        for precision in precisions:
            hf, ours = (measure(functools.partial(sampler, precision=precision), model, tokenizer,
                                texts, n, sampling, args.repeats, max_length)
                        for sampler in (hf_tokens, prefpipe_tokens))
            for sampler, (wall, cpu, tokens) in (("HF generate", hf), ("prefpipe", ours)):
                base = first.setdefault(sampler, cpu)
                print(f"{name:9} {sampler:12} {precision:4} {rows:5d} {tokens / rows:10.1f} "
                      f"{wall:9.0f} {cpu:12.0f} {wall / hf[0]:6.2f} {cpu / base:15.2f}")


if __name__ == "__main__":
    main()
