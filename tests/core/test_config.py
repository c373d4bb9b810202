"""One schema from the dataclass fields: types, bounds, choices, unknown keys with a did-you-mean."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from fercore.core.config import ConfigError, check_fields, check_keys, rules


@dataclass
class LaterConfig:
    """A config as a later issue might add one: its rules are its fields, nothing else."""

    patience: int = rules(3, ge=0)
    margin: float = rules(0.25, ge=0, lt=1)
    mode: str = rules("min", choices=("min", "max"))
    note: str | None = None
    tags: list[str] | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        check_fields(self)


def test_values_get_their_types():
    config = LaterConfig(patience="4", margin="2.5e-1", enabled="false", note=None)
    assert (config.patience, config.margin, config.enabled) == (4, 0.25, False)


@pytest.mark.parametrize(("values", "message"), [
    ({"patience": "four"}, "config patience: expected an integer, got 'four'"),
    ({"patience": -1}, "config patience=-1: must be >= 0"),
    ({"margin": 1.0}, "config margin=1.0: must be < 1"),
    ({"mode": "mx"}, "config mode='mx': choose one of min, max (did you mean 'max'?)"),
    ({"tags": "a"}, "config tags: expected a list, got 'a'"),
    ({"enabled": 3}, "config enabled: expected true or false, got 3"),
    ({"margin": None}, "config margin: expected a number, got nothing"),
])
def test_bad_values_name_the_key(values, message):
    with pytest.raises(ConfigError) as err:
        LaterConfig(**values)
    assert str(err.value).startswith(message) and err.value.key == next(iter(values))


def test_unknown_keys_get_a_did_you_mean():
    with pytest.raises(ConfigError, match=r"unknown config key 'patiense' \(did you mean 'patience'\?\)"):
        check_keys(LaterConfig, {"patiense": 2})
    check_keys(LaterConfig, {"patience": 2})
