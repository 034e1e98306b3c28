"""Stage train_policy: optimise the policy with DPO (from the pairs), PPO (against the reward
model, KL-penalised) or GRPO (on verifier rewards), as params.policy.algorithm says. It starts from
`rounds.init` (the SFT model, or `previous`: the round's generator, the last published version)
against the frozen reference `rounds.reference`, on the rounds' preferences `rounds.data` selects.

Run: python -m tasks.train_policy"""
from __future__ import annotations

import logging
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from prefpipe.config.schema import Params
from prefpipe.data.tokenised_pairs import tokenise_parquet
from prefpipe.models.io import holds_shards, load_causal_lm, load_reward_model, load_tokenizer, save_model
from prefpipe.models.policy_value import PolicyWithValue, apply_lora, merged_lm
from prefpipe.models.scoring import scalar_rewards
from prefpipe.rounds.history import select_rounds
from prefpipe.store import Store, read_parquet, rows
from prefpipe.train.common import seed_everything
from prefpipe.train.dpo import reference_for, train_dpo, variant_for
from prefpipe.train.grpo import RewardFunc, train_grpo
from prefpipe.train.ppo import train_ppo
from prefpipe.world.catalog import to_checked_prompt
from prefpipe.world.corpus import sample_by_family
from prefpipe.world.prompts import WorldPrompt
from tasks import paths
from tasks._stage import StageInputError, is_main_process, run_stage, train_context, write_csv, write_json
from tasks.round_info import read_round_info

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from prefpipe.train.distributed import Runtime
    from prefpipe.train.rollout import Rollout

log = logging.getLogger("prefpipe")
PROMPT_POOL = 20_000  # family-balanced draws of training prompts for the RL algorithms
SUMMARY_WINDOW = 10


def train_policy(params: Params, store: Store) -> dict:
    seed_everything(params.seed)
    algorithm = params.policy.algorithm
    tokenizer = load_tokenizer(paths.SFT_MODEL, params.model.prompt_format)
    history, extra = {"dpo": run_dpo, "ppo": run_ppo, "grpo": run_grpo}[algorithm](params, tokenizer)
    if not is_main_process():
        return {}
    last = history[-SUMMARY_WINDOW:]
    numeric = [k for k, v in last[0].items() if isinstance(v, float)]
    metrics = {"algorithm": algorithm, "steps": len(history), **extra,
               **{k: sum(r[k] for r in last) / len(last) for k in numeric}}
    write_json(paths.METRICS / "policy.json", metrics)
    write_csv(paths.PLOTS / "policy_train.csv", history)
    return metrics


def save_policy(lm: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, runtime: Runtime,
                params: Params) -> None:
    """Write the trained LM, LoRA adapters merged. Every process calls it: a sharded model's whole
    weights are gathered from all of them (`Runtime.full_state_dict`); the main process writes."""
    state = runtime.full_state_dict(lm)
    if not runtime.is_main:
        return
    if holds_shards(lm):  # a whole copy on this process, where LoRA adapters can merge
        lm = load_causal_lm(start_model(params))
        lm = apply_lora(lm, params.policy.lora) if params.policy.lora.rank else lm
        lm.load_state_dict(state)
    shutil.rmtree(paths.POLICY_MODEL, ignore_errors=True)
    merged = merged_lm(lm)
    save_model(merged, tokenizer, paths.POLICY_MODEL, state_dict=state if merged is lm else None)


def start_model(params: Params) -> Path:
    """The model training starts from: `rounds.init`."""
    return paths.GENERATOR_MODEL if params.rounds.init == "previous" else paths.SFT_MODEL


def reference_model(params: Params) -> Path:
    """The frozen reference of the loss and the KL penalty: `rounds.reference`."""
    return paths.GENERATOR_MODEL if params.rounds.reference == "previous" else paths.SFT_MODEL


def policy_model(params: Params, with_value_head: bool) -> PolicyWithValue:
    lm = load_causal_lm(start_model(params))
    if params.policy.lora.rank:
        lm = apply_lora(lm, params.policy.lora)
    torch.manual_seed(params.seed)  # the value head's init
    return PolicyWithValue(lm, with_value_head)


def frozen_reference(params: Params) -> torch.nn.Module | None:
    """A frozen copy of the reference model, or None with LoRA (the policy with adapters off is the
    reference: LoRA needs rounds.init and rounds.reference to name the same model)."""
    if params.policy.lora.rank:
        return None
    reference = load_causal_lm(reference_model(params)).eval()
    reference.requires_grad_(False)
    return reference


def training_prompts(params: Params) -> list[WorldPrompt]:
    train = [r for r in rows(read_parquet(paths.PROMPTS)) if r["split"] == "train"]
    return [to_checked_prompt(r) or WorldPrompt(r["prompt_id"], r["category"], r["prompt"], {})
            for r in train]


