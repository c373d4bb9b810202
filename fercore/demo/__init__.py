"""The embedded demo: procedurally drawn faces and grids, and the pipeline that runs everything on them."""

from __future__ import annotations

from fercore.demo.dataset import DemoSpec, drawn_detections, make_demo_data
from fercore.demo.pipeline import DEMO_MODELS, DemoRunConfig, run_demo

__all__ = ["DEMO_MODELS", "DemoRunConfig", "DemoSpec", "drawn_detections", "make_demo_data", "run_demo"]
