"""The SFT side of bench/training_floor.py: the default world's real SFT corpus, prefpipe's
`train_sft` steps and a plain-torch floor on the same batches, and the batches' padding.

The world is built as the prepare and sft stages build it from the default params (the world's
prompts, `sft_corpus`, the tokenizer trained on it, the first 500 examples held out, the embedded
GPT-2 at its own dropout 0.1), and batches come in the stage's order (`epoch_batches`, shuffled,
seed 0). Floors (all: the same model and batches, collated before timing, AdamW, no clipping):
  plain   forward, cross-entropy over every position's logits (prompt and pad ignored), backward;
  head    the LM head and cross-entropy only at the scored (response) positions;
  splitK  `head` on K length-sorted micro-batches of the batch, each cut to its own width,
          gradients accumulated, one optimizer step: the same examples per step and the same loss
          (sum over response tokens / their count), with less padding;
  nodrop  plain with dropout off (sft.dropout 0): not the stage's training, its cost alone.
Every time is a pair (wall seconds, this process's CPU seconds)."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

SFT_HELDOUT = 500  # tasks/sft.py HELDOUT_NLL_EXAMPLES (at most a tenth of the corpus)
FLOORS = {"plain": (1, False), "head": (1, True), "split2": (2, True), "split4": (4, True),
          "nodrop": (1, False)}  # floor -> (micro-batches, LM head at scored positions only)


def now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(began: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = now()
    return wall - began[0], cpu - began[1]


def others_load(run):
    """(run's result, cores the machine's other processes kept busy meanwhile, from /proc/stat)."""
    def busy() -> float:
        with open("/proc/stat") as stat:
            ticks = [int(v) for v in stat.readline().split()[1:]]
        return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle, iowait

    machine, began = busy(), now()
    result = run()
    wall, cpu = since(began)
    return result, max(0.0, (busy() - machine - cpu) / wall)


@dataclass
class SFTWorld:
    tokenizer: object
    lm: object  # the embedded GPT-2 as the sft stage builds it (seed 0), never trained here
    examples: list[dict]  # the stage's training examples, held-out ones removed
    prompts: list[list[int]]
    responses: list[list[int]]
    optim: object  # params sft.optim
    dropout: float | None  # params sft.dropout
    max_length: int
    seed: int


def make_sft_world(n_layer: int = 4, n_embd: int = 128, sft_examples: int | None = None) -> SFTWorld:
    """The default params' SFT world (`sft_examples` overrides world.sft_examples: tests)."""
    from prefpipe.config.schema import ModelParams, Params
    from prefpipe.models.formatting import apply_prompt_format, encode_prompt, encode_response, prompt_text
    from prefpipe.models.io import build_embedded_lm
    from prefpipe.world.catalog import to_world_prompt, world_prompt_rows
    from prefpipe.world.corpus import sft_corpus
    from prefpipe.world.tokenizer import train_tokenizer

    params = Params()
    rows = world_prompt_rows(params.world.max_operand, params.data.heldout_fraction, params.seed)
    train = [to_world_prompt(r) for r in rows if r["split"] == "train"]
    corpus = sft_corpus(train, sft_examples or params.world.sft_examples, params.world, params.seed)
    texts = [prompt_text(None, c["prompt"]) + " " + c["response"] for c in corpus]
    tokenizer = train_tokenizer(texts + [r["prompt"] for r in rows], params.model.vocab_size)
    tokenizer = apply_prompt_format(tokenizer, params.model.prompt_format)
    examples = corpus[min(SFT_HELDOUT, len(corpus) // 10):]
    model_params = ModelParams(n_layer=n_layer, n_embd=n_embd)
    return SFTWorld(tokenizer, build_embedded_lm(model_params, tokenizer, params.seed), examples,
                    [encode_prompt(tokenizer, e["prompt"]) for e in examples],
                    [encode_response(tokenizer, e["response"]) for e in examples],
                    params.sft.optim, params.sft.dropout, model_params.n_positions, params.seed)


def stage_order(world: SFTWorld, steps: int | None = None) -> list[list[int]]:
    """The index batches of the sft stage's loop, in its order: the first `steps` (None: one epoch)."""
    from prefpipe.train.common import epoch_batches, total_batches

    optim = world.optim
    steps = steps or total_batches(len(world.examples), optim.batch_size, 1.0)
    batches = epoch_batches(len(world.examples), optim.batch_size, optim.epochs, world.seed, optim.shuffle)
    return [idx for idx, _ in zip(batches, range(steps))]


def collated(world: SFTWorld, idx: list[int]):
    from prefpipe.models.formatting import collate

    return collate(world.tokenizer, [world.prompts[i] for i in idx], [world.responses[i] for i in idx],
                   world.max_length)


def row_lengths(world: SFTWorld, idx: list[int]) -> list[int]:
    """Each row's collated length (prompt cut from the left to fit, as `collate` does)."""
    return [min(len(world.prompts[i]) + len(world.responses[i]), world.max_length) for i in idx]


def micro_batches(world: SFTWorld, idx: list[int], parts: int) -> list:
    """`idx` as `parts` length-sorted micro-batches (each padded to its own longest row)."""
    lengths = dict(zip(idx, row_lengths(world, idx)))
    ordered = sorted(idx, key=lengths.__getitem__)
    size = -(-len(ordered) // parts)
    return [collated(world, ordered[i: i + size]) for i in range(0, len(ordered), size)]


def padding_report(world: SFTWorld) -> dict:
    """Over one epoch of the stage's batches: padded share of the positions computed (rows x
    width), as batched now and as K length-sorted micro-batches; the collate's seconds per batch."""
    real, cells, collate_times = 0, {1: 0, 2: 0, 4: 0}, []
    order = stage_order(world)
    for idx in order:
        lengths = sorted(row_lengths(world, idx))
        real += sum(lengths)
        for parts in cells:
            size = -(-len(lengths) // parts)
            cells[parts] += sum(max(lengths[i: i + size]) * len(lengths[i: i + size])
                                for i in range(0, len(lengths), size))
        began = now()
        collated(world, idx)
        collate_times.append(since(began))
    collate_times.sort()
    return {"batches": len(order), "real_tokens": real, "positions": cells[1],
            "pad_share": {k: 1 - real / v for k, v in cells.items()},
            "mean_width": cells[1] / sum(len(idx) for idx in order),
            "collate_s": collate_times[len(collate_times) // 2]}


def prefpipe_sft_run(world: SFTWorld, model, precision: str, steps: int, groups: int = 1
                     ) -> tuple[list, list[float]]:
    """(per-step (wall, cpu) seconds, per-step losses) of the real `train_sft` in the stage's
    order (batches as `groups` length-sorted parts), between consecutive step callbacks; the loop
    stops after `steps` + 1 steps."""
    from prefpipe.train.loop import TrainContext
    from prefpipe.train.sft import train_sft

    stamps = []
    context = TrainContext(precision=precision, length_groups=groups,
                           callbacks=[lambda info: stamps.append(now()) or info.step >= steps])
    history = train_sft(model, world.tokenizer, world.examples, world.optim, world.max_length,
                        world.seed, context, dropout=world.dropout)
    return ([(b[0] - a[0], b[1] - a[1]) for a, b in zip(stamps, stamps[1:])],
            [row["loss"] for row in history])


def floor_sft_batches(world: SFTWorld, floor: str, steps: int) -> list[list]:
    """Per step, the floor's micro-batches (one for plain and head)."""
    parts = FLOORS[floor][0]
    return [micro_batches(world, idx, parts) for idx in stage_order(world, steps + 1)]


def floor_sft_run(world: SFTWorld, model, batches: list[list], precision: str, floor: str
                  ) -> tuple[list, list[float]]:
    """(per-step (wall, cpu) seconds, per-step losses) of the hand-written SFT step."""
    import torch

    from prefpipe.train.common import set_dropout
    from prefpipe.train.precision import attention_for

    set_dropout(model, 0.0 if floor == "nodrop" else world.dropout)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=world.optim.lr, weight_decay=0.0)
    times, losses = [], []
    with attention_for(model, precision, "cpu"):  # the faster attention, as prefpipe picks it
        for micro in batches:
            began = now()
            losses.append(floor_sft_step(model, optimizer, micro, precision, FLOORS[floor][1]))
            times.append(since(began))
    return times[1:], losses  # the first step (AdamW's state made) is left out, as prefpipe's


def floor_sft_step(model, optimizer, micro: list, precision: str, head_only: bool) -> float:
    """One optimizer step over `micro` (a batch's micro-batches) -> its mean response-token NLL."""
    import torch
    import torch.nn.functional as F

    count = sum(int(b.response_mask[:, 1:].sum()) for b in micro)
    optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for batch in micro:
        scored = batch.response_mask[:, 1:].bool()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            if head_only:
                hidden = model.transformer(input_ids=batch.input_ids,
                                           attention_mask=batch.attention_mask).last_hidden_state
                logits = model.lm_head(hidden[:, :-1][scored])
                targets = batch.input_ids[:, 1:][scored]
            else:
                out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
                logits = out[:, :-1].reshape(-1, out.shape[-1])
                targets = batch.input_ids[:, 1:].masked_fill(~scored, -100).reshape(-1)
        loss = F.cross_entropy(logits.float(), targets, ignore_index=-100, reduction="sum") / count
        loss.backward()
        total += loss.detach()
    optimizer.step()
    return float(total)
