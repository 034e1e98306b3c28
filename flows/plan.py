"""What a run will do, checked before anything starts: the validated params and the stages, in order.

Imports no Prefect (unless stages go to work pools), so `prefpipe run` fails on bad params or stage
names in one line before it starts a Prefect server or imports Prefect."""
from __future__ import annotations

from flows.dag import Stage, load_stages
from flows.env import ROOT
from flows.hooks import check_hooks
from prefpipe.config import Params, load_params
from prefpipe.data.preflight import check_against_data
from prefpipe.errors import ConfigError


def plan(only: list[str] | None = None) -> tuple[Params, list[Stage]]:
    """The validated params and the stages to run, in order (all, or just `only`). Raises a
    ConfigError naming the params key or the stage; the CLI calls it too, to fail before Prefect."""
    params = load_params(ROOT / "params.yaml")
    check_against_data(params, ROOT / "params.yaml")
    stages = load_stages(ROOT / "dvc.yaml")
    check_hooks(stages, ROOT / "dvc.yaml")
    if params.orchestration.work_pools:
        from flows.dispatch import check_work_pools  # imports Prefect: only when stages go to pools

        check_work_pools(params.orchestration, stages, ROOT / "params.yaml")
    unknown = set(only or ()) - {s.name for s in stages}
    if unknown:
        raise ConfigError(f"unknown stage(s) {sorted(unknown)}; dvc.yaml has "
                          f"{[s.name for s in stages]}")
    return params, [s for s in stages if not only or s.name in only]
