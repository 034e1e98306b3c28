"""Stage sft: train the embedded tiny LM on the world's SFT corpus, or point at your model.

Run: python -m tasks.sft"""
from __future__ import annotations

import json
import logging
import shutil

from prefpipe.models.io import (
    EXTERNAL_POINTER,
    build_embedded_lm,
    holds_shards,
    load_causal_lm,
    load_tokenizer,
    save_model,
)
from prefpipe.store import read_parquet, rows
from prefpipe.train.common import seed_everything
from prefpipe.train.sft import response_nll, train_sft
from tasks import paths
from tasks._stage import StageInputError, is_main_process, run_stage, train_context, write_csv, write_json

log = logging.getLogger("prefpipe")
HELDOUT_NLL_EXAMPLES = 500


def sft(params, store) -> dict:
    shutil.rmtree(paths.SFT_MODEL, ignore_errors=True)
    if not params.embedded_model:
        paths.SFT_MODEL.mkdir(parents=True)
        (paths.SFT_MODEL / EXTERNAL_POINTER).write_text(json.dumps(_policy_source(params), sort_keys=True))
        log.info("model.policy is %s: SFT skipped, stages use it as the SFT model",
                 params.model.policy)
        metrics = {"skipped": True}
        write_json(paths.METRICS / "sft.json", metrics)
        write_csv(paths.PLOTS / "sft_loss.csv", [], columns=["step", "loss"])
        return metrics
    seed_everything(params.seed)
    tokenizer = load_tokenizer(paths.TOKENIZER, params.model.prompt_format)
    corpus = rows(read_parquet(paths.SFT_CORPUS))
    n_heldout = min(HELDOUT_NLL_EXAMPLES, len(corpus) // 10)
    heldout, train = corpus[:n_heldout], corpus[n_heldout:]
    model = build_embedded_lm(params.model, tokenizer, params.seed)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("training a %.2fM-parameter GPT-2 on %d demonstrations", n_params / 1e6, len(train))
    context = train_context(params, "sft", [paths.SFT_CORPUS, paths.TOKENIZER], params.sft)
    history = train_sft(model, tokenizer, train, params.sft.optim, params.model.n_positions,
                        params.seed, context, dropout=params.sft.dropout)
    state = context.runtime.full_state_dict(model)  # every process: a collective when sharded
    if not is_main_process():
        return {}
    save_model(model, tokenizer, paths.SFT_MODEL, state_dict=state)
    if holds_shards(model):  # evaluate the whole weights just saved, not this process's shards
        model = load_causal_lm(paths.SFT_MODEL)
    metrics = {"parameters": n_params, "final_train_loss": history[-1]["loss"],
               "heldout_nll": response_nll(model, tokenizer, heldout, params.model.n_positions)
               if heldout else None}
    write_json(paths.METRICS / "sft.json", metrics)
    write_csv(paths.PLOTS / "sft_loss.csv", history)
    return metrics


def _policy_source(params) -> dict:
    """The fingerprint prepare recorded for model.policy: in the pointer, it makes models/sft (and
    so every stage after it) change when the model's files change."""
    source = json.loads(paths.POLICY_SOURCE.read_text())
    if source.get("model") != params.model.policy:
        raise StageInputError(f"{paths.POLICY_SOURCE} is for model.policy '{source.get('model')}', not "
                              f"'{params.model.policy}'; run the prepare stage first (dvc repro prepare)")
    return source


if __name__ == "__main__":
    run_stage("sft", sft, distributed=True)
