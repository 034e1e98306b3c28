"""Stage train_reward: a Bradley-Terry reward model on the SFT backbone with a scalar head.

Run: python -m tasks.train_reward"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

from prefpipe.data.tokenised_pairs import parquet_rows, tokenise_parquet
from prefpipe.evaluate.reward_eval import calibration, held_out_prompts, on_side, ranking_report
from prefpipe.models.io import holds_shards, load_reward_model, load_tokenizer, save_model
from prefpipe.models.scoring import score_responses
from prefpipe.store import read_parquet, rows
from prefpipe.train.common import seed_everything
from prefpipe.train.reward import train_reward_model
from prefpipe.world.catalog import to_world_prompt
from tasks import paths
from tasks._stage import StageInputError, is_main_process, run_stage, train_context, write_csv, write_json

log = logging.getLogger("prefpipe")


def train_reward(params, store) -> dict:
    seed_everything(params.seed)
    held_out, train_pairs, val_pairs = split_preferences(paths.PREFERENCES, params.reward.val_fraction,
                                                         params.seed)
    tokenizer = load_tokenizer(paths.SFT_MODEL, params.model.prompt_format)
    model = load_reward_model(params.reward.model or paths.SFT_MODEL)
    log.info("reward model: %d train pairs, %d held-out pairs", train_pairs, val_pairs)
    context = train_context(params, "train_reward", [paths.PREFERENCES, paths.SFT_MODEL,
                                                     paths.REWARD_SOURCE], params.reward)
    # the train split tokenised once, a Parquet record batch at a time (never held as Python rows)
    with tokenise_parquet(tokenizer, paths.PREFERENCES, keep=on_side(held_out, False)) as train:
        history = train_reward_model(model, tokenizer, train, params.reward, params.model.n_positions,
                                     params.seed, context)
    state = context.runtime.full_state_dict(model)  # every process: a collective when sharded
    if not is_main_process():
        return {}
    shutil.rmtree(paths.REWARD_MODEL, ignore_errors=True)
    save_model(model, tokenizer, paths.REWARD_MODEL, state_dict=state)
    if holds_shards(model):  # score with the whole weights just saved, not this process's shards
        model = load_reward_model(paths.REWARD_MODEL)
    val = [row for part in parquet_rows(paths.PREFERENCES, on_side(held_out, True)) for row in part]
    prompt_texts = [r["prompt"] for r in val]
    chosen = score_responses(model, tokenizer, prompt_texts, [r["chosen"] for r in val],
                             [r["chosen_finished"] for r in val], params.model.n_positions)
    rejected = score_responses(model, tokenizer, prompt_texts, [r["rejected"] for r in val],
                               [r["rejected_finished"] for r in val], params.model.n_positions)
    prompts = {r["prompt_id"]: to_world_prompt(r) for r in rows(read_parquet(paths.PROMPTS))}
    metrics = {"train_pairs": train_pairs, "final_train_loss": history[-1]["loss"],
               **ranking_report(val, chosen, rejected, prompts)}
    write_json(paths.METRICS / "reward.json", metrics)
    write_csv(paths.PLOTS / "reward_train.csv", history)
    write_csv(paths.PLOTS / "reward_calibration.csv",
              calibration([c - r for c, r in zip(chosen, rejected)])[1])
    return metrics


def split_preferences(path: Path, val_fraction: float, seed: int) -> tuple[set[str], int, int]:
    """The prompts held out for validation (`held_out_prompts`) and the (train, validation) pair
    counts, from the file's prompt_id column alone; a StageInputError when either side is empty."""
    prompt_ids = [row["prompt_id"] for part in parquet_rows(path, columns=["prompt_id"]) for row in part]
    if not prompt_ids:
        raise StageInputError(f"{path}: no decisive preferences to train on")
    held_out = held_out_prompts(prompt_ids, val_fraction, seed)
    val = sum(prompt_id in held_out for prompt_id in prompt_ids)
    train = len(prompt_ids) - val
    if not train or not val:
        prompts = len(set(prompt_ids))
        raise StageInputError(
            f"reward.val_fraction {val_fraction} leaves no "
            f"{'training' if not train else 'validation'} pairs among {len(prompt_ids)} "
            f"preferences on {prompts} prompts; {'lower' if not train else 'raise'} it")
    return held_out, train, val


if __name__ == "__main__":
    run_stage("train_reward", train_reward, distributed=True)
