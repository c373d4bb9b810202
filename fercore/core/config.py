"""One schema for config dataclasses: the fields' type hints and ``metadata`` are the rules.

:func:`check_fields` (called from a dataclass's ``__post_init__``) gives every field its
type (YAML reads ``3e-4`` as a string) and checks it against the field's metadata:
``ge`` / ``gt`` / ``le`` / ``lt`` bounds and ``choices``. :func:`check_keys` refuses unknown
keys with a did-you-mean. A field added later is validated from its annotation alone.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePath
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config key or value that the schema refuses; ``key`` names the field."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key written twice in one mapping (PyYAML keeps the last)."""

    source = "<yaml>"

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        lines: dict[Any, list[int]] = {}
        for key_node, _ in node.value:  # the node's own keys: keys merged in with `<<` may be overridden
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                lines.setdefault(key, []).append(key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: PyYAML's own error says so
                continue
        for key, at in lines.items():
            if len(at) > 1:
                raise ConfigError(f"{self.source}: key {key!r} is written {len(at)} times (lines "
                                  f"{', '.join(map(str, at))}); a key may appear once: keep the one you mean", str(key))
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, source: str) -> Any:
    """The document in ``text``, read strictly (a duplicated key is a :class:`ConfigError` naming
    the key and its lines); ``source`` names the file or the ``--set`` in messages."""
    loader = _StrictLoader(text)
    loader.source = source
    try:
        return loader.get_single_data()
    except yaml.YAMLError as err:
        raise ConfigError(f"{source} is not valid YAML: {' '.join(str(err).split())}") from None
    finally:
        loader.dispose()


def read_text_file(path: Path) -> str:
    """A text file as UTF-8 (a byte-order mark, as Windows editors write, is dropped); another
    encoding is a :class:`ConfigError` naming the file and the fix."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path} is not UTF-8 text (byte {err.start} is {data[err.start:err.start + 1]!r}): "
                          "save it as UTF-8 in your editor") from None


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """The mapping a YAML file holds ({} when empty), read strictly (:func:`load_yaml`); a syntax
    error, a duplicated key or another kind of document is a :class:`ConfigError` naming the file."""
    data = load_yaml(read_text_file(path), str(path)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must be a mapping (key: value lines), not a {type(data).__name__}")
    return data


def rules(default: Any = dataclasses.MISSING, **checks: Any) -> Any:
    """A dataclass field with checks: ``rules(32, ge=1)``, ``rules("cosine", choices=("cosine", "constant"))``."""
    return dataclasses.field(default=default, metadata=checks)


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """' (did you mean 'lr'?)' for the closest known word, or ''."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    if not close:  # learning_rate -> lr: a prefix or an abbreviation
        close = [k for k in known if word.startswith(k) or k.startswith(word) or
                 "".join(p[0] for p in word.split("_") if p) == k][:1]
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_keys(cls: type, data: Mapping[str, Any]) -> None:
    """Refuse keys that are not fields of the dataclass ``cls``, suggesting the nearest one."""
    known = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in known:
            raise ConfigError(f"unknown config key '{key}'{did_you_mean(str(key), known)}; "
                              f"known keys: {', '.join(sorted(known))}", key)


def _allowed(hint: Any) -> tuple[set[Any], bool]:
    """(allowed base types, None allowed) of a type hint such as ``int | None`` or ``list[str]``."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = typing.get_args(hint)
    else:
        args = (hint,)
    return {typing.get_origin(a) or a for a in args if a is not type(None)}, type(None) in args


def _coerce(key: str, value: Any, kinds: set[Any]) -> Any:
    """``value`` as one of ``kinds`` (bool, int, float, str, list, dict or a dataclass), or ConfigError."""
    if isinstance(value, bool):
        if bool in kinds:
            return value
    elif bool in kinds and isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
        return value.lower() in ("true", "yes")
    for kind in (int, float):
        if kind not in kinds or isinstance(value, bool):
            continue
        if isinstance(value, kind):
            return value
        if kind is float and isinstance(value, int):
            return float(value)
        if kind is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and str not in kinds:
            try:
                return kind(value)
            except ValueError:
                pass
    if str in kinds and (isinstance(value, (str, PurePath)) or (isinstance(value, (int, float)) and not kinds & {int, float})):
        return str(value)  # `experiment: 2024` is a name; a Path is its string
    if list in kinds and isinstance(value, (list, tuple)):
        return list(value)
    if dict in kinds and isinstance(value, dict):
        return value
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a mapping"}
    wanted = " or ".join(names.get(k, getattr(k, "__name__", str(k))) for k in sorted(kinds, key=str))
    shown = "nothing (empty value)" if value is None else repr(value)
    raise ConfigError(f"config {key}: expected {wanted}, got {shown}", key)


def _check_bounds(key: str, value: Any, meta: Mapping[str, Any]) -> None:
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"config {key}={value!r}: choose one of {', '.join(map(str, meta['choices']))}"
                          f"{did_you_mean(str(value), map(str, meta['choices']))}", key)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if not math.isfinite(value):
        raise ConfigError(f"config {key}={value!r}: must be a finite number", key)
    bounds = {"ge": (lambda a, b: a >= b, ">="), "gt": (lambda a, b: a > b, ">"),
              "le": (lambda a, b: a <= b, "<="), "lt": (lambda a, b: a < b, "<")}
    for name, (ok, sign) in bounds.items():
        if name in meta and not ok(value, meta[name]):
            raise ConfigError(f"config {key}={value!r}: must be {sign} {meta[name]}", key)


def check_fields(obj: Any) -> None:
    """Coerce and check every field of the dataclass instance ``obj`` in place (see the module docstring)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        kinds, optional = _allowed(hints[f.name])
        if value is None:
            if not optional:
                _coerce(f.name, value, kinds)  # raises: a value is required
            continue
        if any(dataclasses.is_dataclass(k) for k in kinds) or kinds == {Any}:
            continue
        value = _coerce(f.name, value, kinds)
        _check_bounds(f.name, value, f.metadata)
        setattr(obj, f.name, value)
