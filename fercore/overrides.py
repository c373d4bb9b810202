"""``key=value`` overrides from the command line, values parsed as YAML (``lr=3e-4``, ``epochs=2``)."""

from __future__ import annotations

from typing import Any

import yaml


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``["lr=3e-4", "stages=[{epochs: 2, trainable: head, lr: 1e-3}]"]`` -> updated copy."""
    data = dict(data)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not key=value")
        data[key.strip()] = yaml.safe_load(value)
    return data
