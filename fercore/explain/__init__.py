"""Inside the model: class activation maps in face regions, embeddings and domain-gap statistics."""

from __future__ import annotations

from fercore.explain import embeddings
from fercore.explain.cam import CamLayer, CamReport, cam_report, canonical_labels
from fercore.explain.embeddings import centroid_distances, mmd_test

__all__ = ["cam_report", "CamLayer", "CamReport", "canonical_labels", "centroid_distances", "embeddings", "mmd_test"]
