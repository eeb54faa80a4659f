"""The course (notebooks/lessons): every lesson runs top to bottom offline, shows pictures,
and has what a student working alone needs; `cnn-widgets lessons DIR` hands them out."""
from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from cnn_widgets.cli import copy_lessons, lesson_files, main

LESSONS_DIR = Path(__file__).resolve().parents[1] / "notebooks" / "lessons"
LESSONS = sorted(LESSONS_DIR.glob("*.ipynb"))
WIDGETS = ["ConvolutionExplainer", "FilterWeights", "FeatureMaps", "ActivationMaximization", "DeepDream",
           "GradCAM", "DatasetExamples", "TrainingMonitor"]


def _numbers(pattern: str, text: str) -> list[float]:
    """The numbers captured by ``pattern`` in the printed text (one per match)."""
    return [float(match) for match in re.findall(pattern, text)]


def _lesson_3(out: str) -> None:
    zeros = _numbers(r"block\d_conv\d +\d+ x \d+ +\d+ +(\d+)%", out)
    assert zeros[0] < 50 and zeros[-1] > 85, zeros  # "from under half to about nine tenths"
    both, silent = map(int, re.search(r"silent for all ten samples and never responding: (\d+) of (\d+)", out).groups())
    assert both == silent > 0  # the maps dark for all ten samples are the dead filters


def _lesson_5(out: str) -> None:
    background = _numbers(r"in the background (\d+\.\d+)", out)
    assert background[0] < 0.01 and background[-1] > 0.2, background  # the first layer invents nothing, the last a lot


def _lesson_6(out: str) -> None:
    grid = {int(row): _numbers(r"(\d\.\d\d)", rest) for row, rest in re.findall(r"^ +(\d+) +((?:\d\.\d\d *)+)$", out, re.MULTILINE)}
    lowest = min((value, row, col) for row, values in grid.items() for col, value in zip(range(4, 28, 4), values))
    assert lowest[1] <= 12 and lowest[2] >= 20, lowest  # covering the empty area above the heel hurts most
    assert _numbers(r"covering the brightest point of the Grad-CAM map: (\d\.\d\d)", out)[0] > 0.9
    # "when the shoe moves 4 pixels down, the brightest point moves 4 rows down with it"; "32 x 32"
    row, col = map(int, re.search(r"brightest point of the Sneaker map: row (\d+), column (\d+)", out).groups())
    assert re.search(rf"moved 4 pixels down: brightest point at row {row + 4}, column {col}\b", out), out
    assert "computed from 32 x 32 pixels around it" in out
    first_rho = dict(re.findall(r"^(\w+) +correlation .*?classifier\.5: (-?\d\.\d\d)", out, re.MULTILINE))
    assert float(first_rho["gradcam"]) < 0.5 and float(first_rho["guided_backprop"]) >= 0.9, first_rho


def _lesson_7(out: str) -> None:
    before, after = map(float, re.search(r"(\d+)% before training.*?(\d+)% after", out).groups())
    assert before < 20 and after > 50, (before, after)
    start, end = map(float, re.search(r"smoothness .*?: (-?\d\.\d\d) at the start, (-?\d\.\d\d) after", out).groups())
    assert end > start + 0.05, (start, end)  # "from about 0 to about 0.1"


def _lesson_8(out: str) -> None:
    assert _numbers(r"untrained, 3 lines +: \S+ (\d\.\d\d)", out)[0] < 0.2  # a guess
    assert re.search(r"fashion-cnn, trained +: Ankle boot 0\.9", out)


# What the lessons' text says about the numbers their cells print: if the model or the engine
# changes so that a lesson's "What to notice" is no longer true, its test fails.
CLAIMS = {
    "01_what_a_convolution_does": lambda out: re.search(r"strongest response at \(row, column\) \(10, 26\)", out) or pytest.fail(out),
    "03_feature_maps_through_the_network": _lesson_3,
    "04_what_excites_a_filter": lambda out: re.search(r"made for Sneaker +-> the network says Bag", out)
    and re.search(r"made for Bag +-> the network says Bag with probability (0\.9\d|1\.00)", out) or pytest.fail(out),
    "05_deepdream": _lesson_5,
    "06_where_the_network_looks": _lesson_6,
    "07_watch_a_cnn_learn": _lesson_7,
    "08_your_own_model": _lesson_8,
}


