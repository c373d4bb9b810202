import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from fercore.book.chapter import (
    Chapter,
    MissingPathError,
    check_chapter,
    open_chapter,
    project_folder,
    require_paths,
    resolve_paths,
)


def test_require_paths_names_every_missing_parameter(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "w.pt").write_bytes(b"x")
    require_paths({"real_roots": {"a": tmp_path / "real"}, "weights": tmp_path / "w.pt", "unused": None}, kind={"weights": "file"})
    with pytest.raises(MissingPathError) as err:
        require_paths({"real_roots": {"fer2013": tmp_path / "nope", "ok": tmp_path / "real"}, "synthetic_root": tmp_path / "w.pt",
                       "weights": tmp_path / "real"}, kind={"weights": "file"}, params_file="configs/suite_thesis.yaml")
    message = str(err.value)
    assert "configs/suite_thesis.yaml" in message
    assert "real_roots['fer2013']" in message and "does not exist" in message
    assert "synthetic_root" in message and "is a file, not a folder" in message
    assert "weights" in message and "is a folder, not a file" in message
    assert "'ok'" not in message


def test_chapter_records_figures_tables_and_findings(tmp_path):
    chapter = Chapter(tmp_path, "rq9", show=False)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    assert chapter.figure(fig, "line", "A line") == "fig-rq9-line"
    table = chapter.table(pd.DataFrame({"accuracy": [0.5, 0.25]}, index=["a", "b"]), "scores", "Scores.")
    assert list(table["accuracy"]) == [0.5, 0.25]
    chapter.finish(["one finding"], {"accuracy": 0.5})
    record = json.loads((tmp_path / "rq9" / "chapter.json").read_text())
    assert record["figures"] == ["figures/line.png"] and record["tables"] == ["tables/scores.csv"]
    assert record["findings"] == ["one finding"] and record["numbers"] == {"accuracy": 0.5}
    assert (tmp_path / "rq9" / "figures" / "line.png").read_bytes()[:4] == b"\x89PNG"
    assert pd.read_csv(tmp_path / "rq9" / "tables" / "scores.csv").shape == (2, 2)
    assert check_chapter(tmp_path / "rq9") == []
    (tmp_path / "rq9" / "figures" / "line.png").unlink()
    assert any("line.png is missing" in p for p in check_chapter(tmp_path / "rq9"))


def test_check_chapter_without_record_or_figures(tmp_path):
    assert "chapter.json is missing" in check_chapter(tmp_path / "none")[0]
    chapter = Chapter(tmp_path, "empty", show=False)
    chapter.finish([], {})
    problems = check_chapter(tmp_path / "empty")
    assert any("no figures" in p for p in problems) and any("no findings" in p for p in problems)


def test_show_file_refuses_a_missing_figure(tmp_path):
    chapter = Chapter(tmp_path, "rq9", show=False)
    with pytest.raises(FileNotFoundError, match="was not written"):
        chapter.show_file(tmp_path / "rq9" / "figures" / "absent.png", "Absent.")


def test_project_folder_is_found_without_moving(tmp_path, monkeypatch):
    (tmp_path / "proj" / "notebooks").mkdir(parents=True)
    (tmp_path / "proj" / "_toc.yml").write_text("root: x\n")
    monkeypatch.chdir(tmp_path / "proj" / "notebooks")  # where JupyterLab starts the kernel
    assert project_folder() == (tmp_path / "proj").resolve()
    assert Path.cwd() == (tmp_path / "proj" / "notebooks").resolve()  # the working directory stays
    assert resolve_paths({"a": "data/x", "b": "/abs"}, project_folder()) == {"a": str((tmp_path / "proj" / "data" / "x").resolve()),
                                                                           "b": "/abs"}
    monkeypatch.chdir(tmp_path)  # outside any project: the current folder
    assert project_folder() == tmp_path.resolve()


def test_open_chapter_resolves_checks_and_gathers_library_logs(tmp_path, monkeypatch, capfd):
    import logging

    (tmp_path / "proj" / "notebooks").mkdir(parents=True)
    (tmp_path / "proj" / "_toc.yml").write_text("root: x\n")
    (tmp_path / "proj" / "data").mkdir()
    (tmp_path / "proj" / "w.pt").write_bytes(b"x")
    monkeypatch.chdir(tmp_path / "proj" / "notebooks")
    chapter, paths = open_chapter("rq9", "out", paths={"root": "data", "weights": "w.pt"}, files=["weights"], seed=1, show=False)
    assert paths == {"root": str(tmp_path / "proj" / "data"), "weights": str(tmp_path / "proj" / "w.pt")}
    assert chapter.dir == tmp_path / "proj" / "out" / "rq9" and (chapter.dir / "figures").is_dir()
    logging.getLogger("fercore.anything").info("a library line")
    logging.getLogger("fercore.training.hygiene").warning("the selection split has no images of Anger, Contempt, Surprise: "
                                                          "its scores leave those classes out")
    logging.getLogger("fercore.anything").warning("the selection split has no images of Anger, Contempt, Surprise: "
                                                  "its scores leave those classes out")
    chapter.remark("b0, fine-tuned: selection none (no validation images)")
    import warnings

    warnings.warn("y_pred contains classes not in y_true", UserWarning, stacklevel=1)  # a library's Python warning
    out, err = capfd.readouterr()
    assert "a library line" not in out + err and "selection split" not in out + err  # no raw log text in the cell
    chapter.finish(["a finding"], {})
    notes = json.loads((chapter.dir / "chapter.json").read_text())["notes"]
    warning, python_warning = notes["warnings"]
    assert python_warning["message"] == "UserWarning: y_pred contains classes not in y_true"
    assert warning["count"] == 2 and warning["message"].startswith("the selection split has no images of Anger")
    assert "epoch was selected on the other classes only" in warning["meaning"]
    assert [s["message"] for s in notes["status"]] == ["a library line", "b0, fine-tuned: selection none (no validation images)"]
    text = chapter.notes_section()
    assert "*the selection split has no images of Anger, Contempt, Surprise: its scores leave those classes out* (×2): The epoch" in text
    assert chapter.collector not in logging.getLogger("fercore").handlers  # gathering stopped with the chapter
    with pytest.raises(MissingPathError, match="weights"):
        open_chapter("rq9", "out", paths={"weights": "data"}, files=["weights"])


def test_notes_give_unknown_warnings_a_general_meaning_and_escape_markup(tmp_path):
    from fercore.book.notes import GENERAL, Note, notes_markdown, summarise

    summary = summarise([Note("WARNING", "fercore.x", "odd *thing* [1]"), Note("INFO", "fercore.y", "step done"),
                         Note("INFO", "fercore.y", "step done")])
    assert summary.warnings[0][0].meaning() == GENERAL and summary.status[0][1] == 2
    text = notes_markdown(summary)
    assert r"odd \*thing\* \[1\]" in text and "step done (×2)" in text
    assert "raised no warnings" in notes_markdown(summarise([]))
    chapter = Chapter(tmp_path, "rq9", show=False)
    chapter.finish(["x"], {})  # a chapter opened without open_chapter has empty notes
    assert json.loads((chapter.dir / "chapter.json").read_text())["notes"] == {"warnings": [], "status": []}
