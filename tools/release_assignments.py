"""Generate the student versions of the course assignments with nbgrader, and a release archive.

Usage: python -m tools.release_assignments [OUTPUT_DIR]   (default: _build/assignments)

The instructor's notebooks are assignments/source/<assignment>/<assignment>.ipynb, an nbgrader course layout.
nbgrader's own generate_assignment step (its GenerateAssignment converter, run with the course's
assignments/nbgrader_config.py) writes the student versions: solution regions replaced by a stub, hidden tests
removed, outputs cleared, cells locked. The output folder then holds only what students may see:

    release/<assignment>/<assignment>.ipynb   the student versions
    dropout-in-depth-assignments.zip         the release folder as one archive

(nbgrader works on a course folder, so the sources are copied in for the run and removed afterwards.) Every student
version is checked against its source before the archive is written (see `leaks`); any leak is an error. Nothing is
written to a gradebook: instructors who grade run nbgrader in assignments/ themselves (chapters/instructors.md).
"""

from __future__ import annotations

import os
import shutil
import sys
import zipfile
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from traitlets.config import Config, PyFileConfigLoader

from tools.toc import ROOT

ASSIGNMENTS_DIR = ROOT / "assignments"
SOURCE_DIR = ASSIGNMENTS_DIR / "source"
CONFIG_FILE = ASSIGNMENTS_DIR / "nbgrader_config.py"
OUTPUT_DIR = ROOT / "_build" / "assignments"
ARCHIVE_NAME = "dropout-in-depth-assignments.zip"

MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
_MIN_SECRET_LENGTH = 8  # shorter lines (")", "else:", "pass") say nothing about a solution
_ZIP_DATE = (2026, 1, 1, 0, 0, 0)  # a fixed timestamp, so that equal releases give byte-identical archives


def assignment_ids(source_dir: Path = SOURCE_DIR) -> list[str]:
    """Return the names of the assignments in `source_dir`: its folders that hold a notebook of the same name."""
    if not source_dir.is_dir():
        raise FileNotFoundError(f"no assignment sources in {source_dir}")
    found = sorted(folder.name for folder in source_dir.iterdir() if (folder / f"{folder.name}.ipynb").is_file())
    if not found:
        raise FileNotFoundError(f"{source_dir} holds no <assignment>/<assignment>.ipynb notebook")
    return found


def load_course_config(root: Path, config_file: Path = CONFIG_FILE) -> Config:
    """Read the course's nbgrader_config.py and point the course directory at `root`."""
    if not config_file.is_file():
        raise FileNotFoundError(f"no nbgrader configuration at {config_file}")
    config = PyFileConfigLoader(config_file.name, path=str(config_file.parent)).load_config()
    config.CourseDirectory.root = str(Path(root).resolve())
    return config


def _put_environment_on_path() -> None:
    """Make this environment's executables findable: nbgrader's gradebook runs the `alembic` command."""
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])


def generate_assignment(root: Path, assignment: str, *, database: bool = False,
                        config: Config | None = None) -> Path:
    """Run nbgrader's generate_assignment for `assignment` of the course at `root`; return its release folder.

    With `database=True` the assignment is also recorded in the course's gradebook (root/gradebook.db), as
    `nbgrader generate_assignment` does by default; autograding needs that.
    """
    from nbgrader.converters import GenerateAssignment  # nbgrader is slow to import: only when needed
    from nbgrader.coursedir import CourseDirectory

    _put_environment_on_path()
    root = Path(root).resolve()
    if not (root / "source" / assignment / f"{assignment}.ipynb").is_file():
        raise FileNotFoundError(f"no source notebook source/{assignment}/{assignment}.ipynb in {root}")
    config = load_course_config(root) if config is None else config
    config.CourseDirectory.root = str(root)
    config.GenerateAssignment.no_database = not database  # what `nbgrader generate_assignment --no-db` sets
    config.SaveCells.enabled = database
    config.GenerateAssignment.force = True  # regenerate: replace an existing release of the assignment
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = assignment
    GenerateAssignment(coursedir=coursedir, config=config).start()
    return root / "release" / assignment


def _regions(source: str, begin: str, end: str) -> tuple[list[str], list[str]]:
    """Split a cell's lines into those inside begin/end regions and those outside (the marker lines dropped)."""
    inside: list[str] = []
    outside: list[str] = []
    in_region = False
    for line in source.splitlines():
        if begin in line:
            in_region = True
        elif end in line:
            in_region = False
        else:
            (inside if in_region else outside).append(line)
    return inside, outside


