"""Build, load and save policy and reward models as Hugging Face folders."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
)

from prefpipe.models.formatting import apply_prompt_format
from prefpipe.models.version import ENVIRONMENT_KEYS
from prefpipe.vocab import PromptFormat

EXTERNAL_POINTER = "external_model.json"


def build_embedded_lm(model_params, tokenizer, seed: int) -> GPT2LMHeadModel:
    """A tiny random-init GPT-2 sized by params.model, for the default world."""
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=model_params.n_positions,
                        n_embd=model_params.n_embd, n_layer=model_params.n_layer,
                        n_head=model_params.n_head, bos_token_id=tokenizer.eos_token_id,
                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return GPT2LMHeadModel(config)


def resolve_model_dir(path: str | Path) -> str:
    """A folder written by the sft stage may point at an external model; follow the pointer."""
    pointer = Path(path) / EXTERNAL_POINTER
    if pointer.exists():
        return json.loads(pointer.read_text())["model"]
    return str(path)


def load_tokenizer(path: str | Path, prompt_format: str = PromptFormat.AUTO):
    """The tokenizer of a model folder, with a pad token and the prompt format (model.prompt_format)."""
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir(path))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return apply_prompt_format(tokenizer, prompt_format)


def load_causal_lm(path: str | Path):
    model = AutoModelForCausalLM.from_pretrained(resolve_model_dir(path), dtype=torch.float32)
    return model


def load_reward_model(path: str | Path):
    """A scalar-head model: a trained reward model, or a causal LM backbone given a fresh head."""
    model = AutoModelForSequenceClassification.from_pretrained(
        resolve_model_dir(path), num_labels=1, dtype=torch.float32)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = model.config.eos_token_id
    return model


def save_model(model, tokenizer, out_dir: str | Path) -> None:
    """A Hugging Face folder that carries nothing of the environment it was written in, so the same
    weights give the same bytes (and DVC hash) anywhere: `strip_environment_keys`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    strip_environment_keys(out_dir)


def strip_environment_keys(folder: Path) -> None:
    """Remove version.ENVIRONMENT_KEYS from the top level of the folder's JSON files.

    transformers copies how a tokenizer was loaded into tokenizer_config.json: `local_files_only`
    is true when HF_HUB_OFFLINE=1 was set, `is_local` says whether a path was a folder. The library
    version (`transformers_version`) stays: uv.lock pins it, and another one may compute otherwise."""
    for path in sorted(folder.glob("*.json")):
        content = json.loads(path.read_text())
        if isinstance(content, dict) and ENVIRONMENT_KEYS & content.keys():
            kept = {k: v for k, v in content.items() if k not in ENVIRONMENT_KEYS}
            path.write_text(json.dumps(kept, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
