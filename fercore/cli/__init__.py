"""The ``fercore`` command line: :func:`build_parser` parses, each sub-command in :mod:`.commands`
is a thin wrapper over one library function, :func:`main` runs one and turns expected errors into
one message and exit code 2."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from fercore.cli.commands import cmd_train
from fercore.cli.parser import build_parser

__all__ = ["build_parser", "main"]


def _expected(err: BaseException) -> bool:
    """An error the user can fix (bad input, config, file, permission), not a bug in fercore: the
    error classes fercore raises on purpose, file-system errors, and ValueErrors raised by
    fercore's own checks (a ValueError from inside a library is a bug: fercore validates first)."""
    import errno

    from fercore.book import SuiteError
    from fercore.core.config import ConfigError
    from fercore.core.labels import UnknownLabelError
    from fercore.data import DatasetLayoutError
    from fercore.grids import GridInputError
    from fercore.models import WeightsError
    from fercore.training import TrainingDivergedError

    if isinstance(err, (ConfigError, WeightsError, DatasetLayoutError, GridInputError, UnknownLabelError, SuiteError,
                        TrainingDivergedError, FileExistsError, FileNotFoundError, PermissionError, IsADirectoryError,
                        NotADirectoryError)):
        return True
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES):
        return True
    if isinstance(err, ValueError):
        frame = err.__traceback__
        while frame is not None and frame.tb_next is not None:
            frame = frame.tb_next
        return frame is not None and Path(frame.tb_frame.f_code.co_filename).resolve().parent.is_relative_to(Path(__file__).resolve().parents[1])
    return False


def _interrupted(err: BaseException) -> bool:
    """Whether ``err`` was caused by Ctrl-C: a KeyboardInterrupt somewhere in its chain of causes."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Expected failures print one message (``fercore CMD: error: ...``) and
    return 2; other exceptions are bugs and keep their traceback (always shown with ``--debug``)."""
    import matplotlib

    matplotlib.use("Agg")  # the command line writes figure files only
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if getattr(args, "func", None) is cmd_train and not (args.config or args.resume):
        parser.error("train needs --config CFG (or --resume RUN_DIR)")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"fercore {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if _interrupted(err) and not args.debug:  # Ctrl-C inside a library that wrapped it (torch.save, a worker pool)
            print(f"fercore {args.command}: interrupted", file=sys.stderr)
            return 130
        if args.debug or not _expected(err):
            raise
        print(f"fercore {args.command}: error: {err}", file=sys.stderr)
        return 2
