"""The course assignments (assignments/source): valid nbgrader sources, student versions that give nothing away,
autograder tests that catch real mistakes, nbgrader's own autograde path end to end, and the site without solutions.

The autograder checks run in-process: the notebook's cells are executed in order in one namespace, with chosen
answer cells replaced by a wrong implementation, and a test cell counts as failed when it raises. That is what
nbgrader does too (it runs every cell, and a test cell that raises scores 0), and it takes seconds, not minutes.
Wrong implementations must lose points; correct ones written differently from the reference (whole answer cells, in
tests/assignment_variants/) must keep full marks. nbgrader's real autograde runs on a few submissions only (`slow`).
"""

from __future__ import annotations

import contextlib
import io
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest

from tests.assignment_variants import a1 as a1_variants
from tests.assignment_variants import a2 as a2_variants
from tests.assignment_variants import a3 as a3_variants
from tools import release_assignments as ra
from tools.build_site import SOLUTION_CELL_TAG, build, solutions_mode
from tools.toc import ROOT

A1, A2, A3, A4 = "a1_numpy_dropout", "a2_pytorch_bugs", "a3_keras_rate", "a4_mc_dropout"
SOURCES = {name: nbformat.read(ra.SOURCE_DIR / name / f"{name}.ipynb", as_version=4) for name in ra.assignment_ids()}
STUB_LINES = ("# YOUR CODE HERE", "raise NotImplementedError()")


# --- helpers -------------------------------------------------------------------------------------------------------

def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _is_test(cell) -> bool:
    return bool(_meta(cell).get("grade")) and not _meta(cell).get("solution")


def _points(nb) -> tuple[int, int]:
    """The points of a notebook: (from the test cells, from the answers graded by hand)."""
    auto = sum(_meta(cell)["points"] for cell in nb.cells if _is_test(cell))
    manual = sum(_meta(cell)["points"] for cell in nb.cells if _meta(cell).get("grade") and _meta(cell).get("solution"))
    return auto, manual


def _cell(nb, grade_id: str):
    (cell,) = [cell for cell in nb.cells if _meta(cell).get("grade_id") == grade_id]
    return cell


def _without_markers(source: str) -> str:
    """A solution cell as a student would write it: the reference solution without nbgrader's marker lines."""
    lines = source.splitlines()
    return "\n".join(line for line in lines if "BEGIN SOLUTION" not in line and "END SOLUTION" not in line)


def _solution(name: str, grade_id: str) -> str:
    return _without_markers(_cell(SOURCES[name], grade_id).source)


def _edit(source: str, old: str, new: str) -> str:
    """Replace `old`, which must occur exactly once, by `new`: a mutant that no longer matches fails loudly."""
    assert source.count(old) == 1, f"the mutation target {old!r} is not in the reference solution exactly once"
    return source.replace(old, new)


def run_cells(nb, replace: dict[str, str] | None = None, *, namespace: dict | None = None,
              only: set[str] | None = None) -> tuple[dict[str, str], dict[str, str], dict]:
    """Execute the code cells of `nb` in order, as a grader does; return (failed tests, other errors, namespace).

    `replace` maps grade ids to the source to run instead; `only` restricts the run to those grade ids.
    Every cell runs even after an error; the first two results map grade ids to the error's type and message.
    """
    replace = replace or {}
    namespace = {"__name__": "__main__"} if namespace is None else namespace
    failed: dict[str, str] = {}
    errors: dict[str, str] = {}
    for index, cell in enumerate(nb.cells):
        grade_id = _meta(cell).get("grade_id", f"#{index}")
        if cell.cell_type != "code" or (only is not None and grade_id not in only):
            continue
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(replace.get(grade_id, cell.source), f"<cell {grade_id}>", "exec"), namespace)
        except Exception as error:  # noqa: BLE001 (a grader records any error)
            (failed if _is_test(cell) else errors)[grade_id] = f"{type(error).__name__}: {error}"
    return failed, errors, namespace


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    """The output of `python -m tools.release_assignments`, generated once into a temporary folder."""
    output = tmp_path_factory.mktemp("release") / "assignments"
    archive = ra.release(output)
    assert archive == output / ra.ARCHIVE_NAME
    return output


def _released_nb(released: Path, name: str):
    return nbformat.read(released / "release" / name / f"{name}.ipynb", as_version=4)


@contextlib.contextmanager
def _torch_threads(count: int):
    """Run the block with PyTorch on `count` CPU threads, then restore the number it had."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def one_torch_thread():
    """Tiny PyTorch models train fastest on one thread (no thread start-up and synchronisation per step)."""
    with _torch_threads(1):
        yield


# --- the sources are nbgrader assignments ---------------------------------------------------------------------------

def test_there_are_four_assignments():
    assert list(SOURCES) == [A1, A2, A3, A4]


@pytest.mark.parametrize("name", list(SOURCES))
def test_source_is_a_valid_nbgrader_notebook(name):
    from nbgrader.nbgraderformat import MetadataValidator

    nb = SOURCES[name]
    MetadataValidator().validate_nb(nb)
    metas = [_meta(cell) for cell in nb.cells]
    assert all(meta.get("schema_version") == 3 for meta in metas), "every cell carries nbgrader metadata"
    ids = [meta["grade_id"] for meta in metas]
    assert len(ids) == len(set(ids)), "grade ids must be unique"
    text = "\n".join(cell.source for cell in nb.cells)
    assert "### BEGIN SOLUTION" in text and "### BEGIN HIDDEN TESTS" in text
    assert not any(cell.get("outputs") for cell in nb.cells), "sources are stored without outputs"
    tests = [cell for cell in nb.cells if _is_test(cell)]
    assert tests and all(cell.source.startswith('"""') for cell in tests), "every test cell says what it checks"
    # The points the introduction announces are the points the cells carry.
    auto, manual = _points(nb)
    intro = nb.cells[0].source
    assert f"{auto} points" in intro, f"{name}: the introduction must announce {auto} points from the tests"
    if manual:
        assert f"{manual} points for your written answer" in intro
    for cell in tests:  # each test cell's docstring gives its points
        assert f"({_meta(cell)['points']} point" in cell.source.splitlines()[0], _meta(cell)["grade_id"]


