"""Issue 29, rule 6: property-based tests (hypothesis, derandomized, a fixed number of examples).

Random data-root trees and random parameter files, each with planted anomalies of every kind in
rules 2 and 3. Every planted entry must be used correctly (the right split and emotion, a
notebook key under its normalised number) or reported (the walk's reason, check-data's listing, a
refusal naming it); no command exits 0 with an anomaly unreported; every anomaly kind is generated.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inputkit import CONFIG, NO_KERNEL, run, suite_file, write_images
from PIL import Image

USED = ("image", "image_other_suffix", "image_no_suffix")
LEFT_OUT = ("hidden", "system", "nested", "outside", "broken_link", "link_loop", "not_image", "unreadable")
TREE_KINDS = USED + LEFT_OUT
NAMES = ("face", "Gesicht ü", "visage é", "a b", "IMG_0001", "x" * 60, "smile(1)", "日本")
SUFFIXES = (".jfif", ".PNG", ".jpeg", ".JPG", ".tif", ".webp")
SETTINGS = settings(derandomize=True, max_examples=30, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

entries = st.lists(st.tuples(st.sampled_from(TREE_KINDS), st.sampled_from(("train", "test")),
                             st.sampled_from(("happy", "sad")), st.sampled_from(NAMES)), min_size=1, max_size=8)


def plant(root: Path, i: int, kind: str, split: str, emotion: str, name: str) -> Path:
    """One entry of ``kind`` in root/split/emotion (or beside the class folders); returns its path."""
    folder = root / split / emotion
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{i}_{name}"
    image = Image.new("RGB", (24, 24), (40 * i % 255, 90, 200))
    if kind == "image":
        path = folder / f"{name}.png"
        image.save(path)
    elif kind == "image_other_suffix":
        path = folder / f"{name}{SUFFIXES[i % len(SUFFIXES)]}"
        image.save(path, format={".PNG": "PNG", ".tif": "TIFF", ".webp": "WEBP"}.get(path.suffix, "JPEG"))
    elif kind == "image_no_suffix":
        path = folder / name
        image.save(path, format="PNG")
    elif kind == "hidden":
        path = folder / f".{name}.png"
        image.save(path)
    elif kind == "system":
        path = root / split / "__MACOSX"
        path.mkdir(exist_ok=True)
        image.save(path / f"{name}.png")
    elif kind == "nested":
        path = folder / f"sub {name}"
        write_images(path, 1)
    elif kind == "outside":
        path = root / split / f"{name}.png"
        image.save(path)
    elif kind == "broken_link":
        path = folder / f"{name}.png"
        path.symlink_to(folder / "missing.png")
    elif kind == "link_loop":
        path = folder / f"{name}.png"
        path.symlink_to(path)
    elif kind == "not_image":
        path = folder / f"{name}.txt"
        path.write_text("a note")
    else:  # unreadable: an image's signature, its pixels cut away, no image suffix
        image.save(folder / "whole.jpg", format="JPEG")
        path = folder / f"{name}.jfif"
        path.write_bytes((folder / "whole.jpg").read_bytes()[:200])
        (folder / "whole.jpg").unlink()
    return path


def test_every_planted_folder_anomaly_is_used_or_reported(capsys, caplog):
    from fercore.data import REASONS, walk_data_root

    assert tuple(REASONS) == LEFT_OUT
    seen: Counter[str] = Counter()

    @SETTINGS
    @given(planted=entries)
    def check(planted):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "d"
            for split in ("train", "test"):
                write_images(root / split / "happy", 1, seed=3)  # every split has a class folder and an image
            paths = {plant(root, i, *entry): entry for i, entry in enumerate(planted)}
            found = walk_data_root(root)
            used = {path: (split, emotion) for path, split, _, _, emotion in found.used}
            left = {path: reason for path, reason, _ in found.left_out}
            for path, (kind, split, emotion, _) in paths.items():
                seen[kind] += 1
                if kind in USED:
                    assert used.get(str(path)) == (split, {"happy": "Happiness", "sad": "Sadness"}[emotion]), kind
                else:
                    assert left.get(str(path)) == kind, (kind, path, found.left_out)
            assert len(found.used) == sum(kind in USED for kind, *_ in paths.values()) + 2
            code, out = run(["check-data", str(root), "--out", str(Path(tmp) / "r.json"), "-q", "--workers", "0"], Path(tmp), capsys, caplog)
            assert code == 0, out
            for reason, count in found.counts().items():
                assert f"left out: {count} {REASONS[reason][0 if count == 1 else 1]}" in out, out
            assert f"images                    {len(found.used)}" in out
            for path, (kind, *_) in paths.items():
                if kind not in USED:
                    assert str(path.relative_to(root)) in out, (kind, out)

    check()
    assert set(seen) == set(TREE_KINDS), f"kinds never generated: {set(TREE_KINDS) - set(seen)}"


# --------------------------------------------------------------------------- parameter files

#: kind -> (refused?, what the refusal names)
PARAM_KINDS = {
    "duplicate_shared": (True, "key 'epochs' is written 2 times"),
    "duplicate_block": (True, "key '02' is written 2 times"),
    "unquoted_number": (False, ""),
    "two_keys_one_notebook": (True, "both name notebook 01"),
    "missing_notebook": (True, "there is no notebook 07"),
    "not_a_number": (True, "notebook key 'rq2' is not a notebook number"),
    "undeclared_key": (True, "does not declare ['max_per_clas']"),
    "set_missing_notebook": (True, "--set 09.epochs=1: there is no notebook 09"),
    "set_undeclared_key": (True, "--set 01.max_per_class=2: 01_rq1_first.ipynb does not declare ['max_per_class']"),
    "unknown_shared": (True, "parameters ['epoch'] are declared by no notebook"),
}
LINES = {
    "duplicate_shared": ("parameters", "epochs: 1\n  epochs: 2"),
    "duplicate_block": ("notebooks", '"02": {epochs: 1}\n  "02": {epochs: 2}'),
    "unquoted_number": ("notebooks", "2: {max_per_class: 4}"),
    "two_keys_one_notebook": ("notebooks", '1: {lr: 0.1}\n  "01": {seed: 1}'),
    "missing_notebook": ("notebooks", '"07": {epochs: 1}'),
    "not_a_number": ("notebooks", "rq2: {epochs: 1}"),
    "undeclared_key": ("notebooks", '"03": {max_per_clas: 1}'),
    "unknown_shared": ("parameters", "epoch: 3"),
}
SETS = {"set_missing_notebook": "09.epochs=1", "set_undeclared_key": "01.max_per_class=2"}


def test_every_planted_parameter_anomaly_is_refused_or_normalised(capsys, caplog):
    seen: Counter[str] = Counter()

    @SETTINGS
    @given(kinds=st.lists(st.sampled_from(sorted(PARAM_KINDS)), min_size=1, max_size=3, unique=True))
    def check(kinds):
        seen.update(kinds)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            blocks: dict[str, list[str]] = {"parameters": [], "notebooks": []}
            for kind in kinds:
                if kind in LINES:
                    section, text = LINES[kind]
                    if not (section == "notebooks" and kind == "unquoted_number" and "duplicate_block" in kinds):
                        blocks[section].append(text)
            body = "".join(f"{name}:\n" + "".join(f"  {line}\n" for line in lines) for name, lines in blocks.items() if lines)
            suite_file(folder, body)
            argv = ["suite", "run", "--params", "p.yaml"] + [a for k in kinds if k in SETS for a in ("--set", SETS[k])]
            code, out = run(argv, folder, capsys, caplog)
            assert code == 2, out
            assert not (folder / "out").exists(), "a refused start left a run folder"
            refusals = [PARAM_KINDS[k][1] for k in kinds if PARAM_KINDS[k][0]]
            if refusals:
                assert any(text in out for text in refusals), (kinds, out)
                assert NO_KERNEL not in out, (kinds, out)
            else:  # only normalised keys: the file passes every check and stops at the kernel
                from fercore.book import SuiteParams

                assert NO_KERNEL in out, out
                assert SuiteParams.from_yaml(folder / "p.yaml").notebooks == {"02": {"max_per_class": 4}}

    check()
    assert set(seen) == set(PARAM_KINDS), f"kinds never generated: {set(PARAM_KINDS) - set(seen)}"


def test_a_config_key_written_twice_is_refused_wherever_it_stands(tmp_path, capsys, caplog):
    """Every top-level key of a training config, written a second time at the end, is refused with both lines."""
    lines = CONFIG.splitlines()
    for number, line in enumerate(lines, start=1):
        key = line.split(":")[0]
        (tmp_path / "cfg.yaml").write_text(CONFIG + line + "\n")
        code, out = run(["train", "--config", "cfg.yaml"], tmp_path, capsys, caplog)
        assert code == 2 and f"key '{key}' is written 2 times (lines {number}, {len(lines) + 1})" in out, out
