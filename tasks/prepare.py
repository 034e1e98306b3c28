"""Stage prepare: the prompt table (world or your data), the SFT corpus, the tokenizer and the
fingerprints of the models the params name (models/sources/).

Run: python -m tasks.prepare   (or: dvc repro prepare)"""
from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa

from prefpipe.data.prompts_io import load_prompt_rows
from prefpipe.models.fingerprint import fingerprint
from prefpipe.models.formatting import prompt_text
from prefpipe.store import Store, write_parquet
from prefpipe.vocab import JudgeBackend
from prefpipe.world.catalog import to_world_prompt, user_prompt_rows, world_prompt_rows
from prefpipe.world.corpus import sft_corpus
from prefpipe.world.tokenizer import train_tokenizer
from tasks import paths
from tasks._stage import StageInputError, run_stage, write_json

log = logging.getLogger("prefpipe")


def prepare(params, store: Store) -> dict:
    if params.embedded_data:
        rows = world_prompt_rows(params.world.max_operand, params.data.heldout_fraction, params.seed)
    else:
        user_rows = load_prompt_rows(params.data.prompts, params.data.prompt_column,
                                     params.data.category_column)
        rows = user_prompt_rows(user_rows, params.data.prompts, params.data.heldout_fraction,
                                params.seed)
    table = pa.Table.from_pylist(rows)
    store.upsert("prompts", table)
    write_parquet(table, paths.PROMPTS)
    log.info("%d prompts (%d held out) -> %s and the store", len(rows),
             sum(r["split"] == "heldout" for r in rows), paths.PROMPTS)

    metrics = {"prompts": len(rows), "heldout_prompts": sum(r["split"] == "heldout" for r in rows)}
    if params.embedded_model:
        train = [to_world_prompt(r) for r in rows if r["split"] == "train"]
        if any(p is None for p in train):
            raise StageInputError("model.policy 'embedded' needs data.prompts 'embedded': the embedded "
                             "model is trained on the world's SFT corpus")
        corpus = sft_corpus(train, params.world.sft_examples, params.world, params.seed)
        write_parquet(pa.Table.from_pylist(corpus), paths.SFT_CORPUS)
        texts = [prompt_text(None, c["prompt"]) + " " + c["response"] for c in corpus]
        tokenizer = train_tokenizer(texts + [r["prompt"] for r in rows], params.model.vocab_size)
        tokenizer.save_pretrained(paths.TOKENIZER)
        metrics["sft_examples"] = len(corpus)
        log.info("SFT corpus of %d demonstrations; tokenizer of %d tokens -> %s", len(corpus),
                 len(tokenizer), paths.TOKENIZER)
    else:
        write_parquet(pa.table({"prompt_id": pa.array([], pa.string())}), paths.SFT_CORPUS)
        paths.TOKENIZER.mkdir(parents=True, exist_ok=True)
        (paths.TOKENIZER / "README").write_text(f"tokenizer comes with {params.model.policy}\n")
    write_model_sources(params)
    return metrics


def write_model_sources(params) -> None:
    """models/sources/<name>.json: the fingerprint of each model the params name (constant for the
    embedded model and for none), so that a changed model folder under data/inputs/ (a dependency
    of this stage) reruns exactly the stages that read that model."""
    critic = params.label.critic.local.model if params.label.critic.judge == JudgeBackend.LOCAL else ""
    sources = {paths.POLICY_SOURCE: params.model.policy, paths.REWARD_SOURCE: params.reward.model,
               paths.CRITIC_SOURCE: critic}
    for path, ref in sources.items():
        write_json(path, fingerprint(ref, Path.cwd()))
    log.info("model fingerprints -> %s", paths.MODEL_SOURCES)


if __name__ == "__main__":
    run_stage("prepare", prepare, uses_torch=False)  # the tokenizer trains with `tokenizers` alone
