"""prefpipe's DPO, reward-model and GRPO steps against TRL's trainers: s/step and first-step losses.

Both sides get the same tiny GPT-2 (params.yaml's model section, random init, a tokenizer trained
here on the embedded world), the same pairs and prompts from the embedded world, the same batches
(8 pairs, or 2 prompts x 4 samples for GRPO, in the order given: prefpipe `shuffle: false`, TRL's
sequential sampler), the same learning rates (params.yaml's, held constant on both sides) and
torch's AdamW. prefpipe runs its public trainers (`train_dpo`, `train_reward_model`, `train_grpo`)
timed by step callbacks; TRL runs DPOTrainer, RewardTrainer and GRPOTrainer timed by a
TrainerCallback. A step's time is the wall time between consecutive step ends (data, forward,
backward, optimizer, bookkeeping); each figure is the median over repeats of a repeat's median
step after `--warmup` steps, the two sides alternating so load from other processes falls on
both. GRPO's "generating" is prefpipe's rollout sampling (`rl_loop.sample_rollout`) and TRL's
`model.generate`. First-step losses come from separate 2-step runs (TRL logging every step) and are
compared to 1e-5 (GRPO's are not: each side samples its own completions). TRL is an optional
dependency (`pip install -e '.[bench]'`); everything runs offline.

Where TRL's API sets the terms: it takes the model as a folder (saved here), since given a model
object without a reference it would fetch the reference by hub id; DPO text is tokenized by TRL
itself, so its ids are checked equal to prefpipe's before training; its reward model is given
prefpipe's ids. TRL's GRPO loss is `bnpo` (token mean over the batch, prefpipe's), dropout off on
both sides of DPO and GRPO, and the reward model's dropout set equal (`--rm-dropout`).

Run: .venv/bin/python bench/vs_trl.py [--threads 2] [--steps 30] [--repeats 3] [--profile]

Long because both sides of each comparison, and the settings that put them on equal terms, read
best side by side in one file.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import os
import random
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "WANDB_DISABLED": "true", "WANDB_MODE": "disabled",
           "TQDM_DISABLE": "1"}  # the last: TRL's reference log-prob bar
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BATCH, GROUP, NEW_TOKENS, TOLERANCE = 8, 4, 32, 1e-5


@dataclass
class World:
    params: object  # prefpipe.config.Params from params.yaml
    tokenizer: object
    lm: object  # the policy GPT-2; every run starts from a copy
    rm: object  # a GPT-2 with a scalar head; likewise
    pairs: list[dict]
    prompts: list[str]
    rm_dropout: float = 0.0  # the reward model's dropout, set equal on both sides
    grpo_kl_beta: float = 0.0  # GRPO's KL weight on both sides (TRL's default: 0)
    length_groups: int = 1  # prefpipe's runtime.length_groups (TRL pads whole batches)


def make_world(n_pairs: int, rm_dropout: float = 0.0, grpo_kl_beta: float = 0.0, seed: int = 0
               ) -> World:
    """Pairs of two world responses to one prompt, ordered by the gold judge; the tokenizer is
    trained as the prepare stage trains it (the world's SFT corpus and prompts)."""
    import torch
    from transformers import GPT2ForSequenceClassification

    from prefpipe.config import load_params
    from prefpipe.models.formatting import prompt_text
    from prefpipe.models.io import build_embedded_lm
    from prefpipe.world.corpus import sft_corpus
    from prefpipe.world.gold import prefer
    from prefpipe.world.prompts import all_prompts
    from prefpipe.world.responses import render, sample_style
    from prefpipe.world.tokenizer import train_tokenizer

    params = load_params(ROOT / "params.yaml", check_paths=False)
    rng = random.Random(seed)
    pool = all_prompts(params.world.max_operand)
    pairs = []
    for _ in range(n_pairs):
        prompt = rng.choice(pool)
        a, b = (render(prompt, sample_style(prompt.family, params.world, rng), rng) for _ in range(2))
        a_wins = prefer(prompt, (a, True), (b, True)) >= 0.5
        pairs.append({"prompt": prompt.prompt, "chosen": a if a_wins else b, "rejected": b if a_wins else a})
    corpus = sft_corpus(pool, params.world.sft_examples, params.world, seed)
    texts = [prompt_text(None, c["prompt"]) + " " + c["response"] for c in corpus]
    tokenizer = train_tokenizer(texts + [p.prompt for p in pool], params.model.vocab_size)
    lm = build_embedded_lm(params.model, tokenizer, seed)
    config = copy.deepcopy(lm.config)
    config.num_labels = 1
    torch.manual_seed(seed + 1)
    rm = GPT2ForSequenceClassification(config)
    prompts = [p.prompt for p in rng.sample(pool, 256)]
    return World(params, tokenizer, lm, rm, pairs, prompts, rm_dropout, grpo_kl_beta)


def digit_reward(completions, **_) -> list[float]:
    """GRPO's reward on both sides (the same keyword interface): digits in the decoded completion."""
    return [sum(c.isdigit() for c in text) / 4 for text in completions]


class Clock:
    """Step ends (perf_counter) and generate() calls tagged with the step they fall in."""

    def __init__(self):
        self.ends: list[float] = []
        self.generate: list[tuple[int, float]] = []

    def __call__(self, *_, **__) -> None:  # a prefpipe step callback
        self.ends.append(time.perf_counter())

    def timed(self, function):
        """`function`, recording each call's seconds against the step it falls in."""
        def timed(*args, **kwargs):
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.generate.append((len(self.ends), time.perf_counter() - began))

        return timed

    @contextlib.contextmanager
    def watch_rollouts(self):
        """Time prefpipe's rollout sampling (`rl_loop.sample_rollout`, where the loop has one)."""
        from prefpipe.train import rl_loop

        original = getattr(rl_loop, "sample_rollout", None)
        if original is not None:
            rl_loop.sample_rollout = self.timed(original)
        try:
            yield
        finally:
            if original is not None:
                rl_loop.sample_rollout = original

    def step_seconds(self, warmup: int) -> float:
        return statistics.median(b - a for a, b in zip(self.ends[warmup - 1:], self.ends[warmup:]))

    def generate_seconds(self, warmup: int) -> float | None:
        per_step: dict[int, float] = {}
        for step, seconds in self.generate:
            if step >= warmup:
                per_step[step] = per_step.get(step, 0.0) + seconds
        return statistics.median(per_step.values()) if per_step else None


def run_prefpipe(kind: str, world: World, steps: int, precision: str, callbacks) -> list[dict]:
    """One run of prefpipe's own trainer for `steps` steps; returns its history."""
    from prefpipe.config.optim import OptimParams, RLOptimParams
    from prefpipe.config.schema import DPOParams, GRPOParams, RewardParams, SamplingParams
    from prefpipe.models.policy_value import PolicyWithValue
    from prefpipe.train.dpo import reference_for, train_dpo, variant_for
    from prefpipe.train.grpo import train_grpo
    from prefpipe.train.loop import TrainContext
    from prefpipe.train.reward import train_reward_model

    p, tok, max_length = world.params, world.tokenizer, world.params.model.n_positions
    context = TrainContext(precision=precision, callbacks=callbacks, length_groups=world.length_groups)
    pairs = world.pairs[: BATCH * steps]
    if kind == "dpo":
        dpo = DPOParams(beta=p.policy.dpo.beta, dropout=0.0, optim=OptimParams(
            lr=p.policy.dpo.optim.lr, warmup_steps=1, schedule="constant", batch_size=BATCH, shuffle=False))
        policy = copy.deepcopy(world.lm)
        reference = lambda: copy.deepcopy(world.lm)  # noqa: E731
        ref_chosen, ref_rejected = reference_for(variant_for(dpo), reference, tok, pairs, max_length,
                                                 **precision_kwarg(reference_for, precision))
        return train_dpo(policy, tok, pairs, ref_chosen, ref_rejected, dpo, max_length, p.seed, context)
    if kind == "reward":
        reward = RewardParams(dropout=world.rm_dropout, optim=OptimParams(
            lr=p.reward.optim.lr, warmup_steps=1, schedule="constant", batch_size=BATCH, shuffle=False))
        return train_reward_model(copy.deepcopy(world.rm), tok, pairs, reward, max_length, p.seed, context)
    grpo = GRPOParams(iterations=steps, prompts_per_iteration=BATCH // GROUP, group_size=GROUP, epochs=1,
                      minibatch_size=BATCH, kl_beta=world.grpo_kl_beta,
                      optim=RLOptimParams(lr=p.policy.grpo.optim.lr, warmup_steps=1, schedule="constant"),
                      sampling=SamplingParams(max_new_tokens=NEW_TOKENS, temperature=1.0, top_k=0, top_p=1.0))
    policy = PolicyWithValue(copy.deepcopy(world.lm), with_value_head=False)
    reference = copy.deepcopy(world.lm).eval().requires_grad_(False)
    clocks = [c for c in callbacks if isinstance(c, Clock)]
    with clocks[0].watch_rollouts() if clocks else contextlib.nullcontext():
        return train_grpo(policy, reference, digit_reward, tok, world.prompts, grpo, max_length, p.seed,
                          context)


def precision_kwarg(function, precision: str) -> dict:
    """{'precision': ...} when `function` takes one (the reference log-probs at the step's precision)."""
    import inspect

    return {"precision": precision} if "precision" in inspect.signature(function).parameters else {}


def trl_config(kind: str, world: World, steps: int, row: str, out_dir: str, log_every: int):
    """TRL's config for `row` (fp32 | fp32-precompute | defaults): equal terms except where named."""
    import trl

    p = world.params
    common = dict(output_dir=out_dir, per_device_train_batch_size=BATCH, max_steps=steps, report_to="none",
                  save_strategy="no", logging_steps=log_every, disable_tqdm=True, seed=p.seed,
                  lr_scheduler_type="constant", warmup_steps=0, optim="adamw_torch", weight_decay=0.0,
                  max_grad_norm=1.0, train_sampling_strategy="sequential", dataloader_num_workers=0,
                  use_cpu=True, bf16=row == "defaults", activation_checkpointing=row == "defaults")
    if kind == "dpo":
        return trl.DPOConfig(**common, learning_rate=p.policy.dpo.optim.lr, beta=p.policy.dpo.beta,
                             loss_type=["sigmoid"], disable_dropout=True, max_length=p.model.n_positions,
                             precompute_ref_log_probs=row == "fp32-precompute")
    if kind == "reward":
        return trl.RewardConfig(**common, learning_rate=p.reward.optim.lr, max_length=p.model.n_positions,
                                disable_dropout=not world.rm_dropout, center_rewards_coefficient=None)
    return trl.GRPOConfig(**common, learning_rate=p.policy.grpo.optim.lr, num_generations=GROUP,
                          max_completion_length=NEW_TOKENS, temperature=1.0, top_k=0, top_p=1.0,
                          beta=world.grpo_kl_beta, disable_dropout=True, loss_type="bnpo")


def trl_dataset(kind: str, world: World, steps: int):
    """DPO and GRPO: text, tokenized by TRL (checked equal to prefpipe's ids in `check_same_ids`);
    reward: prefpipe's ids, which RewardTrainer takes as they are."""
    from datasets import Dataset

    from prefpipe.models.formatting import encode_prompt, encode_response, prompt_text

    tok, eos = world.tokenizer, world.tokenizer.eos_token
    if kind == "grpo":
        return Dataset.from_list([{"prompt": prompt_text(tok, p)} for p in world.prompts])
    pairs = world.pairs[: BATCH * steps]
    if kind == "dpo":
        return Dataset.from_list([{"prompt": prompt_text(tok, p["prompt"]),
                                   **{k: " " + p[k].strip() + eos for k in ("chosen", "rejected")}}
                                  for p in pairs])
    return Dataset.from_list([{f"{k}_ids": encode_prompt(tok, p["prompt"]) + encode_response(tok, p[k])
                               for k in ("chosen", "rejected")} for p in pairs])


def run_trl(kind: str, world: World, steps: int, row: str, clock: Clock | None, log_every: int = 10
            ) -> list[float]:
    """One run of TRL's trainer for `steps` steps; returns the logged losses. TRL gets the model as
    its users pass it, a folder, and builds what it needs from it (DPO's reference, GRPO's when
    kl_beta > 0)."""
    import trl
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback

    from prefpipe.train.common import set_dropout

    losses: list[float] = []

    class Watch(TrainerCallback):
        def on_step_end(self, *_, **__):
            if clock is not None:
                clock()

        def on_log(self, args, state, control, logs=None, **__):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    trainers = {"dpo": trl.DPOTrainer, "reward": trl.RewardTrainer, "grpo": trl.GRPOTrainer}
    extra = {"reward_funcs": digit_reward} if kind == "grpo" else {}
    with tempfile.TemporaryDirectory() as folder:
        (world.rm if kind == "reward" else world.lm).save_pretrained(folder)
        config = trl_config(kind, world, steps, row, str(Path(folder) / "out"), log_every)
        trainer = trainers[kind](folder, args=config, train_dataset=trl_dataset(kind, world, steps),
                                 processing_class=copy.deepcopy(world.tokenizer), callbacks=[Watch()],
                                 **extra)
        trainer.remove_callback(PrinterCallback)  # it prints every log dict to stdout
        if kind == "dpo":
            check_same_ids(world, trainer.train_dataset)
        if kind == "reward" and world.rm_dropout:  # TRL turns dropout off, or leaves the model's own
            set_dropout(trainer.model, world.rm_dropout)
        if kind == "grpo" and clock is not None:
            trainer.model.generate = clock.timed(trainer.model.generate)
        trainer.train()
    return losses


def check_same_ids(world: World, dataset) -> None:
    """TRL's tokens of each DPO pair are prefpipe's (prompt, chosen, rejected ids), or stop."""
    from prefpipe.models.formatting import encode_prompt, encode_response

    tok = world.tokenizer
    for i, (row, pair) in enumerate(zip(dataset, world.pairs)):
        ours = (encode_prompt(tok, pair["prompt"]), encode_response(tok, pair["chosen"]),
                encode_response(tok, pair["rejected"]))
        if (row["prompt_ids"], row["chosen_ids"], row["rejected_ids"]) != ours:
            raise SystemExit(f"vs_trl: TRL tokenized DPO pair {i} differently from prefpipe: {row} vs {ours}")


def step_losses(kind: str, world: World, precision: str, row: str, steps: int = 2
                ) -> tuple[list[float], list[float]]:
    """(prefpipe's, TRL's) loss at each of the first `steps` steps, TRL logging every step."""
    ours = [h["loss"] for h in run_prefpipe(kind, world, steps, precision, [])]
    return ours, run_trl(kind, world, steps, row, None, log_every=1)


# (label, trainer, prefpipe precision, TRL row or None, what TRL runs)
ROWS = [("DPO fp32, ref log-probs precomputed", "dpo", "fp32", "fp32-precompute",
         "`precompute_ref_log_probs`"),
        ("DPO bf16 autocast", "dpo", "bf16", "defaults", "its defaults: bf16 + gradient checkpointing"),
        ("reward model fp32", "reward", "fp32", "fp32", "`RewardTrainer`"),
        ("reward model bf16", "reward", "bf16", None, ""),
        (f"GRPO ({GROUP} samples, {NEW_TOKENS} tokens)", "grpo", "fp32", "fp32", "`GRPOTrainer`")]


def time_row(kind: str, world: World, precision: str, row: str | None, args) -> dict[str, float | None]:
    """Median s/step (and s generating) of each side over `args.repeats` alternating runs."""
    found: dict[str, list[float]] = {"ours": [], "theirs": [], "ours_gen": [], "theirs_gen": []}
    for repeat in range(args.repeats):
        for side in (("ours", "theirs") if repeat % 2 == 0 else ("theirs", "ours")):
            if side == "theirs" and row is None:
                continue
            clock = Clock()
            if side == "ours":
                run_prefpipe(kind, world, args.warmup + args.steps, precision, [clock])
            else:
                run_trl(kind, world, args.warmup + args.steps, row, clock)
            found[side].append(clock.step_seconds(args.warmup))
            if (generating := clock.generate_seconds(args.warmup)) is not None:
                found[side + "_gen"].append(generating)
    return {key: statistics.median(values) if values else None for key, values in found.items()}


def seconds(value: float | None, note: str = "", generating: float | None = None) -> str:
    if value is None:
        return "—"
    extra = [f"{generating:.3f} s generating"] if generating is not None else []
    return f"{value:.3f} s" + (f" ({', '.join(extra + ([note] if note else []))})" if extra or note else "")


def ratio(ours: float, theirs: float | None, versus: str = "") -> str:
    if theirs is None:
        return "—"
    r = theirs / ours
    return f"{r:.2f}× faster{versus}" if r >= 1 else f"**{1 / r:.2f}× slower{versus}**"


def loss_cell(kind: str, world: World, precision: str, row: str | None) -> str:
    if row is None:
        return "—"
    if kind == "grpo":
        return "— (each side samples its own completions)"
    ours, theirs = step_losses(kind, world, precision, row)
    diff = abs(ours[0] - theirs[0])
    agree = "✓" if diff <= TOLERANCE else f"✗ > {TOLERANCE:g}"
    if kind == "reward" and world.rm_dropout:
        agree += ", dropout masks differ"
    return f"{ours[0]:.6f} / {theirs[0]:.6f} (Δ {diff:.1e} {agree}; step 2 Δ {abs(ours[1] - theirs[1]):.1e})"


def table(world: World, args) -> str:
    import trl

    lines = [f"| step | prefpipe | TRL {trl.__version__} | prefpipe vs TRL "
             "| first-step loss prefpipe / TRL |",
             "|---|---|---|---|---|"]
    trl_rm_fp32 = None
    for label, kind, precision, row, note in ROWS:
        t = time_row(kind, world, precision, row, args)
        if kind == "reward" and row is not None:
            trl_rm_fp32 = t["theirs"]
        versus = ratio(t["ours"], t["theirs"]) if row else ratio(t["ours"], trl_rm_fp32, " than TRL fp32")
        lines.append(f"| {label} | {seconds(t['ours'], '', t['ours_gen'])} | "
                     f"{seconds(t['theirs'], note, t['theirs_gen'])} | {versus} | "
                     f"{loss_cell(kind, world, precision, row)} |")
        print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines)


