"""The toolbox every layer uses: files written atomically, config checking and overrides, runtime (devices, seeds, caches), progress, emotion labels, provenance, refusing a run whose recorded options differ, the inference audit and how numbers read. Its modules are its public surface."""

from __future__ import annotations

from fercore.core import audit, config, files, labels, overrides, present, progress, provenance, records, runtime

__all__ = ["audit", "config", "files", "labels", "overrides", "present", "progress", "provenance", "records", "runtime"]
