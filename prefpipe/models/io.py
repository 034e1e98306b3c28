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


def save_model(model, tokenizer, out_dir: str | Path,
               state_dict: dict[str, torch.Tensor] | None = None) -> None:
    """A Hugging Face folder that carries nothing of the environment it was written in, so the same
    weights give the same bytes (and DVC hash) anywhere: `strip_environment_keys`.

    `state_dict`: the weights to write instead of the model's own, e.g. `Runtime.full_state_dict`
    of a sharded model (whose own parameters are this process's shards). The same weights write
    the same bytes either way (`retie`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, state_dict=None if state_dict is None else retie(model, state_dict))
    tokenizer.save_pretrained(out_dir)
    strip_environment_keys(out_dir)


def holds_shards(model: torch.nn.Module) -> bool:
    """Whether this process holds only shards of the model's parameters (FSDP2 DTensors, ZeRO-3
    partitions): a forward pass on it is a collective, which one process alone waits on forever."""
    return any(hasattr(p, "to_local") or hasattr(p, "ds_tensor") for p in model.parameters())


def retie(model, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state_dict` with each of the model's tied weights (GPT-2's lm_head and token embedding) one
    tensor again.

    A gathered state dict (FSDP, DeepSpeed, a copy from a GPU) holds a tied pair as two equal
    copies. save_pretrained drops the tied key only when both share storage; with copies the
    file would hold the matrix twice and differ from the one a plain save writes."""
    state = dict(state_dict)
    for target, source in (getattr(model, "all_tied_weights_keys", None) or {}).items():
        if target in state and source in state and torch.equal(state[target], state[source]):
            state[target] = state[source]
    return state


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
