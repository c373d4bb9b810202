"""Outputs apart from inputs: before any work, a command claims its output path.

:func:`claim_output` refuses an output that is an input of the run, lies inside (or holds) a data
root being read, or is a file of another kind (an image, a checkpoint, a data folder). ``--force``
replaces only the same command's own earlier output, which the command recognises by the marker it
wrote beside it (:func:`mark_output`): ``.<name>.fercore.json`` next to a file (with the file's
SHA-256, so a file changed since is not "its own" any more), ``.fercore.json`` inside a folder.
A file or folder without the marker is never replaced.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Iterable
from pathlib import Path

from fercore.core.files import check_output, sha256_file, write_json

#: Suffixes of files fercore reads as images or as models: never an output of another kind.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"})
MODEL_SUFFIXES = frozenset({".pt", ".pth", ".ckpt", ".bin", ".safetensors", ".onnx"})
FOLDER_MARKER = ".fercore.json"


def marker_of(path: Path) -> Path:
    """Where the marker of the output ``path`` lives (inside a folder, beside a file)."""
    return path / FOLDER_MARKER if path.is_dir() else path.with_name(f".{path.name}.fercore.json")


def mark_output(path: str | Path, command: str) -> Path:
    """Record that ``command`` wrote ``path`` (a file or a folder), so that its ``--force`` may replace it later."""
    path = Path(path)
    record = {"command": command, "sha256": None if path.is_dir() else sha256_file(path)}
    return write_json(marker_of(path), record)


def is_own_output(path: Path, command: str) -> bool:
    """Whether ``path`` is an unchanged output that ``command`` wrote (its marker says so)."""
    marker = marker_of(path)
    try:
        record = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict) or record.get("command") != command:
        return False
    return path.is_dir() or record.get("sha256") == sha256_file(path)


def _kind(path: Path) -> str | None:
    """What ``path`` is when it is something an output must never replace: an image, a model, a data folder."""
    if path.is_dir():
        images = (p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        return "a data folder (it holds images)" if next(images, None) is not None else None
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "an image"
    if suffix in MODEL_SUFFIXES or (path.is_file() and zipfile.is_zipfile(path)):
        return "a model file (checkpoint or weights)"
    return None


def _inside(path: Path, roots: Iterable[Path]) -> tuple[Path, str] | None:
    """The first root that ``path`` equals, lies inside, or holds, with how."""
    for root in roots:
        if path == root:
            return root, "is"
        if path.is_relative_to(root):
            return root, "lies inside"
        if root.is_relative_to(path):
            return root, "holds"
    return None


def _refuse_overlap(path: Path, given: Path, command: str, inputs: Iterable[str | Path],
                    data_roots: Iterable[str | Path]) -> None:
    """Refuse an output that is, lies inside, or holds an input or a data root of the run."""
    roots = [Path(os.path.abspath(r)) for r in data_roots if r]
    found = _inside(path, roots)
    if found is not None:
        root, how = found
        raise FileExistsError(f"the output {given} {how} the data folder {root} that this run reads; "
                              "outputs never go into the data: choose an --out outside it")
    for item in (Path(os.path.abspath(i)) for i in inputs if i):
        if path == item or (item.is_dir() and path.is_relative_to(item)) or (path.is_dir() and item.is_relative_to(path)):
            how = "is" if path == item else ("lies inside" if path.is_relative_to(item) else "holds")
            raise FileExistsError(f"the output {given} {how} the input {item} of this run; "
                                  "an output never replaces an input: choose another --out")


def claim_output(path: str | Path, command: str, *, force: bool = False, folder: bool = False, model: bool = False,
                 inputs: Iterable[str | Path] = (), data_roots: Iterable[str | Path] = ()) -> Path:
    """Check the output ``path`` of ``fercore COMMAND`` before any work; with ``force`` an earlier
    output of the same command is cleared (a folder's contents) or left to be replaced (a file).
    ``model``: the command writes a model file (a new name may then end in .pt / .onnx ...).
    Errors name the path and the fix; see the module docstring for the rules."""
    given = Path(path)
    absolute = Path(os.path.abspath(given))
    _refuse_overlap(absolute, given, command, inputs, data_roots)
    if given.is_dir() and not folder:
        raise IsADirectoryError(f"{given} is a folder; --out takes a file name, e.g. {given / 'predictions.csv'}")
    if given.exists() and folder and not given.is_dir():
        raise NotADirectoryError(f"{given} is a file; --out takes a folder (new or empty)")
    taken = given.is_dir() and any(given.iterdir()) if folder else given.exists()
    if taken and not is_own_output(given, command):
        kind = _kind(given)
        if kind is not None and not (model and kind.startswith("a model")):  # a model command's output is a model
            raise FileExistsError(f"{given} is {kind}, not an output of fercore {command}; it is never replaced: "
                                  "choose another --out")
        if force:
            raise FileExistsError(f"{given} was not written by fercore {command} (it has no {marker_of(given).name} "
                                  "marker), so --force does not replace it: remove it yourself or choose another --out")
    if taken and not force:
        what = "is a folder that is not empty" if folder else "exists"
        raise FileExistsError(f"{given} {what}; choose another output or pass --force to replace it "
                              f"(only an earlier output of fercore {command} is replaced)")
    suffix = given.suffix.lower()
    if not taken and not folder and (suffix in IMAGE_SUFFIXES or (suffix in MODEL_SUFFIXES and not model)):
        raise ValueError(f"{given}: fercore {command} would write {'a CSV' if command == 'predict' else 'a report'} "
                         f"under the name of {_kind(given)}; give a name that says what it is (e.g. .csv, .json)")
    check_output(given, force=True, folder=folder)
    if taken and folder:  # our own earlier output, replaced as asked
        shutil.rmtree(given)
        given.mkdir()
    return given
