"""Load params.yaml into typed dataclasses, failing before any work with the key that is wrong."""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from prefpipe.errors import ConfigError

T = TypeVar("T")


class ParamsError(ConfigError):
    """A params.yaml problem; the message names the file and the dotted key."""


def load_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ParamsError(f"{path}: file not found (copy params.yaml from the repository root)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML: {err}") from err
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: top level must be a mapping of sections, got {type(raw).__name__}")
    return raw


def build(cls: type[T], raw: Any, key: str, source: str) -> T:
    """Build dataclass `cls` from a mapping, checking every key and type recursively."""
    where = f"{source}: {key}" if key else source
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{where} must be a mapping, got {type(raw).__name__} {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        name = f"{key}.{unknown[0]}" if key else unknown[0]
        raise ParamsError(f"{source}: unknown key '{name}' (known keys here: {', '.join(fields)})")
    values = {}
    for name, field in fields.items():
        dotted = f"{key}.{name}" if key else name
        if name in raw:
            values[name] = _coerce(hints[name], raw[name], dotted, source)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ParamsError(f"{source}: missing required key '{dotted}'")
    obj = cls(**values)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        problem = validate()
        if problem:
            raise ParamsError(f"{source}: {key + '.' if key else ''}{problem}")
    return obj


def _coerce(hint: Any, value: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, key, source)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        errors = []
        for candidate in inner:
            try:
                return _coerce(candidate, value, key, source)
            except ParamsError as err:
                errors.append(str(err))
        raise ParamsError(errors[0])
    if origin is typing.Literal:
        if value not in args:
            raise ParamsError(f"{source}: '{key}' must be one of {list(args)}, got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"{source}: '{key}' must be a mapping, got {value!r}")
        key_type, value_type = args
        return {
            _coerce(key_type, k, f"{key}.{k}", source): _coerce(value_type, v, f"{key}.{k}", source)
            for k, v in value.items()
        }
    if origin is list:
        if not isinstance(value, list):
            raise ParamsError(f"{source}: '{key}' must be a list, got {value!r}")
        return [_coerce(args[0], v, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            value = _parse_number(value, key, source)
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{source}: '{key}' must be an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{source}: '{key}' must be true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ParamsError(f"{source}: '{key}' must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported params type {hint!r} for {key}")


def _parse_number(value: Any, key: str, source: str) -> float:
    # YAML 1.1 reads "1e-3" as a string; accept it as the number users meant.
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ParamsError(f"{source}: '{key}' must be a number, got {value!r}")
