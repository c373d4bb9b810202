"""Small file helpers: atomic writes, hashing and never-overwrite run folders."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import torch


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` and rename it into place only on success.

    A crash or exception leaves any earlier ``path`` untouched and no partial file behind. The
    file gets the permissions a plain ``open`` would give (0666 less the umask), not
    ``mkstemp``'s 0600. A folder that cannot be written is a ``PermissionError`` naming ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except PermissionError:
        raise PermissionError(f"cannot write {path}: no write permission in {path.parent}; "
                              "choose another output or fix the folder's permissions") from None
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def close_as_plain_file(fd: int) -> None:
    """Give a ``mkstemp`` file the umask's permissions (not 0600), then close it."""
    os.fchmod(fd, 0o666 & ~current_umask())
    os.close(fd)


def json_safe(data: Any) -> Any:
    """``data`` with NaN and infinite floats as None, so that the JSON is valid (``null``);
    dataclasses become dicts and tuple keys 'a / b' strings."""
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        return json_safe(dataclasses.asdict(data))
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {(" / ".join(map(str, k)) if isinstance(k, tuple) else k): json_safe(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_safe(v) for v in data]
    if hasattr(data, "item") and getattr(data, "ndim", None) == 0:  # numpy scalars
        return json_safe(data.item())
    return data


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically; undefined numbers (NaN) become ``null``."""
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(json_safe(data), handle, indent=2, sort_keys=False, default=str, allow_nan=False)
        handle.write("\n")
    return Path(path)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_stamp(path: str | Path) -> tuple[int, int] | None:
    """(size in bytes, modification time in ns) of a file, or None when it cannot be read: with its
    path, the fingerprint that cache keys and input digests use to notice a changed file."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def check_output(path: str | Path, *, force: bool = False, folder: bool = False) -> Path:
    """Before any work: refuse an existing output (a file, or a non-empty folder when ``folder``)
    unless ``force``, and an output whose folder cannot be written, so no result is lost at the end."""
    path = Path(path)
    taken = path.is_dir() and any(path.iterdir()) if folder else path.exists()
    if taken and not force:
        what = "is a folder that is not empty" if folder else "exists"
        raise FileExistsError(f"{path} {what}; choose another output or pass --force to replace it")
    if path.is_dir() and not folder:
        raise IsADirectoryError(f"{path} is a folder; give a file name")
    existing = next((p for p in [*([path] if folder else []), *path.parents] if p.exists()), Path("."))
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write {path}: {existing} is not a writable folder; "
                              "choose another output or fix the folder's permissions")
    return path


def new_run_dir(parent: str | Path, name: str | None = None) -> Path:
    """Create and return a fresh run folder under ``parent``; never reuses an existing one.

    The default name is a UTC timestamp; a suffix ``-2``, ``-3`` ... is added when taken.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    base = name or datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    for attempt in range(1, 1000):
        candidate = parent / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise RuntimeError(f"could not create a new run folder under {parent}")


def mark_latest(run_dir: str | Path, name: str = "latest") -> Path:
    """Point ``<parent>/latest`` at ``run_dir`` (a relative symlink, replaced atomically)."""
    run_dir = Path(run_dir)
    link = run_dir.parent / name
    tmp = run_dir.parent / f".{name}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(run_dir.name, target_is_directory=True)
    os.replace(tmp, link)
    return link


def write_csv(path: str | Path, frame: Any) -> Path:
    """Write a pandas DataFrame as CSV (no index), atomically."""
    with atomic_open(path, "w", newline="") as handle:
        frame.to_csv(handle, index=False)
    return Path(path)


def write_image(path: str | Path, image: Any, **save_options: Any) -> Path:
    """Write a PIL image (format from the suffix: .png, .jpg ...), atomically."""
    path = Path(path)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG"}.get(path.suffix.lower(), path.suffix.lstrip(".").upper() or "PNG")
    with atomic_open(path, "wb") as handle:
        image.save(handle, format=fmt, **save_options)
    return path


def save_torch(path: str | Path, obj: Any) -> Path:
    """``torch.save`` to ``path``, atomically."""
    with atomic_open(path, "wb") as handle:
        torch.save(obj, handle)
    return Path(path)