@pytest.mark.parametrize("name", list(SOURCES))
def test_sources_download_nothing_and_start_with_utils_setup(name):
    code = [cell.source for cell in SOURCES[name].cells if cell.cell_type == "code"]
    assert code[0] == "import utils\n\nrng = utils.setup(seed=0)", "the first code cell is the book's one set-up call"
    text = "\n".join(code)
    for word in ("urlopen", "requests.", "urlretrieve", "download=True", "load_data(", "wget", "curl "):
        assert word not in text, f"{name} must not download anything ({word!r})"


def test_instructors_page_lists_every_assignment_with_its_points():
    page = (ROOT / "chapters" / "instructors.md").read_text(encoding="utf-8")
    for name, nb in SOURCES.items():
        auto, manual = _points(nb)
        (row,) = [line for line in page.splitlines() if line.startswith(f"| `{name}`")]
        assert (f"{auto} automatic + {manual} by hand" if manual else f"{auto} automatic") in row, name
    for command in ("nbgrader generate_assignment", "nbgrader autograde", "nbgrader generate_feedback",
                    "nbgrader export", "python -m tools.release_assignments", "BOOK_SOLUTIONS=hide make site"):
        assert command in page, command


# --- the student versions -------------------------------------------------------------------------------------------

def test_release_writes_every_student_version_and_the_archive(released):
    with zipfile.ZipFile(released / ra.ARCHIVE_NAME) as bundle:
        names = sorted(bundle.namelist())
        assert names == [f"{name}/{name}.ipynb" for name in SOURCES]
        for name in SOURCES:
            assert bundle.read(f"{name}/{name}.ipynb") == (released / "release" / name / f"{name}.ipynb").read_bytes()
    assert sorted(path.name for path in released.iterdir()) == [ra.ARCHIVE_NAME, "release"], \
        "the output holds the student versions only: no sources, no gradebook"


@pytest.mark.parametrize("name", list(SOURCES))
def test_student_version_leaks_nothing(released, name):
    source, student = SOURCES[name], _released_nb(released, name)
    assert ra.leaks(source, student) == []
    assert len(ra.secret_lines(source)) >= 5, "the leak check must have solution lines to look for"
    text = nbformat.writes(student)
    for marker in ra.MARKERS:
        assert marker not in text
    for cell in source.cells:  # every answer cell became a stub, every hidden test is gone
        if _meta(cell).get("solution"):
            released_source = _cell(student, _meta(cell)["grade_id"]).source
            stub = "YOUR ANSWER HERE" if cell.cell_type == "markdown" else "raise NotImplementedError()"
            assert stub in released_source
    for cell in student.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert len(student.cells) == len(source.cells)


def test_leak_check_reports_solution_lines_markers_and_outputs(released):
    source = SOURCES[A1]
    student = _released_nb(released, A1)
    secret = sorted(ra.secret_lines(source))
    assert any("rng.random(x.shape) >= rate" in line for line in secret)
    assert any("Dropout(rate).forward" in line for line in secret), "hidden test lines are secret too"
    cell = _cell(student, "forward")
    cell.source += "\n    mask = rng.random(x.shape) >= rate  # keep with probability 1 - rate"
    _cell(student, "test-forward-mask").source += "\n### BEGIN HIDDEN TESTS"
    _cell(student, "setup").outputs = [nbformat.v4.new_output("stream", text="hello")]
    problems = "\n".join(ra.leaks(source, student))
    assert "cell forward: solution or hidden-test line" in problems
    assert "marker 'BEGIN HIDDEN TESTS'" in problems
    assert "cell setup: outputs not cleared" in problems


def test_release_refuses_to_clear_the_book():
    for folder in (ROOT, ROOT.parent, ROOT / "assignments"):
        with pytest.raises(ValueError, match="refusing to clear"):
            ra.release(folder)


def test_main_rejects_options(capsys):
    assert ra.main(["--help"]) == 2
    assert "Usage" in capsys.readouterr().err


# --- assignment 1: NumPy dropout ------------------------------------------------------------------------------------

A1_TESTS = {_meta(cell)["grade_id"] for cell in SOURCES[A1].cells if _is_test(cell)}

# Each mutant: edits (answer cell, old text, new text) of the reference solution, and the mistake it makes.
A1_MUTANTS = {
    "no rescaling": [("forward", "mask.astype(x.dtype) / x.dtype.type(1.0 - rate)", "mask.astype(x.dtype)")],
    "scaled by p instead of 1/(1-p)": [("forward", "/ x.dtype.type(1.0 - rate)", "* x.dtype.type(rate)")],
    "divided by p instead of 1-p": [("forward", "/ x.dtype.type(1.0 - rate)", "/ x.dtype.type(rate)")],
    "drop and keep swapped": [("forward", "rng.random(x.shape) >= rate", "rng.random(x.shape) < rate")],
    "drop and keep swapped, scaled by 1/p": [("forward", "rng.random(x.shape) >= rate", "rng.random(x.shape) < rate"),
                                             ("forward", "/ x.dtype.type(1.0 - rate)", "/ x.dtype.type(rate)")],
    "eval scales by 1-p": [("forward", "if not training or rate == 0.0:",
                            "if not training:\n        return x * x.dtype.type(1.0 - rate), None\n"
                            "    if rate == 0.0:")],
    "eval still drops": [("forward", "if not training or rate == 0.0:", "if rate == 0.0:")],
    "one mask reused across calls": [("forward", "mask = rng.random(x.shape) >= rate",
                                      "mask = MASKS.setdefault(x.shape, rng.random(x.shape) >= rate)"),
                                     ("forward", "def dropout_forward(", "MASKS = {}\n\n\ndef dropout_forward(")],
    "the same seed on every call": [("forward", "rng.random(x.shape)", "np.random.default_rng(0).random(x.shape)")],
    "NumPy's global generator, not rng": [("forward", "rng.random(x.shape)", "np.random.random(x.shape)")],
    "backward ignores the mask": [("backward", "return dout * cache.astype(dout.dtype, copy=False)", "return dout")],
    "backward scales but does not mask": [("backward", "dout * cache.astype(dout.dtype, copy=False)",
                                           "dout * cache.max()")],
    "backward ignores evaluation mode": [("backward", "    if cache is None:  # evaluation mode or rate 0: the "
                                                      "identity\n        return dout\n", "")],
    "crash at p = 0": [("forward", "if not 0.0 <= rate < 1.0:", "if not 0.0 < rate < 1.0:")],
    "crash close to p = 1": [("forward", "if not 0.0 <= rate < 1.0:", "if not 0.0 <= rate <= 0.99:")],
    "NaN when every unit is dropped": [("forward", "x.dtype.type(1.0 - rate)", "x.dtype.type(mask.mean())")],
    "output dtype changed": [("forward", "mask.astype(x.dtype) / x.dtype.type(1.0 - rate)",
                              "mask.astype(float) / (1.0 - rate)")],
    "gradient dtype changed": [("backward", "cache.astype(dout.dtype, copy=False)", "cache.astype(float)")],
    "does nothing: the identity in training too": [("forward", "if not training or rate == 0.0:", "if True:")],
    "the rate hard-coded to 0.5": [("forward", "if not training or rate == 0.0:",
                                    "rate = 0.5\n    if not training:")],
    "a given mask ignored": [("forward", "if mask is None:", "if True:")],
    "evaluation mode applies a given mask": [("forward", "if not training or rate == 0.0:",
                                              "if (not training and mask is None) or rate == 0.0:")],
    "rescaled in evaluation mode too": [("forward", "return x, None  #",
                                         "return x / x.dtype.type(1.0 - rate), None  #")],
    "a negative rate accepted": [("forward", "if not 0.0 <= rate < 1.0:", "if not rate < 1.0:")],
    "one mask shared by every row": [("forward", "rng.random(x.shape)", "rng.random(x.shape[-1:])")],
    "mask redrawn in backward": [("forward", "return x * scaled_mask, scaled_mask",
                                  "return x * scaled_mask, (rng, rate)"),
                                 ("backward", "return dout * cache.astype(dout.dtype, copy=False)",
                                  "rng, rate = cache\n    keep = rng.random(dout.shape) >= rate\n"
                                  "    return dout * (keep / (1 - rate)).astype(dout.dtype)")],
    "backward masks but does not rescale": [("backward", "dout * cache.astype(dout.dtype, copy=False)",
                                             "dout * (cache != 0)")],
}


