"""Progress outside a terminal: log lines at 10 % steps, never carriage-return frames."""

from __future__ import annotations

import io
import logging

from tqdm import tqdm

from fercore.core import progress


def test_log_lines_instead_of_bars(monkeypatch, caplog):
    monkeypatch.setattr(progress, "interactive", lambda: False)
    monkeypatch.setattr(progress.LogProgress, "__init__", _eager(progress.LogProgress.__init__))
    caplog.set_level(logging.INFO, logger="fercore.core.progress")
    bar = progress.progress_bar(range(50), desc="epoch 1/3", unit="batch")
    assert isinstance(bar, progress.LogProgress)
    assert list(bar) == list(range(50))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 10 and lines[0].startswith("epoch 1/3: 5/50 batch (10%") and "(100%" in lines[-1]
    assert not any("\r" in line for line in lines)


def test_quick_passes_log_only_the_end(monkeypatch, caplog):
    monkeypatch.setattr(progress, "interactive", lambda: False)
    caplog.set_level(logging.INFO, logger="fercore.core.progress")
    with progress.progress_bar(total=20, desc="hashes", unit="img") as bar:
        for _ in range(20):
            bar.update()
    assert [r.getMessage()[:21] for r in caplog.records] == ["hashes: 20/20 img (10"]


def test_terminal_and_disabled_bars_are_tqdm(monkeypatch):
    monkeypatch.setattr(progress, "interactive", lambda: True)
    bar = progress.progress_bar(range(3), file=io.StringIO())
    assert isinstance(bar, tqdm) and list(bar) == [0, 1, 2]
    monkeypatch.setattr(progress, "interactive", lambda: False)
    assert isinstance(progress.progress_bar(range(3), disable=True), tqdm)


def _eager(init):
    """LogProgress that logs every tenth at once (no minimum time between lines)."""
    def wrapped(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.every = 0.0
    return wrapped
