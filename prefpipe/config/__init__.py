"""Typed params for every stage, loaded from params.yaml."""
from __future__ import annotations

import logging
from pathlib import Path

from prefpipe.config.loader import ParamsError, build, load_yaml
from prefpipe.config.model_refs import context_length, model_problem, read_config, resolve, untracked_note
from prefpipe.config.schema import EMBEDDED, Params
from prefpipe.vocab import JudgeBackend

__all__ = ["EMBEDDED", "Params", "ParamsError", "load_params"]

log = logging.getLogger("prefpipe")


def load_params(path: str | Path = "params.yaml", check_paths: bool = True) -> Params:
    """Read and validate params.yaml; raise ParamsError naming the key on any problem.

    With `check_paths`, the files and model folders it names are checked too (relative ones against
    the params file's folder): the prompt file exists, each model is a folder with config.json,
    weights and a tokenizer (or a hub id where one is allowed), and the policy reads as many
    positions as model.n_positions asks. A model DVC cannot track (outside data/inputs/, a hub id)
    is logged as a warning naming its key."""
    path = Path(path)
    params = build(Params, load_yaml(path), "", str(path))
    if check_paths:
        _check_paths(params, path)
    return params


def _check_paths(params: Params, source: Path) -> None:
    base = source.resolve().parent
    if not params.embedded_data and not resolve(params.data.prompts, base).exists():
        raise ParamsError(f"{source}: data.prompts: no such file or folder '{params.data.prompts}'")
    models = [("model.policy", params.model.policy, True, not params.embedded_model),
              ("reward.model", params.reward.model, True, bool(params.reward.model)),
              ("label.critic.local.model", params.label.critic.local.model, False,
               params.label.critic.judge == JudgeBackend.LOCAL)]
    for key, ref, hub, used in models:
        problem = model_problem(ref, base, hub) if used else None
        if problem:
            raise ParamsError(f"{source}: {key}: {problem}")
        note = untracked_note(ref, base) if used else None
        if note:
            log.warning("%s: %s: %s", source, key, note)
    if not params.embedded_model:
        _check_context(params, source, base)


def _check_context(params: Params, source: Path, base: Path) -> None:
    """model.n_positions is the token budget of every training and scoring batch: no more than the
    policy's own positions; and every sampler's new tokens leave room for a prompt. (A hub id is
    not read: nothing is downloaded to validate params.)"""
    found = context_length(read_config(params.model.policy, base))
    if not found:
        return
    key, positions = found
    reads = f"model.policy '{params.model.policy}' reads ({key}: {positions} in its config.json)"
    if positions < params.model.n_positions:
        raise ParamsError(f"{source}: model.n_positions: {params.model.n_positions} tokens is more than "
                          f"{reads}; set model.n_positions to {positions} or less")
    samplers = [("generate", params.generate.sampling), ("evaluate", params.evaluate.sampling)]
    algorithm = getattr(params.policy, params.policy.algorithm)
    if hasattr(algorithm, "sampling"):  # ppo and grpo sample; dpo does not
        samplers.append((f"policy.{params.policy.algorithm}", algorithm.sampling))
    for name, sampling in samplers:
        if sampling.max_new_tokens >= positions:
            raise ParamsError(f"{source}: {name}.sampling.max_new_tokens: {sampling.max_new_tokens} new "
                              f"tokens leave no room for a prompt: {reads}; set it below {positions}")