def _a1_mutant(name: str) -> dict[str, str]:
    sources = {"forward": _solution(A1, "forward"), "backward": _solution(A1, "backward")}
    for grade_id, old, new in A1_MUTANTS[name]:
        sources[grade_id] = _edit(sources[grade_id], old, new)
    return sources


def test_a1_reference_solution_passes_every_test():
    failed, errors, _ = run_cells(SOURCES[A1])
    assert failed == {} and errors == {}
    failed, errors, _ = run_cells(SOURCES[A1], {"forward": _solution(A1, "forward"),
                                                "backward": _solution(A1, "backward")})
    assert failed == {} and errors == {}, "the solution without nbgrader's markers passes too"


@pytest.mark.parametrize("mutant", list(A1_MUTANTS))
def test_a1_autograder_catches(mutant):
    failed, errors, _ = run_cells(SOURCES[A1], _a1_mutant(mutant))
    assert errors == {}, "a mutant must still run; only the tests may fail"
    assert failed, f"no test caught the mistake {mutant!r}"


@pytest.mark.parametrize("variant", list(a1_variants.VARIANTS))
def test_a1_correct_variants_get_full_marks(variant):
    answers = {grade_id: source.strip("\n") for grade_id, source in a1_variants.VARIANTS[variant].items()}
    failed, errors, _ = run_cells(SOURCES[A1], answers)
    assert failed == {} and errors == {}, variant


def test_a1_hidden_tests_catch_what_the_visible_ones_miss(released):
    """The global-generator mistake passes every visible test; only the hidden ones catch it."""
    mutant = _a1_mutant("NumPy's global generator, not rng")
    failed, _, _ = run_cells(_released_nb(released, A1), mutant)
    assert failed == {}
    failed, _, _ = run_cells(SOURCES[A1], mutant)
    assert set(failed) == {"test-forward-random"}


@pytest.mark.parametrize("name", [A1, A3, A4])  # assignment 2 hands out runnable code: see the a2 tests
def test_student_version_as_handed_out_scores_nothing(released, name):
    nb = _released_nb(released, name)
    failed, _, _ = run_cells(nb)
    assert set(failed) == {_meta(cell)["grade_id"] for cell in nb.cells if _is_test(cell)}


# --- assignment 2: the buggy PyTorch loop ---------------------------------------------------------------------------

def _a2_fixed() -> str:
    """The fixed script: the solution region of the answer cell."""
    source = _cell(SOURCES[A2], "fix-the-bugs").source
    return source.split("### BEGIN SOLUTION\n")[1].split("\n### END SOLUTION")[0]


# Each bug: the fix in the reference, the bug that undoes it, and the test that must catch it.
A2_BUGS = {
    "scaled by 1/p instead of 1/(1-p)": ("x * keep / (1 - self.p)", "x * keep / self.p", "test-input-dropout"),
    "F.dropout's training=True default": ("F.dropout(h, self.hidden_p, training=self.training)",
                                          "F.dropout(h, self.hidden_p)", "test-eval-mode"),
    "evaluation in train mode": ("model.eval()  #", "#", "test-accuracy"),
    "training in eval mode": ("model.train()  #", "#", "test-train-mode"),
}


def test_a2_handout_fails_and_fix_passes(released, one_torch_thread):
    handout = _cell(_released_nb(released, A2), "fix-the-bugs").source
    assert handout.splitlines()[-2:] == list(STUB_LINES)
    buggy = "\n".join(line for line in handout.splitlines() if line not in STUB_LINES)
    failed, errors, _ = run_cells(SOURCES[A2], {"fix-the-bugs": buggy})
    assert errors == {}, "the script as handed out runs without an error: its bugs are silent"
    assert {test for _, _, test in A2_BUGS.values()} <= set(failed), "every bug of the handout is caught"
    failed, errors, _ = run_cells(SOURCES[A2], {"fix-the-bugs": _a2_fixed()})
    assert failed == {} and errors == {}, "the fixed script passes every test"


