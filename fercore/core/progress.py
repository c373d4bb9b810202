"""Progress for people and for log files: tqdm bars in a terminal or notebook; elsewhere (a
log file, CI) one log line per 10 % instead of carriage-return frames."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm.auto import tqdm

log = logging.getLogger("fercore.core.progress")


def interactive() -> bool:
    """True in a terminal (stderr is a TTY) or a Jupyter kernel, where bars redraw in place."""
    return sys.stderr.isatty() or "ipykernel" in sys.modules


class LogProgress:
    """The part of tqdm's interface that fercore uses, logging at every 10 % of ``total``."""

    def __init__(self, iterable: Iterable[Any] | None = None, *, desc: str | None = None, total: int | None = None,
                 unit: str = "it", **_: Any):
        self.iterable = iterable
        self.desc, self.unit = desc or "progress", unit
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.n, self.logged, self.postfix = 0, 0, ""
        self.start = self.last = time.perf_counter()
        self.every = 2.0  # seconds at least between two lines before the last

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable or ():
            yield item
            self.update()

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        if not self.total:
            return
        tenth = min(10, self.n * 10 // self.total)
        now = time.perf_counter()
        if tenth > self.logged and (tenth == 10 or now - self.last >= self.every):  # quick passes: the 100 % line only
            self.logged, self.last = tenth, now
            log.info("%s: %d/%d %s (%d%%, %.0f s)%s", self.desc, self.n, self.total, self.unit, tenth * 10,
                     time.perf_counter() - self.start, self.postfix)

    def set_postfix(self, **values: Any) -> None:
        self.postfix = " " + " ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        pass


def progress_bar(iterable: Iterable[Any] | None = None, *, disable: bool = False, **kwargs: Any) -> Any:
    """``tqdm(iterable, **kwargs)`` where bars redraw in place, a :class:`LogProgress` elsewhere;
    a silent tqdm when ``disable``."""
    if disable or interactive():
        return tqdm(iterable, disable=disable, **kwargs)
    return LogProgress(iterable, **kwargs)
