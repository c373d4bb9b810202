"""``key=value`` overrides from the command line, values parsed as YAML (``lr=3e-4``, ``epochs=2``)."""

from __future__ import annotations

from typing import Any

from fercore.core.config import ConfigError, load_yaml


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``["lr=3e-4", "stages=[{epochs: 2, trainable: head, lr: 1e-3}]"]`` -> updated copy."""
    data = dict(data)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r} is not KEY=VALUE (e.g. --set epochs=2)")
        try:
            data[key.strip()] = load_yaml(value, f"--set {item}")
        except ConfigError as err:
            raise ConfigError(str(err), key.strip()) from None
    return data