@pytest.mark.parametrize("bug", list(A2_BUGS))
def test_a2_autograder_catches_each_bug_alone(bug, one_torch_thread):
    fix, mistake, catcher = A2_BUGS[bug]
    failed, errors, _ = run_cells(SOURCES[A2], {"fix-the-bugs": _edit(_a2_fixed(), fix, mistake)})
    assert errors == {}
    assert catcher in failed, f"{catcher} must catch the bug {bug!r} (failed: {sorted(failed)})"


# Wrong fixes: the reference fix with edits (old text, new text), each a way to silence a bug that breaks dropout
# instead. Each must lose points; all are caught without training, so they run every cell but the two that train.
_A2_HIDDEN = "F.dropout(h, self.hidden_p, training=self.training)"
A2_WRONG_FIXES = {
    "the hidden dropout switched off for good": [(_A2_HIDDEN, "F.dropout(h, self.hidden_p, training=False)")],
    "the hidden dropout removed": [(f"        h = {_A2_HIDDEN}  # FIX 2: F.dropout's training defaults to True\n", "")],
    "the input dropout removed from the MLP": [("self.hidden(self.input_dropout(x))", "self.hidden(x)")],
    "InputDropout does nothing": [("        if not self.training:\n            return x\n        keep",
                                   "        return x\n        keep")],
    "InputDropout on in eval mode": [("        if not self.training:\n            return x\n", "")],
    "the hidden rate hard-coded to 0.5": [(_A2_HIDDEN, "F.dropout(h, 0.5, training=self.training)")],
    "the configured input rate ignored": [("InputDropout(input_p)", "InputDropout(0.2)")],
    "the two rates swapped": [("InputDropout(input_p)", "InputDropout(hidden_p)"),
                              ("self.hidden_p = hidden_p", "self.hidden_p = input_p")],
    "the hidden dropout given the keep probability": [(_A2_HIDDEN, "F.dropout(h, 1 - self.hidden_p, "
                                                                   "training=self.training)")],
    "dropout off by default (rates 0)": [("input_p=0.2, hidden_p=0.5", "input_p=0.0, hidden_p=0.0")],
    "the hidden units not rescaled in training": [
        (_A2_HIDDEN, f"{_A2_HIDDEN} * (1 - self.hidden_p if self.training else 1)")],
    "InputDropout scaled by 1/(1-p) in eval mode too": [
        ("        if not self.training:\n            return x\n", "        if not self.training:\n"
                                                                 "            return x / (1 - self.p)\n")],
    "InputDropout without the 1/(1-p)": [("x * keep / (1 - self.p)", "x * keep")],
    "InputDropout draws the same mask on every call": [
        ("keep = torch.rand_like(x) >= self.p",
         "keep = torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) >= self.p")],
}
A2_UNTRAINED = {_meta(cell)["grade_id"] for cell in SOURCES[A2].cells} - {"fit", "test-fit"}


def _a2_wrong_fix(name: str) -> str:
    source = _a2_fixed()
    for old, new in A2_WRONG_FIXES[name]:
        source = _edit(source, old, new)
    return source


def _points_lost(nb, failed: dict[str, str]) -> int:
    """The points of the test cells in `failed`."""
    return sum(_meta(_cell(nb, grade_id))["points"] for grade_id in failed)


@pytest.mark.parametrize("mistake", list(A2_WRONG_FIXES))
def test_a2_autograder_catches_wrong_fixes(mistake, one_torch_thread):
    failed, errors, _ = run_cells(SOURCES[A2], {"fix-the-bugs": _a2_wrong_fix(mistake)}, only=A2_UNTRAINED)
    assert errors == {}, "a wrong fix must still run; only the tests may fail"
    assert _points_lost(SOURCES[A2], failed) > 0, f"no test caught the wrong fix {mistake!r}"


# Wrong fixes that pass every visible test: only the hidden tests catch them.
A2_HIDDEN_ONLY = ["the hidden dropout switched off for good", "the hidden dropout removed",
                  "the input dropout removed from the MLP", "the hidden rate hard-coded to 0.5",
                  "the configured input rate ignored", "the two rates swapped",
                  "the hidden dropout given the keep probability", "the hidden units not rescaled in training",
                  "InputDropout draws the same mask on every call"]


@pytest.mark.parametrize("mistake", A2_HIDDEN_ONLY)
def test_a2_hidden_tests_catch_what_the_visible_ones_miss(released, one_torch_thread, mistake):
    """These wrong fixes pass the student version's tests; test_a2_autograder_catches_wrong_fixes shows that the
    full ones fail."""
    failed, errors, _ = run_cells(_released_nb(released, A2), {"fix-the-bugs": _a2_wrong_fix(mistake)},
                                  only=A2_UNTRAINED)
    assert failed == {} and errors == {}, "the visible tests pass"


@pytest.mark.parametrize("variant", list(a2_variants.VARIANTS))
def test_a2_correct_variants_get_full_marks(variant, one_torch_thread):
    failed, errors, _ = run_cells(SOURCES[A2], {"fix-the-bugs": a2_variants.VARIANTS[variant].strip("\n")})
    assert failed == {} and errors == {}, variant


# --- assignment 3: the Keras experiment -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def a3_reference():
    """The reference solution of assignment 3, run once: its namespace holds the five trained networks."""
    failed, errors, namespace = run_cells(SOURCES[A3])
    assert failed == {} and errors == {}, "the reference solution (and the model answer's asserted claims) passes"
    return namespace


def _a3_variants(ns: dict) -> dict[str, dict]:
    """Wrong experiments, as the names they would bind; each differs from the reference by construction."""
    scores, models, rates = ns["scores"], ns["models"], ns["RATES"]
    test_scores = {rate: scores(models[rate], ns["x_test"], ns["y_test"]) for rate in rates}
    train_scores = {rate: scores(models[rate], ns["x_train"], ns["y_train"]) for rate in rates}
    other = next(rate for rate in rates if rate != ns["best_rate"])

    def dropout_on(model, x, y):
        """scores() with the network in training mode: a score of random sub-networks, not of the network."""
        logits = model(x, training=True)
        loss = ns["keras"].losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        return float(ns["np"].mean(loss)), float(ns["np"].mean(ns["np"].argmax(logits, axis=1) == y))

    return {
        "validation scored with dropout on": {"val_scores": {rate: dropout_on(models[rate], ns["x_val"], ns["y_val"])
                                                             for rate in rates}},
        "compared on the test split": {"val_scores": test_scores},
        "compared on the training split": {"val_scores": train_scores},
        "the worst rate chosen": {"best_rate": max(rates, key=lambda rate: ns["val_scores"][rate][0])},
        "a rate left out": {"val_scores": {r: s for r, s in ns["val_scores"].items() if r != rates[-1]}},
        "one network for every rate": {"models": {rate: models[ns["best_rate"]] for rate in rates}},
        "the test score of another network": dict(zip(("test_loss", "test_accuracy"), test_scores[other])),
    }


