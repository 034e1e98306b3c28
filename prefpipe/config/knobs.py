"""`knob`: a params field with a default and a help line."""
from __future__ import annotations

from dataclasses import field
from typing import Any


def knob(default: Any, help: str) -> Any:
    """A params field with a default and a help line (shown by `prefpipe params`)."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})