# How many cells of each lesson choose their model with cw.lesson_model: offline, each says it
# shows fashion-cnn (and where VGG16's weights would go) instead of failing.
LESSON_MODEL_CALLS = {stem: 1 for stem in ("01_what_a_convolution_does", "02_what_the_first_layer_learned",
                                           "03_feature_maps_through_the_network", "04_what_excites_a_filter",
                                           "05_deepdream", "06_where_the_network_looks", "08_your_own_model")}


def _text(notebook, cell_type: str) -> str:
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == cell_type)


def test_the_course_has_eight_lessons_in_order_using_every_widget():
    assert [path.name[:3] for path in LESSONS] == [f"0{n}_" for n in range(1, 9)]
    code = "\n".join(_text(nbformat.read(path, as_version=4), "code") for path in LESSONS)
    missing = [name for name in WIDGETS if f"cw.{name}(" not in code]
    assert not missing, f"no lesson uses {missing}"


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_has_goal_questions_answers_and_conclusion(path):
    markdown = _text(nbformat.read(path, as_version=4), "markdown")
    for part in ("**What you will learn.**", "**What to notice.**", "## Questions to try", "<details>",
                 "</details>", "**The right conclusion.**"):
        assert part in markdown, f"{path.name} lacks {part!r}"


@pytest.fixture(scope="module")
def executed_lessons(tmp_path_factory) -> dict[str, list]:
    """Every lesson's cells after running top to bottom: all eight in order in one kernel, with
    ``%reset -f`` before each (its namespace starts empty, so a name another lesson defined cannot
    help it; modules stay imported, which saves a kernel start and the imports for each lesson).
    The kernel's torch cache is an empty folder: the lessons run as offline with no VGG16 weights."""
    course = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    spans = {}
    for path in LESSONS:
        lesson = nbformat.read(path, as_version=4)
        course.cells.append(nbformat.v4.new_code_cell("%reset -f"))
        spans[path.stem] = (len(course.cells), len(course.cells) + len(lesson.cells))
        course.cells.extend(lesson.cells)
    folder = tmp_path_factory.mktemp("lessons")
    client = NotebookClient(course, timeout=600, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(folder)}})
    client.execute(env={**os.environ, "TORCH_HOME": str(folder / "torch")})
    return {stem: course.cells[start:end] for stem, (start, end) in spans.items()}


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_top_to_bottom_and_every_widget_carries_a_picture(path, executed_lessons):
    notebook = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), "commit lessons without outputs"
    outputs = [out for cell in executed_lessons[path.stem] for out in cell.get("outputs", [])]
    errors = [out for out in outputs if out.output_type == "error"]
    assert not errors, errors[0]
    widgets = [out for out in outputs if "application/vnd.jupyter.widget-view+json" in out.get("data", {})]
    assert widgets, "a lesson shows at least one widget"
    for output in widgets:
        assert "image/png" in output["data"], "every widget output carries a static PNG of what it shows"
    shapes = [out for out in outputs if "torch.Size(" in out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))]
    assert not shapes, "a lesson shows results as pictures or numbers a person reads, never as tensor shapes"
    printed = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    assert printed.count("On screen: fashion-cnn") == LESSON_MODEL_CALLS.get(path.stem, 0), printed
    if path.stem in CLAIMS:
        CLAIMS[path.stem](printed)


def test_lesson_files_are_the_course(tmp_path):
    assert [path.name for path in lesson_files()] == [path.name for path in LESSONS]


def test_lessons_command_copies_the_course_and_keeps_a_students_work(tmp_path, capsys):
    course = tmp_path / "course"
    assert main(["lessons", str(course)]) == 0
    assert "copied 8 lessons" in capsys.readouterr().out
    assert sorted(path.name for path in course.iterdir()) == [path.name for path in LESSONS]
    assert all((course / path.name).read_bytes() == path.read_bytes() for path in LESSONS)

    worked_on = course / LESSONS[0].name
    worked_on.write_text("a student's answers")
    assert main(["lessons", str(course)]) == 0
    out = capsys.readouterr().out
    assert "copied 0 lessons" in out and "kept 8" in out and "--force" in out
    assert worked_on.read_text() == "a student's answers"

    assert main(["lessons", str(course), "--force"]) == 0
    assert "copied 8 lessons" in capsys.readouterr().out
    assert worked_on.read_bytes() == LESSONS[0].read_bytes()


def test_lessons_command_refuses_a_file_as_folder(tmp_path, capsys):
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("keep me")
    assert main(["lessons", str(not_a_folder)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert not_a_folder.read_text() == "keep me"
    copied, kept = copy_lessons(tmp_path / "new" / "deeper")
    assert len(copied) == 8 and kept == []  # missing parents are created
