"""Resumable training: a checkpoint every N optimizer steps, restored on the next run.

A checkpoint holds everything that decides the rest of the run: model and optimizer state, the
schedule, RNG states, the step reached (which fixes the data position, since batch order is a pure
function of seed and step), the history so far, and any extra stateful objects (a KL controller,
running reward moments). It is written to a temp file and renamed into place, so a kill mid-write
leaves the previous checkpoint intact.
"""
from __future__ import annotations

import logging
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("prefpipe")
STATE_FILE = "state.pt"


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(),
            "torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


class Checkpointer:
    """Saves to `directory` every `every` steps (0 = never) from the main process only."""

    def __init__(self, directory: str | Path | None, every: int, is_main: bool = True,
                 barrier=lambda: None):
        self.directory = Path(directory) if directory else None
        self.every = every if directory else 0
        self.is_main, self.barrier = is_main, barrier

    @property
    def path(self) -> Path | None:
        return self.directory / STATE_FILE if self.directory else None

    def restore(self, model, optimizer, scheduler, extras: dict) -> tuple[int, list[dict]]:
        """Load the last checkpoint into the given objects -> (steps done, history). (0, []) if none."""
        if not self.every or not self.path.exists():
            return 0, []
        state = torch.load(self.path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        for name, obj in extras.items():
            obj.load_state_dict(state["extras"][name])
        set_rng_state(state["rng"])
        log.info("resuming from %s at step %d", self.path, state["step"])
        return state["step"], state["history"]

    def step_done(self, step: int, model, optimizer, scheduler, extras: dict,
                  history: list[dict]) -> None:
        """Call after optimizer step number `step` (1-based); saves when it is a checkpoint step."""
        if not self.every or step % self.every:
            return
        if self.is_main:
            self.directory.mkdir(parents=True, exist_ok=True)
            state = {"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "rng": rng_state(), "history": history,
                     "extras": {name: obj.state_dict() for name, obj in extras.items()}}
            partial = self.path.with_suffix(".partial")
            torch.save(state, partial)
            os.replace(partial, self.path)
        self.barrier()

    def finish(self) -> None:
        """The run completed: its checkpoint has served its purpose."""
        if self.directory and self.is_main:
            shutil.rmtree(self.directory, ignore_errors=True)
            try:  # the stage's folder (checkpoints/<stage>/), when no other run's checkpoint is in it
                self.directory.parent.rmdir()
            except OSError:
                pass
