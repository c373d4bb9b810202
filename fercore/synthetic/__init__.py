"""Synthetic-face generation for the thesis: prompts, generation plans and generator backends; the blind label sheet
that has a person check the prompts' labels (``labelsheet``)."""

from __future__ import annotations

from fercore.synthetic.labelsheet import (
    BlindSheet,
    LabelAgreement,
    LabelSheetError,
    confirmed_faces,
    label_agreement,
    read_label_sheet,
    write_blind_sheet,
)
from fercore.synthetic.prompts import build_prompt

__all__ = ["BlindSheet", "build_prompt", "confirmed_faces", "label_agreement", "LabelAgreement", "LabelSheetError",
           "read_label_sheet", "write_blind_sheet"]