A3_EXPERIMENT_MISTAKES = ["validation scored with dropout on",
                          "compared on the test split", "compared on the training split", "the worst rate chosen",
                          "a rate left out", "one network for every rate", "the test score of another network"]
A3_MODEL_MISTAKES = {  # edits (old text, new text) of the reference build_model
    "the rate ignored": [("keras.layers.Dropout(rate)", "keras.layers.Dropout(0.5)")],
    "no dropout layer": [("        keras.layers.Dropout(rate),\n", "")],
    "dropout on the inputs instead": [("        keras.layers.Dropout(rate),\n", ""),
                                      ("keras.Input(shape=(784,)),\n",
                                       "keras.Input(shape=(784,)),\n        keras.layers.Dropout(rate),\n")],
    "softmax output, from_logits loss": [("keras.layers.Dense(10)", 'keras.layers.Dense(10, activation="softmax")')],
    "a Dropout layer that does nothing (rate 0)": [("keras.layers.Dropout(rate)", "keras.layers.Dropout(0.0)")],
    "the keep probability as the rate": [("keras.layers.Dropout(rate)", "keras.layers.Dropout(1 - rate)")],
    "dropout on the logits instead": [("        keras.layers.Dropout(rate),\n", ""),
                                      ("keras.layers.Dense(10),\n",
                                       "keras.layers.Dense(10),\n        keras.layers.Dropout(rate),\n")],
}


def test_a3_reference_solution_passes(a3_reference):
    assert a3_reference["best_rate"] in a3_reference["RATES"]


@pytest.mark.parametrize("mistake", A3_EXPERIMENT_MISTAKES)
def test_a3_autograder_catches_experiment_mistakes(a3_reference, mistake):
    namespace = dict(a3_reference) | _a3_variants(a3_reference)[mistake]
    failed, errors, _ = run_cells(SOURCES[A3], namespace=namespace, only={"test-experiment"})
    assert errors == {} and "test-experiment" in failed, mistake


@pytest.mark.parametrize("mistake", list(A3_MODEL_MISTAKES))
def test_a3_autograder_catches_model_mistakes(a3_reference, mistake):
    source = _solution(A3, "build-model")
    for old, new in A3_MODEL_MISTAKES[mistake]:
        source = _edit(source, old, new)
    failed, errors, _ = run_cells(SOURCES[A3], {"build-model": source}, namespace=dict(a3_reference),
                                  only={"build-model", "test-build-model"})
    assert errors == {} and "test-build-model" in failed, mistake


@pytest.mark.parametrize("variant", list(a3_variants.BUILD_MODEL_VARIANTS))
def test_a3_correct_models_get_full_marks(a3_reference, variant):
    source = a3_variants.BUILD_MODEL_VARIANTS[variant].strip("\n")
    failed, errors, _ = run_cells(SOURCES[A3], {"build-model": source}, namespace=dict(a3_reference),
                                  only={"build-model", "test-build-model"})
    assert failed == {} and errors == {}, variant


@pytest.mark.parametrize("variant", list(a3_variants.EXPERIMENT_VARIANTS))
def test_a3_correct_experiments_get_full_marks(a3_reference, variant):
    """Each variant trains through `train`, which hands back the reference's networks: no training here."""
    trained = a3_reference["models"]
    namespace = dict(a3_reference) | {"train": lambda rate, seed=0: trained[rate]}
    for name in ("models", "val_scores", "best_rate", "test_loss", "test_accuracy"):
        del namespace[name]
    source = a3_variants.EXPERIMENT_VARIANTS[variant].strip("\n")
    failed, errors, _ = run_cells(SOURCES[A3], {"experiment": source}, namespace=namespace,
                                  only={"experiment", "report", "test-experiment"})
    assert failed == {} and errors == {}, variant


# --- assignment 4: Monte-Carlo dropout in PyTorch -------------------------------------------------------------------

A4_ANSWERS = ("mc-mode", "mc-predict")
A4_GRADED = {*A4_ANSWERS, "test-tools"} | {_meta(cell)["grade_id"] for cell in SOURCES[A4].cells if _is_test(cell)}
_A4_TUPLE = "dropping = (nn.Dropout, nn.MultiheadAttention, nn.LSTM, nn.TransformerEncoderLayer)"
_A4_SWITCH = "            module.training = True  # this module's flag only: .train() would switch its submodules too"
_A4_RESTORE = ("    try:\n        yield model\n    finally:\n        for module, training in saved.items():\n"
               "            module.training = training")
_A4_PASSES = "probs = torch.stack([torch.softmax(model(x), dim=1) for _ in range(n_samples)])"
_A4_ENTROPY = "entropy = -torch.special.xlogy(mean, mean).sum(dim=1)  # xlogy(0, 0) = 0"


def _a4_rates(rate: float) -> str:
    """Lines that set every dropout rate to `rate` when a module is switched on: a mutant's addition to mc_mode."""
    return (f"{_A4_SWITCH}\n            if isinstance(module, nn.Dropout):\n                module.p = {rate}\n"
            f"            elif isinstance(module, (nn.MultiheadAttention, nn.LSTM)):\n"
            f"                module.dropout = {rate}")


