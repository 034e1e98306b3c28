"""One error family: every failure a user can cause or fix is a `PrefpipeError`.

The CLI and the stages turn any of these into one line on stderr and exit code 2 (a traceback
only with `--debug`); anything else is a bug and keeps its traceback. Each subclass also derives
from the builtin a caller would have caught before (ValueError, RuntimeError), so old handlers keep
working."""
from __future__ import annotations


class PrefpipeError(Exception):
    """Base of every error whose message tells the user what to change (file, row, params key)."""


class ConfigError(PrefpipeError, ValueError):
    """params.yaml (or another config file) is malformed; the message names the dotted key."""


class DataError(PrefpipeError, ValueError):
    """An input file or row can't be used; the message names the file and the row."""


class StoreError(PrefpipeError, RuntimeError):
    """The preference store can't do what was asked (locked too long, missing rows)."""


class LabelerError(PrefpipeError, RuntimeError):
    """A labeler (critic backend, verifier, human queue) can't label; the message says why."""


class StageInputError(PrefpipeError, ValueError):
    """A stage's inputs or params can't do the job; the message says which and what to change."""
