"""Synthetic-face generation for the thesis: named prompt templates, generation plans that cross
prompt factors (templates, intensity words, generators) on a credit budget, what a plan can detect,
and generator backends; the blind label sheet that has a person check the prompts' labels (``labelsheet``)."""

from __future__ import annotations

from fercore.synthetic import design
from fercore.synthetic.labelsheet import (
    BlindSheet,
    LabelAgreement,
    LabelSheetError,
    confirmed_faces,
    label_agreement,
    read_label_sheet,
    write_blind_sheet,
)
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

__all__ = ["BlindSheet", "build_prompt", "confirmed_faces", "design", "generation_plan", "label_agreement", "LabelAgreement",
           "LabelSheetError", "NEUTRAL_INTENSITY", "plan_effects", "read_label_sheet", "TEMPLATE_NOTES", "TEMPLATES",
           "write_blind_sheet", "write_plan", "write_plans"]
