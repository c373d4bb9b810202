"""Synthetic-face generation for the thesis: prompts, generation plans and generator backends."""

from __future__ import annotations

from fercore.synthetic.prompts import build_prompt

__all__ = ["build_prompt"]