def profile(world: World, args) -> None:
    """torch.profiler's table (top 15 by self CPU time) of each prefpipe step, after the warm-up."""
    from torch.profiler import ProfilerActivity, schedule
    from torch.profiler import profile as torch_profile

    seen = set()
    for _, kind, precision, _, _ in ROWS:
        if (kind, precision) in seen:
            continue
        seen.add((kind, precision))
        plan = schedule(wait=0, warmup=args.warmup, active=args.steps, repeat=1)
        with torch_profile(activities=[ProfilerActivity.CPU], schedule=plan) as prof:
            run_prefpipe(kind, world, args.warmup + args.steps, precision, [lambda _info: prof.step()])
        print(f"\n### prefpipe {kind} {precision}: {args.steps} steps after {args.warmup} warm-up\n")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15,
                                        max_name_column_width=60))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (both sides)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per side (alternating)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps at the start of each run")
    parser.add_argument("--rm-dropout", type=float, default=0.0, help="reward model's dropout, both sides")
    parser.add_argument("--length-groups", type=int, default=None,
                        help="prefpipe's runtime.length_groups (default: the stages', params.yaml's)")
    parser.add_argument("--grpo-kl-beta", type=float, default=0.0, help="GRPO KL weight, both sides")
    parser.add_argument("--profile", action="store_true", help="also print torch.profiler tables")
    args = parser.parse_args()
    if args.warmup < 1 or args.steps < 2 or args.repeats < 1:
        parser.error("--warmup must be >= 1, --steps >= 2, --repeats >= 1")
    os.environ.update(OFFLINE)  # before the Hugging Face libraries are imported

    try:
        import trl
    except ImportError:
        raise SystemExit("bench/vs_trl.py needs TRL, the optional `bench` extra: "
                         "pip install -e '.[bench]' (make setup installs it)") from None
    import datasets
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    transformers.utils.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers 5's renames, inside TRL
    datasets.disable_progress_bars()
    world = make_world(BATCH * (args.warmup + args.steps), args.rm_dropout, args.grpo_kl_beta)
    world.length_groups = args.length_groups or world.params.runtime.length_groups
    n_params = sum(p.numel() for p in world.lm.parameters())
    print(f"GPT-2 of {n_params / 1e6:.2f}M params (vocab {len(world.tokenizer)}), batch {BATCH}, "
          f"{args.threads} thread(s), {args.repeats}x{args.steps} steps after {args.warmup} warm-up; "
          f"reward-model dropout {args.rm_dropout}, GRPO kl_beta {args.grpo_kl_beta}, prefpipe "
          f"length_groups {world.length_groups}; torch "
          f"{torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}\n")
    print(table(world, args))
    if args.profile:
        profile(world, args)


if __name__ == "__main__":
    main()