# Each mutant: edits (answer cell, old text, new text) of the reference solution, or a whole answer cell's source.
A4_MUTANTS: dict[str, list[tuple[str, str, str]] | dict[str, str]] = {
    "model.train() for everything": [("mc-mode", "model.eval()  # batch", "model.train()  # batch")],
    "batch norm left in the mode it was in": [
        ("mc-mode", "    model.eval()  # batch normalisation, and every other module, in evaluation mode\n", "")],
    "only the nn.Dropout layers switched": [("mc-mode", _A4_TUPLE, "dropping = (nn.Dropout,)")],
    "the Transformer layer itself forgotten (fast path)": [
        ("mc-mode", _A4_TUPLE, "dropping = (nn.Dropout, nn.MultiheadAttention, nn.LSTM)")],
    "the attention forgotten": [
        ("mc-mode", _A4_TUPLE, "dropping = (nn.Dropout, nn.LSTM, nn.TransformerEncoderLayer)")],
    "the LSTM forgotten": [
        ("mc-mode", _A4_TUPLE, "dropping = (nn.Dropout, nn.MultiheadAttention, nn.TransformerEncoderLayer)")],
    "modes not restored": [("mc-mode", _A4_RESTORE, "    yield model")],
    "every module restored to eval": [("mc-mode", _A4_RESTORE, "    try:\n        yield model\n    finally:\n"
                                                              "        model.eval()")],
    "only the model's own mode restored": [("mc-mode", _A4_RESTORE, "    try:\n        yield model\n    finally:\n"
                                                                   "        model.train(saved[model])")],
    "modes not restored after an exception": [
        ("mc-mode", _A4_RESTORE, "    yield model\n    for module, training in saved.items():\n"
                                 "        module.training = training")],
    "an exception inside the block swallowed": [("mc-mode", "    finally:", "    except Exception:\n        pass\n"
                                                                          "    finally:")],
    "every rate set to 0.5": [("mc-mode", _A4_SWITCH, _a4_rates(0.5))],
    "every rate set to 0, so that the passes agree": [("mc-mode", _A4_SWITCH, _a4_rates(0.0))],
    "F.dropout(p=0.5) hooked onto the dropout layers": {"mc-mode": '''
@contextmanager
def mc_mode(model):
    saved = {module: module.training for module in model.modules()}
    model.eval()
    hooks = [module.register_forward_hook(lambda module, args, out: F.dropout(args[0], 0.5, training=True))
             for module in model.modules() if isinstance(module, nn.Dropout)]
    try:
        yield model
    finally:
        for hook in hooks:
            hook.remove()
        for module, training in saved.items():
            module.training = training
'''},
    "mc_mode does nothing": {"mc-mode": '''
@contextmanager
def mc_mode(model):
    yield model
'''},
    "the head's dropout removed inside the block": [
        ("mc-mode", "    try:\n        yield model", "    head, model.dropout = model.dropout, nn.Identity()\n"
                                                   "    try:\n        yield model"),
        ("mc-mode", "            module.training = training", "            module.training = training\n"
                                                             "        model.dropout = head")],
    "mc_predict without mc_mode: dropout off": [("mc-predict", "with torch.no_grad(), mc_mode(model):",
                                                 "with torch.no_grad():")],
    "the book's mc_mode imported": {"mc-mode": '''
from utils.chapters.mc_dropout import mc_mode as book_mc_mode


def mc_mode(model):
    return book_mc_mode(model)
'''},
    "logits averaged": [("mc-predict", f"{_A4_PASSES}\n    mean = probs.mean(dim=0)",
                         "logits = torch.stack([model(x) for _ in range(n_samples)])\n"
                         "    mean = torch.softmax(logits.mean(dim=0), dim=1)")],
    "a single sample": [("mc-predict", "for _ in range(n_samples)", "for _ in range(1)")],
    "computed under autograd": [("mc-predict", "with torch.no_grad(), mc_mode(model):", "with mc_mode(model):")],
    "computed under autograd, detached afterwards": [
        ("mc-predict", "with torch.no_grad(), mc_mode(model):", "with mc_mode(model):"),
        ("mc-predict", "return mean, entropy", "return mean.detach(), entropy.detach()")],
    "model.train() in mc_predict": [("mc-predict", "with torch.no_grad(), mc_mode(model):",
                                     "model.train()\n    with torch.no_grad():")],
    "the mean of the passes' entropies": [
        ("mc-predict", _A4_ENTROPY, "entropy = -torch.special.xlogy(probs, probs).sum(dim=2).mean(dim=0)")],
    "entropy in bits": [("mc-predict", _A4_ENTROPY, "entropy = -torch.special.xlogy(mean, mean).sum(dim=1) / 0.6931")],
    "NaN entropy where a probability is 0": [("mc-predict", _A4_ENTROPY, "entropy = -(mean * mean.log()).sum(dim=1)")],
    "n_samples not checked": [
        ("mc-predict", "    if isinstance(n_samples, bool) or not isinstance(n_samples, int):\n"
                       "        raise TypeError(f\"n_samples must be a positive int, got {n_samples!r}\")\n"
                       "    if n_samples < 1:\n"
                       "        raise ValueError(f\"n_samples must be a positive int, got {n_samples}\")\n", "")],
}

# Mistakes that pass every visible test: only the hidden tests catch them.
A4_HIDDEN_ONLY = ["batch norm left in the mode it was in", "only the nn.Dropout layers switched",
                  "the Transformer layer itself forgotten (fast path)", "the attention forgotten", "the LSTM forgotten",
                  "every module restored to eval", "modes not restored after an exception",
                  "an exception inside the block swallowed", "computed under autograd, detached afterwards",
                  "NaN entropy where a probability is 0"]

