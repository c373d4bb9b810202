"""Refusing to mix runs: compare the options a folder recorded when it was started with the current
ones, and raise (with the differences) when they differ. Training experiments (``experiment.json``),
grid extraction (``.grids/options.json``) and the notebook suite (its input fingerprints) all do this."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any


def differences(before: Mapping[str, Any], now: Mapping[str, Any], *, keys: Iterable[str] | None = None,
                expand: Sequence[str] = (), names_only: bool = False) -> list[str]:
    """``"key: before -> now"`` (or only ``key`` with ``names_only``) for each key whose value differs.

    ``keys``: the keys compared, in order (default: both dicts' keys, sorted). A key in ``expand`` holds
    a nested dict: instead of one line for it, its own differences over the current dict's keys follow
    the top-level ones (a changed training config then names the setting, not the whole config)."""
    keys = list(keys) if keys is not None else sorted(set(before) | set(now), key=str)
    out = [_line(key, before.get(key), now.get(key), names_only) for key in keys
           if key not in expand and before.get(key) != now.get(key)]
    for key in expand:
        inner_before, inner_now = before.get(key) or {}, now.get(key) or {}
        out += differences(inner_before, inner_now, keys=list(inner_now), names_only=names_only)
    return out


def _line(key: str, old: Any, new: Any, names_only: bool) -> str:
    return str(key) if names_only else f"{key}: {old!r} -> {new!r}"


def refuse_changes(before: Mapping[str, Any], now: Mapping[str, Any], error: Callable[[list[str]], Exception], *,
                   keys: Iterable[str] | None = None, expand: Sequence[str] = (), names_only: bool = False) -> None:
    """Raise ``error(differences)`` when the recorded ``before`` and the current ``now`` differ (see :func:`differences`)."""
    found = differences(before, now, keys=keys, expand=expand, names_only=names_only)
    if found:
        raise error(found)
