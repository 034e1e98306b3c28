"""Typed params for every stage, loaded from params.yaml."""
from __future__ import annotations

from pathlib import Path

from prefpipe.config.loader import ParamsError, build, load_yaml
from prefpipe.config.schema import EMBEDDED, Params

__all__ = ["EMBEDDED", "Params", "ParamsError", "load_params"]


def load_params(path: str | Path = "params.yaml", check_paths: bool = True) -> Params:
    """Read and validate params.yaml; raise ParamsError naming the key on any problem."""
    path = Path(path)
    params = build(Params, load_yaml(path), "", str(path))
    if check_paths:
        _check_paths(params, path)
    return params


def _check_paths(params: Params, source: Path) -> None:
    if not params.embedded_data and not Path(params.data.prompts).exists():
        raise ParamsError(f"{source}: data.prompts: no such file or folder '{params.data.prompts}'")
    policy = params.model.policy
    looks_local = policy.startswith((".", "/", "~")) or Path(policy).exists()
    if not params.embedded_model and looks_local and not Path(policy).expanduser().exists():
        raise ParamsError(f"{source}: model.policy: no such model folder '{policy}'")