def run_dpo(params: Params, tokenizer: PreTrainedTokenizerBase) -> tuple[list[dict], dict]:
    number = int(read_round_info()["round"])
    dpo = params.policy.dpo
    max_length = params.model.n_positions
    # tokenised once, a Parquet record batch at a time, for the reference log-probs and training both
    with tokenise_parquet(tokenizer, paths.PREFERENCES, keep=rounds_kept(params, number)) as preferences:
        if not len(preferences):
            raise StageInputError(f"{paths.PREFERENCES}: no decisive preferences to train on "
                                  f"(rounds.data {params.rounds.data}, round {number})")
        context = train_context(params, "train_policy", _inputs(params, paths.PREFERENCES),
                                {"dpo": dpo, "rounds": params.rounds} if _from_generator(params) else dpo)
        # reference log-probs are precomputed (none for a reference-free variant), at the policy's
        # precision: only the policy stays in memory
        ref_chosen, ref_rejected = reference_for(variant_for(dpo),
                                                 lambda: load_causal_lm(reference_model(params)),
                                                 tokenizer, preferences, max_length, context.precision)
        policy = load_causal_lm(start_model(params))
        if params.policy.lora.rank:
            policy = apply_lora(policy, params.policy.lora)
        pairs = len(preferences)
        log.info("DPO (%s) on %d pairs (beta %.3g, lr %.3g)", dpo.loss, pairs, dpo.beta, dpo.optim.lr)
        history = train_dpo(policy, tokenizer, preferences, ref_chosen, ref_rejected, dpo, max_length,
                            params.seed, context)
    save_policy(policy, tokenizer, context.runtime, params)
    return history, {"pairs": pairs, "loss_kind": dpo.loss}


def rounds_kept(params: Params, number: int) -> Callable[[list[dict]], list[dict]]:
    """The rows of a preferences batch round `number` trains DPO on (`rounds.data`, `select_rounds`)."""
    return lambda rows: select_rounds(rows, params.rounds.data, params.rounds.window, number)


def run_ppo(params: Params, tokenizer: PreTrainedTokenizerBase) -> tuple[list[dict], dict]:
    ppo = params.policy.ppo
    prompts = sample_by_family(training_prompts(params), PROMPT_POOL, random.Random(params.seed))
    reward_model = load_reward_model(paths.REWARD_MODEL).eval()
    reward_model.requires_grad_(False)

    def reward_fn(rollout: Rollout) -> torch.Tensor:
        with torch.no_grad():
            return scalar_rewards(reward_model, rollout.batch)

    policy = policy_model(params, with_value_head=True)
    log.info("PPO: %d iterations x %d rollouts, KL %s (beta %.3g, target %.3g nats), LoRA rank %d",
             ppo.iterations, ppo.rollout_prompts, "adaptive" if ppo.kl.adaptive else "fixed",
             ppo.kl.beta, ppo.kl.target, params.policy.lora.rank)
    context = train_context(params, "train_policy",
                            _inputs(params, paths.PROMPTS, paths.REWARD_MODEL),
                            {"ppo": ppo, "lora": params.policy.lora, **_rounds_key(params)})
    history = train_ppo(policy, frozen_reference(params), reward_fn, tokenizer,
                        [p.prompt for p in prompts], ppo, params.model.n_positions, params.seed, context)
    save_policy(policy.lm, tokenizer, context.runtime, params)
    return history, {"final_beta": history[-1]["beta"]}


def verifier_rewards(prompts: list[WorldPrompt], params: Params) -> list[RewardFunc]:
    """GRPO's reward functions (TRL's `reward_funcs` shape): the verifier's reward in [0, 1] of each
    completion, stripped, against its prompt (`prefpipe.verify.verifiers.training_rewards`: the
    world's fast check; your prompts' answers and tests as the label stage checks them, in the
    sandbox of label.verifier's limits)."""
    from prefpipe.verify.sandbox import SandboxLimits
    from prefpipe.verify.verifiers import training_rewards

    settings = params.label.verifier
    limits = SandboxLimits(wall_s=settings.timeout_s, cpu_s=settings.cpu_s, memory_mb=settings.memory_mb)

    def verified(completions: list[str], prompt_index: list[int], finished: list[bool],
                 **_) -> list[float]:
        return training_rewards([(prompts[i], text.strip(), done)
                                 for text, i, done in zip(completions, prompt_index, finished)],
                                limits, settings.workers)

    return [verified]


def run_grpo(params: Params, tokenizer: PreTrainedTokenizerBase) -> tuple[list[dict], dict]:
    grpo = params.policy.grpo
    pool = [p for p in training_prompts(params) if p.family in grpo.categories and p.meta]
    if not pool:
        raise StageInputError(f"policy.grpo.categories {grpo.categories}: no training prompts of "
                              "these categories with a verifier (the embedded world has arithmetic, code; "
                              "your own prompts need data.answer_column or data.tests_column)")
    prompts = sample_by_family(pool, PROMPT_POOL, random.Random(params.seed))

    policy = policy_model(params, with_value_head=False)
    log.info("GRPO: %d iterations x %d prompts x %d samples on %s", grpo.iterations,
             grpo.prompts_per_iteration, grpo.group_size, ", ".join(grpo.categories))
    context = train_context(params, "train_policy", _inputs(params, paths.PROMPTS),
                            {"grpo": grpo, "lora": params.policy.lora, **_rounds_key(params)})
    history = train_grpo(policy, frozen_reference(params), verifier_rewards(prompts, params), tokenizer,
                         [p.prompt for p in prompts], grpo, params.model.n_positions, params.seed,
                         context)
    save_policy(policy.lm, tokenizer, context.runtime, params)
    return history, {}


def _from_generator(params: Params) -> bool:
    return "previous" in (params.rounds.init, params.rounds.reference)


def _inputs(params: Params, *data: Path) -> list[Path]:
    """What the resume checkpoint is keyed by: the data, the SFT model and, when a round starts from
    or against it, the generator (a rerun of the same round resumes; another round starts afresh)."""
    return [*data, paths.SFT_MODEL] + ([paths.GENERATOR_MODEL] if _from_generator(params) else [])


def _rounds_key(params: Params) -> dict:
    return {"rounds": params.rounds} if _from_generator(params) else {}


if __name__ == "__main__":
    run_stage("train_policy", train_policy, distributed=True)