# Correct solutions written differently from the reference: each must get full marks.
A4_VARIANTS = {
    "a class with enable/restore, matched on rate attributes, a running mean": {"mc-mode": '''
def enable_mc_dropout(model):
    """Switch on the modules that have a dropout rate and switch off all others; return the old modes."""
    saved = [(module, module.training) for module in model.modules()]
    for module in model.modules():
        module.training = isinstance(getattr(module, "p", None), float) or hasattr(module, "dropout")
    return saved


def restore_modes(saved):
    for module, training in saved:
        module.training = training


class mc_mode:
    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.saved = enable_mc_dropout(self.model)
        return self.model

    def __exit__(self, *exc_info):
        restore_modes(self.saved)
        return False
''', "mc-predict": '''
def mc_predict(model, x, n_samples):
    if not isinstance(n_samples, int) or isinstance(n_samples, bool) or n_samples <= 0:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    saved = enable_mc_dropout(model)
    try:
        total = None
        with torch.no_grad():
            for _ in range(n_samples):
                probs = F.softmax(model(x), dim=-1)
                total = probs if total is None else total + probs
    finally:
        restore_modes(saved)
    mean = total / n_samples
    logs = torch.where(mean > 0, mean.log(), torch.zeros_like(mean))
    return mean, -(mean * logs).sum(dim=-1)
'''},
    "a generator, base classes, recursive train(), inference mode, entr": {"mc-mode": '''
@contextmanager
def mc_mode(model):
    modes = [(module, module.training) for module in model.modules()]
    dropping = (nn.modules.dropout._DropoutNd, nn.MultiheadAttention, nn.RNNBase, nn.TransformerEncoderLayer)
    try:
        model.eval()
        for module in model.modules():
            if isinstance(module, dropping):
                module.train()
        yield model
    finally:
        for module, mode in modes:  # parents before children, so each child's own mode comes last
            module.train(mode)
''', "mc-predict": '''
def mc_predict(model, x, n_samples):
    if type(n_samples) is not int:
        raise TypeError(f"n_samples must be an int, not {type(n_samples).__name__}")
    if n_samples <= 0:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
    with mc_mode(model), torch.inference_mode():
        samples = [model(x).softmax(dim=-1) for _ in range(n_samples)]
    mean = torch.stack(samples).mean(dim=0)
    return mean, torch.special.entr(mean).sum(dim=-1)
'''},
}


def _a4_answers(edits: list[tuple[str, str, str]] | dict[str, str]) -> dict[str, str]:
    """The answer cells of a mutant or variant: the reference solutions with `edits`, or the given sources."""
    sources = {grade_id: _solution(A4, grade_id) for grade_id in A4_ANSWERS}
    if isinstance(edits, dict):
        return sources | {grade_id: source.strip("\n") for grade_id, source in edits.items()}
    for grade_id, old, new in edits:
        sources[grade_id] = _edit(sources[grade_id], old, new)
    return sources


@pytest.fixture(scope="module")
def a4_reference():
    """Assignment 4 run once with its reference solution: the namespace after the trained network."""
    with _torch_threads(1):
        failed, errors, namespace = run_cells(SOURCES[A4])
    assert failed == {} and errors == {}, "the reference solution passes every test, and the notebook runs"
    return namespace


def _a4_grade(nb, answers: dict[str, str], namespace: dict) -> tuple[dict[str, str], dict[str, str]]:
    """Run the answer and test cells of `nb` with `answers`, after the given code (from the reference run)."""
    failed, errors, _ = run_cells(nb, answers, namespace=dict(namespace), only=A4_GRADED)
    return failed, errors


def test_a4_reference_without_markers_passes(a4_reference, one_torch_thread):
    failed, errors = _a4_grade(SOURCES[A4], _a4_answers([]), a4_reference)
    assert failed == {} and errors == {}


@pytest.mark.parametrize("mutant", list(A4_MUTANTS))
def test_a4_autograder_catches(a4_reference, one_torch_thread, mutant):
    failed, errors = _a4_grade(SOURCES[A4], _a4_answers(A4_MUTANTS[mutant]), a4_reference)
    assert errors == {}, "a mutant must still run; only the tests may fail"
    assert failed, f"no test caught the mistake {mutant!r}"


@pytest.mark.parametrize("mutant", A4_HIDDEN_ONLY)
def test_a4_hidden_tests_catch_what_the_visible_ones_miss(released, a4_reference, one_torch_thread, mutant):
    """These mistakes pass the student version's tests; test_a4_autograder_catches shows that the full ones fail."""
    failed, errors = _a4_grade(_released_nb(released, A4), _a4_answers(A4_MUTANTS[mutant]), a4_reference)
    assert failed == {} and errors == {}, "the visible tests pass"


@pytest.mark.parametrize("variant", list(A4_VARIANTS))
def test_a4_correct_variants_get_full_marks(a4_reference, one_torch_thread, variant):
    failed, errors = _a4_grade(SOURCES[A4], _a4_answers(A4_VARIANTS[variant]), a4_reference)
    assert failed == {} and errors == {}, variant


def test_a4_uses_no_book_mc_dropout_code():
    """The student version imports nothing from the book's chapter modules, and no test names their functions."""
    text = "\n".join(cell.source for cell in SOURCES[A4].cells)
    assert "utils.chapters" in _cell(SOURCES[A4], "test-mc-mode-dropout").source, "the visible check is there"
    for line in text.splitlines():
        assert not (("import" in line) and "utils.chapters" in line), line
    for name in ("dropout_layers", "dropout_rate", "predictive_entropy", "predictive_mean", "mutual_information"):
        assert name not in text, name


def test_a4_model_answer_claims_hold(a4_reference, one_torch_thread):
    """What the model answer of Task 3 states about this network, checked on the trained network."""
    import torch

    ns = a4_reference
    model, x = ns["trained_model"](), ns["x_val"]
    # 1. model.train(): batch statistics, a prediction that depends on its batch, running statistics overwritten.
    model.train()
    assert model.norm.momentum == 0.1
    before = model.norm.running_mean.clone()
    with torch.no_grad():
        states = torch.randn(8, model.norm.num_features)
        alone, together = model.norm(states[:4])[0], model.norm(torch.cat([states[:1], 5 + states[4:]]))[0]
        assert not torch.allclose(alone, together), "in train mode a row's output depends on its batch"
        with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
            model.norm(states[:1])
        model(x)
    assert not torch.allclose(model.norm.running_mean, before), "training-mode passes overwrite the statistics"
    # 2. The encoder layer's fast path skips its dropout whatever its dropout layers' flags; its own flag stops it.
    model = ns["trained_model"]()
    tokens = model.embed(x.reshape(len(x), -1, model.patch)).detach()
    for name in ("dropout", "dropout1", "dropout2", "self_attn"):
        model.encoder.get_submodule(name).train()
    with torch.no_grad():
        assert torch.equal(model.encoder(tokens), model.encoder(tokens)), "fast path: deterministic"
        model.encoder.training = True
        assert not torch.equal(model.encoder(tokens), model.encoder(tokens)), "its own flag: dropout runs"
    # The LSTM and the attention drop only with their own flags on.
    model = ns["trained_model"]()
    with torch.no_grad():
        assert torch.equal(model.lstm(tokens)[0], model.lstm(tokens)[0])
        model.lstm.train()
        assert not torch.equal(model.lstm(tokens)[0], model.lstm(tokens)[0])
        weights = model.encoder.self_attn(tokens, tokens, tokens, average_attn_weights=False)[1]
        assert not (weights == 0).any(), "in eval mode no attention weight is dropped"


