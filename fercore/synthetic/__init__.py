"""Synthetic-face generation for the thesis: named prompt templates, generation plans that cross
prompt factors (templates, intensity words, generators) on a credit budget, what a plan can detect,
and generator backends."""

from __future__ import annotations

from fercore.synthetic import design
from fercore.synthetic.prompts import (
    NEUTRAL_INTENSITY,
    TEMPLATE_NOTES,
    TEMPLATES,
    build_prompt,
    generation_plan,
    plan_effects,
    write_plan,
    write_plans,
)

__all__ = ["build_prompt", "NEUTRAL_INTENSITY", "design", "generation_plan", "plan_effects", "TEMPLATE_NOTES", "TEMPLATES",
           "write_plan", "write_plans"]
