"""What the flow does around a stage, as the stage declares it in dvc.yaml: `meta: {after: HOOK}`.

A hook runs after its stage has run (or been skipped) and may rerun it: it gets the stage, the
validated params and `rerun()`, which reruns the stage with --force as a Prefect task and returns
its outcome. It returns the stage's new outcome, or None when it did nothing. The flow dispatches
on the declared name only, so it knows no stage by name; a new hook is a function here plus its
name in AFTER_HOOKS."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from flows.dag import Stage
from prefpipe.config import Params
from prefpipe.errors import ConfigError

AfterHook = Callable[[Stage, Params, Callable[[], str], Path], str | None]


def wait_for_humans(stage: Stage, params: Params, rerun: Callable[[], str], root: Path) -> str | None:
    """Pause the flow while annotators answer the human tasks the stage queued (up to
    `label.human.wait_s`), then rerun the stage to collect what they submitted."""
    if params.label.human.wait_s <= 0:
        return None
    from flows.human_wait import wait_for_human_labels  # imports prefect: only when needed
    from prefpipe.annotate.human_queue import pending_tasks
    from prefpipe.store import Store

    store = Store(root / params.store.path, params.store.lock_timeout_s)
    if not pending_tasks(store):
        return None
    wait_for_human_labels(store, params.label.human.wait_s)
    return rerun()


AFTER_HOOKS: dict[str, AfterHook] = {"wait_for_humans": wait_for_humans}


def check_hooks(stages: Iterable[Stage], dvc_yaml: str | Path = "dvc.yaml") -> None:
    """Every `meta.after` in dvc.yaml names a hook here; fails before any stage runs."""
    for stage in stages:
        if stage.after is not None and stage.after not in AFTER_HOOKS:
            raise ConfigError(f"{dvc_yaml}: stage {stage.name}: meta.after {stage.after!r} is not a "
                              f"hook of flows/hooks.py; known: {sorted(AFTER_HOOKS)}")