def secret_lines(source_nb: NotebookNode) -> set[str]:
    """Return the lines of an nbgrader source notebook that no student may see, stripped of indentation.

    Those are the lines of solution regions, of solution cells without a region (replaced whole, e.g. written
    answers) and of hidden-test regions, less any line that also appears in the notebook's public text (a fixed
    line that equals a line of the buggy code, say) and lines too short to give anything away.
    """
    secret: set[str] = set()
    public: set[str] = set()
    for cell in source_nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        inside, outside = _regions(cell.source, "BEGIN SOLUTION", "END SOLUTION")
        if meta.get("solution") and not any("BEGIN SOLUTION" in line for line in cell.source.splitlines()):
            inside, outside = outside, []  # a solution cell without a region is replaced as a whole
        hidden, outside = _regions("\n".join(outside), "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
        secret.update(line.strip() for line in inside + hidden)
        public.update(line.strip() for line in outside)
    return {line for line in secret - public if len(line) >= _MIN_SECRET_LENGTH}


def leaks(source_nb: NotebookNode, release_nb: NotebookNode) -> list[str]:
    """Return every way the student version `release_nb` gives away its source: markers, secret lines, outputs."""
    problems: list[str] = []
    secret = secret_lines(source_nb)
    for index, cell in enumerate(release_nb.cells):
        name = cell.metadata.get("nbgrader", {}).get("grade_id", f"#{index}")
        problems += [f"cell {name}: marker {marker!r} left in" for marker in MARKERS if marker in cell.source]
        problems += [f"cell {name}: solution or hidden-test line {line.strip()!r}"
                     for line in cell.source.splitlines() if line.strip() in secret]
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
            problems.append(f"cell {name}: outputs not cleared")
    return problems


def write_archive(release_dir: Path, archive: Path) -> Path:
    """Zip every file under `release_dir` (paths relative to it, sorted, with a fixed timestamp) into `archive`."""
    files = sorted(path for path in release_dir.rglob("*") if path.is_file())
    if not files:
        raise FileNotFoundError(f"nothing to archive in {release_dir}")
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for path in files:
            info = zipfile.ZipInfo(str(path.relative_to(release_dir)), date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            bundle.writestr(info, path.read_bytes())
    return archive


def release(output_dir: Path = OUTPUT_DIR, source_dir: Path = SOURCE_DIR) -> Path:
    """Regenerate `output_dir` from scratch: the student version of every assignment, checked, and the archive.

    Return the archive's path. Raise RuntimeError, naming each problem, if a student version leaks anything.
    """
    output_dir, source_dir = Path(output_dir).resolve(), Path(source_dir).resolve()
    if output_dir == ROOT or output_dir in ROOT.parents or source_dir.is_relative_to(output_dir):
        raise ValueError(f"refusing to clear {output_dir}: it holds the book or the sources; give a separate folder")
    assignments = assignment_ids(source_dir)
    if output_dir.exists():
        shutil.rmtree(output_dir)
    shutil.copytree(source_dir, output_dir / "source", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    config = load_course_config(output_dir)
    problems: list[str] = []
    for assignment in assignments:
        release_dir = generate_assignment(output_dir, assignment, config=config)
        source_nb = nbformat.read(source_dir / assignment / f"{assignment}.ipynb", as_version=4)
        release_nb = nbformat.read(release_dir / f"{assignment}.ipynb", as_version=4)
        problems += [f"{assignment}: {problem}" for problem in leaks(source_nb, release_nb)]
    shutil.rmtree(output_dir / "source")  # the folder is then safe to share: it holds no solution
    if problems:
        shutil.rmtree(output_dir / "release")  # leave nothing behind that gives solutions away
        raise RuntimeError("the student versions give solutions away:\n" + "\n".join(problems))
    return write_archive(output_dir / "release", output_dir / ARCHIVE_NAME)


def main(argv: list[str]) -> int:
    """Generate the release into the folder named in argv (default _build/assignments) and say where it is."""
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    output_dir = Path(argv[0]) if argv else OUTPUT_DIR
    archive = release(output_dir)
    print(f"Student versions of {', '.join(assignment_ids())} in {output_dir / 'release'}; archive: {archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
