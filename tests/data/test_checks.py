import hashlib
import io
import json
import shutil

import numpy as np
import pytest
from conftest import pattern_image
from PIL import Image

from fercore import cli
from fercore.data.checks import check_data, check_file
from fercore.data.images import to_rgb


@pytest.fixture
def messy_dataset(tmp_path):
    """Every kind of problem check-data must find, in files written here."""
    root = tmp_path / "messy"
    for split in ("train", "test"):
        for folder in ("happy", "sad", "angry"):
            (root / split / folder).mkdir(parents=True)
    for i in range(3):  # healthy files
        pattern_image(40, 40, seed=100 + i).save(root / "train" / "happy" / f"ok{i}.png")
    (root / "train" / "sad" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 garbage that is no jpeg")
    buffer = io.BytesIO()
    pattern_image(64, 64, seed=5).save(buffer, format="JPEG", quality=90)
    (root / "train" / "sad" / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    pattern_image(40, 40, seed=7).convert("CMYK").save(root / "train" / "angry" / "cmyk.jpg")
    Image.fromarray((np.arange(1600).reshape(40, 40) * 40).astype(np.uint16)).save(root / "train" / "angry" / "deep16.png")
    rgba = np.dstack([np.asarray(pattern_image(40, 40, seed=9)), np.full((40, 40), 128, np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(root / "train" / "angry" / "alpha.png")
    Image.new("L", (40, 40), 0).save(root / "train" / "angry" / "blank.png")
    # exact duplicate across splits, same label
    shutil.copy(root / "train" / "happy" / "ok0.png", root / "test" / "happy" / "copy_of_ok0.png")
    # duplicate with a conflicting label (same pixels, different encoding: PNG vs BMP)
    pattern_image(40, 40, seed=200).save(root / "train" / "happy" / "conflict.png")
    pattern_image(40, 40, seed=200).save(root / "test" / "sad" / "conflict.bmp")
    pattern_image(40, 40, seed=300).save(root / "test" / "angry" / "fine.png")
    return root


def test_check_data_finds_every_problem(messy_dataset):
    report = check_data(messy_dataset, progress=False)
    summary = report.summary()
    assert summary["images"] == 13
    assert [p["path"].split("/")[-1] for p in report.unreadable] == ["corrupt.jpg"]
    assert [p["path"].split("/")[-1] for p in report.truncated] == ["truncated.jpg"]
    assert [p["path"].split("/")[-1] for p in report.near_uniform] == ["blank.png"]
    assert report.modes["CMYK"] == 1 and report.modes["RGBA"] == 1 and report.modes["I;16"] == 1
    assert summary["duplicate_groups"] == 2 and summary["cross_split_groups"] == 2
    assert summary["conflicting_label_groups"] == 1
    conflict = report.conflicting_groups[0]
    assert conflict["labels"] == ["Happiness", "Sadness"] and conflict["splits"] == ["test", "train"]
    assert report.counts["train"]["Anger"] == 4 and report.counts["test"]["Contempt"] == 0
    assert report.has_errors


def test_check_data_parallel_matches_serial(messy_dataset):
    serial = check_data(messy_dataset, progress=False).to_json()
    parallel = check_data(messy_dataset, workers=2, progress=False).to_json()
    assert serial == parallel


def test_check_data_cli_writes_json(messy_dataset, tmp_path, capsys):
    out = tmp_path / "report.json"
    assert cli.main(["check-data", str(messy_dataset), "--out", str(out), "-q", "--workers", "0"]) == 0
    printed = capsys.readouterr().out
    assert "conflicting duplicate" in printed and "Happiness" in printed
    data = json.loads(out.read_text())
    assert data["summary"]["truncated"] == 1 and len(data["duplicate_groups"]) == 2
    assert cli.main(["check-data", str(messy_dataset), "--out", str(out), "-q", "--strict"]) == 2  # --out exists
    assert "report.json exists; choose another output or pass --force" in capsys.readouterr().err
    code = cli.main(["check-data", str(messy_dataset), "--out", str(out), "-q", "--strict", "--force"])
    assert code == 1, capsys.readouterr().err


@pytest.mark.slow
def test_check_data_on_shared_fer2013(fer2013_root):
    report = check_data(fer2013_root, workers=2, progress=False)
    summary = report.summary()
    assert summary["images"] == 28709 + 3589
    assert report.counts["train"]["Happiness"] == 7215 and report.counts["val"]["Disgust"] == 56
    assert summary["unreadable"] == 0 and summary["truncated"] == 0
    # FER2013's known faults: cross-split and conflicting duplicates, 13 blank images
    assert summary["cross_split_groups"] > 100
    assert summary["conflicting_label_groups"] > 10
    assert summary["near_uniform"] == 13
    blank = {p["path"].split("fer2013/")[-1] for p in report.near_uniform}
    assert "train/angry/Training_10131352.jpg" in blank


def test_check_file_sees_an_exif_rotated_jpeg_upright(tmp_path):
    wide = np.zeros((20, 40, 3), dtype=np.uint8)
    wide[:, :10] = (255, 0, 0)  # a red band on the left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    rotated = tmp_path / "rotated.jpg"
    Image.fromarray(wide).save(rotated, quality=95, exif=exif)
    with Image.open(rotated) as handle:
        stored = to_rgb(handle.convert("RGB"))
    upright = tmp_path / "upright.png"
    stored.transpose(Image.Transpose.ROTATE_270).save(upright)  # what a viewer shows, lossless
    got, expected = check_file(str(rotated)), check_file(str(upright))
    assert (got.status, got.width, got.height) == ("ok", 20, 40)
    assert got.pixel_hash == expected.pixel_hash
    plain = tmp_path / "plain.png"
    Image.fromarray(wide).save(plain)  # no EXIF: the hash is the stored pixels' (as before load_rgb)
    with Image.open(plain) as handle:
        handle.load()
        pixels = np.asarray(to_rgb(handle))
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{pixels.shape}".encode())
    digest.update(pixels.tobytes())
    assert check_file(str(plain)).pixel_hash == digest.hexdigest()
