"""Stage train_policy: optimise the SFT policy on the preferences (DPO).

Run: python -m tasks.train_policy"""
from __future__ import annotations

import logging
import shutil

from prefpipe.models.io import load_causal_lm, load_tokenizer, save_model
from prefpipe.store import read_parquet, rows
from prefpipe.train.common import seed_everything
from prefpipe.train.dpo import reference_logprobs, train_dpo
from tasks import paths
from tasks._stage import StageInputError, run_stage, write_csv, write_json

log = logging.getLogger("prefpipe")


def train_policy(params, store) -> dict:
    seed_everything(params.seed)
    preferences = rows(read_parquet(paths.PREFERENCES))
    if not preferences:
        raise StageInputError(f"{paths.PREFERENCES}: no decisive preferences to train on")
    tokenizer = load_tokenizer(paths.SFT_MODEL)
    max_length = params.model.n_positions
    reference = load_causal_lm(paths.SFT_MODEL)
    ref_chosen, ref_rejected = reference_logprobs(reference, tokenizer, preferences, max_length)
    del reference  # reference log-probs are precomputed: only the policy stays in memory
    policy = load_causal_lm(paths.SFT_MODEL)
    dpo = params.policy.dpo
    log.info("DPO on %d pairs (beta %.3g, lr %.3g)", len(preferences), dpo.beta, dpo.optim.lr)
    history = train_dpo(policy, tokenizer, preferences, ref_chosen, ref_rejected, dpo, max_length,
                        params.seed, params.runtime.precision)
    shutil.rmtree(paths.POLICY_MODEL, ignore_errors=True)
    save_model(policy, tokenizer, paths.POLICY_MODEL)
    last = history[-10:]
    metrics = {"algorithm": params.policy.algorithm, "pairs": len(preferences),
               "steps": len(history),
               **{k: sum(r[k] for r in last) / len(last)
                  for k in ("loss", "reward_accuracy", "reward_margin", "chosen_logp_shift",
                            "rejected_logp_shift")}}
    write_json(paths.METRICS / "policy.json", metrics)
    write_csv(paths.PLOTS / "policy_train.csv", history)
    return metrics


if __name__ == "__main__":
    run_stage("train_policy", train_policy)