# --- nbgrader's real autograde path, end to end ---------------------------------------------------------------------

def _submission(released_nb, answers: dict[str, str]):
    """A student's notebook: the released one with the answer cells filled in."""
    nb = nbformat.from_dict(released_nb)
    for grade_id, source in answers.items():
        _cell(nb, grade_id).source = source
    return nb


def _autograde(course: Path, name: str, answers: dict[str, dict[str, str] | None]) -> tuple[float, dict, dict]:
    """generate_assignment with a gradebook, one submission per student (None: the student version untouched),
    `nbgrader autograde`; return (the test cells' points, each student's points from them, each test cell's points).
    """
    from nbgrader.api import Gradebook
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory

    shutil.copytree(ra.SOURCE_DIR / name, course / "source" / name)
    config = ra.load_course_config(course)
    release_dir = ra.generate_assignment(course, name, database=True, config=config)
    handed_out = nbformat.read(release_dir / f"{name}.ipynb", as_version=4)
    for student, submitted in answers.items():
        folder = course / "submitted" / student / name
        folder.mkdir(parents=True)
        nbformat.write(handed_out if submitted is None else _submission(handed_out, submitted),
                       folder / f"{name}.ipynb")

    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = name
    Autograde(coursedir=coursedir, config=config).start()

    with Gradebook(coursedir.db_url, coursedir.course_id) as gradebook:
        total = gradebook.find_assignment(name).max_code_score
        scores = {student: gradebook.find_submission(name, student).code_score for student in answers}
        cells = {cell.name: cell.max_score for cell in gradebook.find_notebook(name, name).grade_cells}
    return total, scores, cells


@pytest.mark.filterwarnings("ignore:Object of type:sqlalchemy.exc.SAWarning")  # nbgrader's own session handling
def test_nbgrader_autograde_grades_submissions_end_to_end(tmp_path):
    """generate_assignment with a gradebook, three submissions, `nbgrader autograde`: the scores it records."""
    reference = {"forward": _solution(A1, "forward"), "backward": _solution(A1, "backward")}
    total, scores, cells = _autograde(tmp_path / "course", A1, {
        "alice": reference,  # the reference solution
        "bob": None,  # handed in untouched
        "carol": _a1_mutant("NumPy's global generator, not rng"),  # hidden tests catch it
    })
    assert total == _points(SOURCES[A1])[0] == 12
    assert scores == {"alice": total, "bob": 0, "carol": total - cells["test-forward-random"]}
    graded = nbformat.read(tmp_path / "course" / "autograded" / "carol" / A1 / f"{A1}.ipynb", as_version=4)
    assert "BEGIN HIDDEN TESTS" in _cell(graded, "test-forward-random").source, "autograde restores hidden tests"


@pytest.mark.slow  # two submissions, each trained twice in a kernel that imports PyTorch: about a minute
@pytest.mark.filterwarnings("ignore:Object of type:sqlalchemy.exc.SAWarning")
def test_nbgrader_autograde_marks_down_a_wrong_fix_of_a2(tmp_path):
    """The fix with its hidden dropout deleted passes every visible test; nbgrader's autograde marks it down."""
    total, scores, cells = _autograde(tmp_path / "course", A2, {
        "alice": {"fix-the-bugs": _a2_fixed()},
        "dave": {"fix-the-bugs": _a2_wrong_fix("the hidden dropout removed")},
    })
    assert total == _points(SOURCES[A2])[0] == 10
    assert scores == {"alice": total, "dave": total - cells["test-eval-mode"]}


# --- the site without solutions -------------------------------------------------------------------------------------

def test_solutions_mode_reads_the_switch(monkeypatch):
    monkeypatch.delenv("BOOK_SOLUTIONS", raising=False)
    assert solutions_mode() == "show"
    monkeypatch.setenv("BOOK_SOLUTIONS", "hide")
    assert solutions_mode() == "hide"
    assert solutions_mode("Show") == "show"
    with pytest.raises(ValueError, match="BOOK_SOLUTIONS must be one of show, hide"):
        solutions_mode("no")


def test_site_without_solutions_hides_them_and_default_collapses_them(tmp_path):
    """A two-page book with the book's own configuration, built with and without solutions."""
    book = tmp_path / "book"
    book.mkdir()
    for name in ("_config.yml", "references.bib"):
        shutil.copy(ROOT / name, book / name)
    if (ROOT / "_static").is_dir():
        shutil.copytree(ROOT / "_static", book / "_static")
    (book / "_toc.yml").write_text("format: jb-book\nroot: page\nchapters:\n  - file: cells\n")
    (book / "page.md").write_text(
        "# Page\n\n```{exercise} Add\n:label: ex-switch-1\n\nWhat is two plus two?\n```\n\n"
        "```{solution} ex-switch-1\n:class: dropdown\n\nSECRET-ANSWER-FOUR\n```\n")
    cells = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Cells"),
        nbformat.v4.new_code_cell("public_line = 1"),
        nbformat.v4.new_code_cell("secret_solution_line = 2", metadata={"tags": [SOLUTION_CELL_TAG]}),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(cells, book / "cells.ipynb")

    pages = {}
    for mode in ("show", "hide"):
        result = build(book, solutions=mode, output=tmp_path / mode)
        assert result.returncode == 0, f"{mode}: {result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        html = tmp_path / mode / "_build" / "html"
        pages[mode] = {name: (html / f"{name}.html").read_text(encoding="utf-8") for name in ("page", "cells")}
    assert "SECRET-ANSWER-FOUR" in pages["show"]["page"]
    assert 'class="solution dropdown' in pages["show"]["page"], "by default a solution is a collapsed dropdown"
    assert "secret_solution_line" in pages["show"]["cells"]
    assert "What is two plus two?" in pages["hide"]["page"], "the exercise stays"
    assert "SECRET-ANSWER-FOUR" not in pages["hide"]["page"] and 'class="solution' not in pages["hide"]["page"]
    assert "secret_solution_line" not in pages["hide"]["cells"] and "public_line" in pages["hide"]["cells"]
