"""Create the book's environment in .venv/ and run the book's commands in it, alike on Linux, macOS and Windows.

    python -m tools.env              create .venv/ from the pins in requirements.txt, or repair it   (make env)
    python -m tools.env site         then build the static site into _build/html                      (make site)
    python -m tools.env lint         then ruff                                                        (make lint)
    python -m tools.env browser      then make sure Chromium is there for the browser tests           (make browser)
    python -m tools.env test         then lint, browser, every test                                   (make test)
    python -m tools.env test-fast    then lint, the unit tier                                         (make test-fast)
    python -m tools.env test-site    then browser, the site tier                                      (make test-site)

The Makefile's targets call this module: there is one implementation. It needs the standard library alone, since it
runs before .venv/ exists. uv installs the pins: the one on the PATH, or else a pinned uv that pip first installs
into the user's cache folder; pip installs them when that fails or with `--installer pip`. For uv, the machine's pip
settings (indexes, find-links, constraints) become uv's options, so that
both install what `pip install -r requirements.txt` would. The stamp .venv/.installed, written only after every step
succeeded, holds hashes of requirements.txt and pyproject.toml. An environment without a stamp that matches is never
trusted: it is installed into again, or, when its Python is missing, broken or too old, removed and made afresh. A
failure leaves no stamp, removes a .venv/ made in the same run, and ends with one paragraph saying what to do.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STAMP_NAME = ".installed"
REQUIREMENTS = "requirements.txt"
STAMPED_FILES = (REQUIREMENTS, "pyproject.toml")
# A fresh .venv/ from requirements.txt is 2.9 GB on Linux (2026-12-07); the installer's cache needs room as well, on
# the same disk or another, so 3 GB free is the least that an install can succeed with.
NEEDED_BYTES = 3 * 10**9
UV_VERSION = "0.13.10"  # what the set-up installs with pip when no uv is on the PATH
OUTPUT_LINES = 15  # how much of a failed command's output a failure message repeats
# The pytest arguments of each test command, after `python -m pytest` (pyproject.toml adds its addopts). `test` runs
# one pytest-xdist worker per core; conftest.py keeps each notebook's cells, and the site's own tests, on one worker.
PYTEST_ARGS: dict[str, tuple[str, ...]] = {
    "test": ("-n", "auto"),
    "test-fast": ("tests", "-m", "unit", "--durations=10"),
    "test-site": ("tests", "-m", "site"),
}
COMMANDS = ("env", "site", "lint", "browser", *PYTEST_ARGS)

# pip settings and their uv options. A setting found in none of these changes what pip installs in a way this module
# does not translate: the install then uses pip (or stops, when uv was asked for by name).
UV_LIST_OPTIONS = {  # pip splits these on white space; each value becomes one uv option
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
    "trusted-host": "--allow-insecure-host",
}
UV_ENV_OPTIONS = {"cert": "SSL_CERT_FILE", "timeout": "UV_HTTP_TIMEOUT", "default-timeout": "UV_HTTP_TIMEOUT"}
PIP_ONLY_SETTINGS = frozenset({  # settings that change how pip talks or logs, not what it installs
    "break-system-packages", "cache-dir", "config-file", "disable-pip-version-check", "exists-action", "isolated",
    "log", "log-file", "no-cache-dir", "no-color", "no-input", "no-python-version-warning", "no-warn-conflicts",
    "no-warn-script-location", "progress-bar", "quiet", "require-virtualenv", "retries", "root-user-action",
    "verbose",
})
PIP_SECTIONS = {"global": 0, "install": 1, ":env:": 2}  # `pip install` reads these; a later one wins


class SetupError(Exception):
    """A set-up step failed in a way the reader can mend; the message says how."""


class StepFailed(Exception):
    """A tool the command ran (ruff, pytest, the site build) failed and has said why; carries its exit code."""


# --- paths and the stamp --------------------------------------------------------------------------------------------

def venv_bin(venv: Path, name: str, windows: bool | None = None) -> Path:
    """Return the path of program `name` in virtual environment `venv` (Scripts\\name.exe on Windows)."""
    windows = os.name == "nt" if windows is None else windows
    return venv / "Scripts" / f"{name}.exe" if windows else venv / "bin" / name


def venv_python(venv: Path, windows: bool | None = None) -> Path:
    """Return the path of the Python of virtual environment `venv`."""
    return venv_bin(venv, "python", windows)


def stamp_hashes() -> dict[str, str]:
    """Return the SHA-256 of each file the environment is made from (requirements.txt, pyproject.toml)."""
    return {name: hashlib.sha256((ROOT / name).read_bytes()).hexdigest() for name in STAMPED_FILES}


def stamp_is_valid(venv: Path) -> bool:
    """Return whether `venv` has a Python and a stamp whose hashes match the current requirements and pyproject."""
    try:
        stamp = json.loads((venv / STAMP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(stamp, dict) and stamp.get("hashes") == stamp_hashes() and venv_python(venv).is_file()


def write_stamp(venv: Path, installer: str) -> None:
    """Write the stamp of `venv`, whole or not at all: the hashes, and the installer (for the reader's information)."""
    record = {"hashes": stamp_hashes(), "installer": installer}
    partial = venv / (STAMP_NAME + ".tmp")
    partial.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    os.replace(partial, venv / STAMP_NAME)


def remove_tree(path: Path) -> None:
    """Remove the folder `path` and everything in it, read-only files included (Windows marks some so)."""
    def make_writable_and_retry(function, name, _exc_info) -> None:
        os.chmod(name, stat.S_IWRITE)
        function(name)

    if path.exists():
        shutil.rmtree(path, onerror=make_writable_and_retry)


# --- the checks that come before an install -------------------------------------------------------------------------

def required_python() -> tuple[int, int]:
    """Return the oldest Python the book supports, read from `requires-python = ">=X.Y"` in pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    found = re.search(r'^requires-python\s*=\s*">=\s*(\d+)\.(\d+)', text, re.MULTILINE)
    if not found:
        raise SetupError("pyproject.toml has no `requires-python = \">=X.Y\"` line; restore it from the repository.")
    return int(found.group(1)), int(found.group(2))


def dotted(version: tuple[int, ...]) -> str:
    """Return a version tuple as text, e.g. (3, 11) -> '3.11'."""
    return ".".join(str(part) for part in version)


def check_python(version: tuple[int, ...], required: tuple[int, int], executable: str) -> None:
    """Raise SetupError, saying which Python to install and how to run it, when `version` is older than required."""
    if tuple(version[:2]) >= required:
        return
    have, need = dotted(tuple(version[:3])), dotted(required)
    raise SetupError(
        f"The book needs Python {need} or newer, and {executable} is Python {have}. Install Python {need} "
        f"(from python.org; or `brew install python@{need}` on macOS, `sudo apt-get install python{need} "
        f"python{need}-venv` on Debian or Ubuntu, `winget install Python.Python.{need}` on Windows), then run the "
        f"same command with it: `python{need} -m tools.env` (on Windows `py -{need} -m tools.env`), or "
        f"`make PYTHON=python{need} ...`.")


def gigabytes(size: int) -> str:
    """Return a byte count as gigabytes with one decimal, e.g. '2.7 GB'."""
    return f"{size / 1e9:.1f} GB"


def check_disk(folder: Path, needed: int = NEEDED_BYTES, free: int | None = None) -> None:
    """Raise SetupError, saying how much is needed and how much is free, when `folder`'s disk has too little room."""
    existing = next(path for path in (folder.absolute(), *folder.absolute().parents) if path.exists())
    free = shutil.disk_usage(existing).free if free is None else free
    if free >= needed:
        return
    raise SetupError(
        f"The environment needs about {gigabytes(needed)} of free disk space in {folder}, and only "
        f"{gigabytes(free)} is free there. Free at least {gigabytes(needed - free)} (an installer's cache is often "
        f"large: `pip cache purge`, `uv cache clean`), or work in a copy of the book on a larger disk, then run the "
        f"same command again.")


# --- pip's settings, for uv -----------------------------------------------------------------------------------------

def parse_pip_config(listing: str) -> dict[str, str]:
    """Return the settings `pip install` uses, from the output of `pip config list` (environment variables win)."""
    settings: dict[str, tuple[int, str]] = {}
    for line in listing.splitlines():
        key, equals, raw = line.strip().partition("=")
        section, dot, option = key.rpartition(".")
        if not (equals and dot) or section not in PIP_SECTIONS:
            continue
        value = ast.literal_eval(raw) if raw[:1] in "'\"" else raw
        option = option.lower().replace("_", "-")
        rank = PIP_SECTIONS[section]
        if option not in settings or rank >= settings[option][0]:
            settings[option] = (rank, str(value))
    return {option: value for option, (_rank, value) in settings.items()}


def pip_true(value: str) -> bool:
    """Return a pip boolean setting's truth as pip reads it ('1', 'true', 'yes', 'on' are true)."""
    return value.strip().lower() in ("1", "true", "yes", "on", "y", "t")


def uv_options(settings: dict[str, str]) -> tuple[list[str], dict[str, str], list[str]]:
    """Return uv's options and environment variables for pip's `settings`, and the settings uv cannot follow.

    uv takes a package from the first index that has it; pip takes the best version from all of them, so with more
    than one source of packages (an extra index, a find-links folder) uv is told `--index-strategy
    unsafe-best-match`, pip's behaviour.
    """
    options: list[str] = []
    environ: dict[str, str] = {}
    untranslated: list[str] = []
    sources = 1
    for option, value in sorted(settings.items()):
        if option == "index-url":
            options += ["--index-url", value.strip()]
        elif option == "no-index":
            if pip_true(value):
                options.append("--no-index")
                sources -= 1
        elif option in UV_LIST_OPTIONS:
            for item in value.split():
                options += [UV_LIST_OPTIONS[option], item]
                sources += option in ("extra-index-url", "find-links")
        elif option in UV_ENV_OPTIONS:
            environ[UV_ENV_OPTIONS[option]] = value.strip()
        elif option not in PIP_ONLY_SETTINGS:
            untranslated.append(option)
    if sources > 1:
        options += ["--index-strategy", "unsafe-best-match"]
    return options, environ, untranslated


def pip_settings(python: Path) -> dict[str, str]:
    """Return the pip settings that `python -m pip install` follows (config files and PIP_* variables).

    The environment's own pip answers (it also reads the environment's pip.conf); one without pip leaves it to the
    pip of the Python that runs this module.
    """
    try:
        listing = run_captured([str(python), "-m", "pip", "config", "list"], "pip config list")
    except SetupError:
        listing = run_captured([sys.executable, "-m", "pip", "config", "list"], "pip config list",
                               "uv follows pip's settings, so it needs a pip to read them: use `--installer pip`.")
    return parse_pip_config(listing)


# --- running installers ---------------------------------------------------------------------------------------------

def last_lines(output: str, count: int = OUTPUT_LINES) -> str:
    """Return the last `count` non-empty lines of a command's output, indented, for a failure message."""
    lines = [line for line in output.splitlines() if line.strip()]
    return "\n".join("    " + line for line in lines[-count:]) or "    (it printed nothing)"


def run_captured(command: list[str], what: str, advice: str = "", environ: dict[str, str] | None = None) -> str:
    """Run `command` in the book's folder and return its output; raise SetupError with its last lines on failure."""
    try:
        result = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=None if environ is None else {**os.environ, **environ})
    except OSError as error:
        raise SetupError(f"Could not start {what} ({error}). {advice}".strip()) from None
    if result.returncode != 0:
        raise SetupError(f"{what} failed (exit code {result.returncode}). Its last lines:\n"
                         f"{last_lines(result.stdout)}\n{advice}".rstrip())
    return result.stdout


def create_venv(venv: Path) -> None:
    """Make a virtual environment with pip in `venv`, with the Python that runs this module."""
    need = dotted(tuple(sys.version_info[:2]))
    run_captured([sys.executable, "-m", "venv", str(venv)], f"`{Path(sys.executable).name} -m venv {venv}`",
                 f"On Debian or Ubuntu, Python's venv module comes apart: `sudo apt-get install python{need}-venv`, "
                 f"then run the same command again.")


def install_advice(uv: Path | None) -> str:
    """Return what to try when installing the pins failed."""
    other = ("`--installer pip` installs with pip instead of uv; " if uv else
             "`--installer uv` installs with uv instead of pip; ")
    return (f"What to try: run the same command again (a download may have broken off); check the network and the "
            f"machine's pip settings (`pip config list`); {other}when a package has no wheel for this Python, use "
            f"Python {dotted(required_python())}, the version the pins were chosen for; deleting the environment's "
            f"folder makes the next run start afresh.")


# Whether the environment can build the book's package itself: setuptools, with its own bdist_wheel (70.1 and later)
# or the wheel package's.
CAN_BUILD = """
import setuptools
try:
    import setuptools.command.bdist_wheel
except ImportError:
    import wheel
"""


def install(python: Path, uv: Path | None, uv_required: bool = False) -> str:
    """Install the pins of requirements.txt, then the book's package (editable, as `pip install -e .`); name the tool.

    As make did, the book's package is built without build isolation, from the environment's own setuptools (the
    pins bring it, and wheel), so that no other download is needed; where the environment cannot build it, the
    installer builds it in isolation. Where uv cannot follow one of pip's settings, pip installs instead, unless
    `uv_required`: then that is an error.
    """
    if uv is not None:
        options, environ, untranslated = uv_options(pip_settings(python))
        if untranslated:
            why = (f"uv has no counterpart here for the pip setting(s) {', '.join(untranslated)} (see `pip config "
                   f"list`), so it would not install what pip installs")
            if uv_required:
                raise SetupError(f"{why}. Use `--installer pip`.")
            print(f"Installing with pip: {why}.", flush=True)
            uv = None
    advice = install_advice(uv)
    if uv is None:
        base = [str(python), "-m", "pip", "install", "--progress-bar", "off"]
        environ = None
        tool = "pip"
    else:
        # --compile-bytecode: as pip does, so that the first import of each package is not slowed by compiling it
        base = [str(uv), "pip", "install", "--python", str(python), "--compile-bytecode", *options]
        tool = " ".join(run_captured([str(uv), "--version"], "uv --version").split()[:2])
    name = "pip install" if uv is None else "uv pip install"
    run_captured([*base, "--requirement", REQUIREMENTS], f"{name} --requirement {REQUIREMENTS}", advice, environ)
    can_build = subprocess.run([str(python), "-c", CAN_BUILD], capture_output=True).returncode == 0
    isolation = ["--no-build-isolation"] if can_build else []
    run_captured([*base, "--no-deps", *isolation, "--editable", "."], f"{name} --editable .", advice, environ)
    return tool


def cache_folder() -> Path:
    """Return this book's folder in the user's cache (%LOCALAPPDATA% on Windows, $XDG_CACHE_HOME or ~/.cache)."""
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "dropout-in-depth"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dropout-in-depth"


def bootstrap_uv() -> Path:
    """Return the pinned uv (UV_VERSION), first installing it with pip into a small environment of its own."""
    home = cache_folder() / f"uv-{UV_VERSION}"
    uv = venv_bin(home, "uv")
    if (home / STAMP_NAME).is_file() and uv.is_file():
        return uv
    print(f"Installing uv {UV_VERSION} with pip into {home} ...", flush=True)
    remove_tree(home)
    try:
        create_venv(home)
        run_captured([str(venv_python(home)), "-m", "pip", "install", "--progress-bar", "off", f"uv=={UV_VERSION}"],
                     f"pip install uv=={UV_VERSION}", "`--installer pip` installs the book with pip.")
        (home / STAMP_NAME).write_text(UV_VERSION + "\n", encoding="utf-8")
    except BaseException:
        remove_tree(home)
        raise
    return uv


def choose_uv(installer: str) -> Path | None:
    """Return the uv to install with, or None for pip: `installer` is auto (uv, installed first when not on the PATH;
    pip when that fails), uv (the same, but a failure is an error) or pip."""
    if installer == "pip":
        return None
    found = shutil.which("uv")
    if found:
        return Path(found)
    try:
        return bootstrap_uv()
    except SetupError as error:
        if installer == "uv":
            raise
        print(f"Installing with pip, since uv {UV_VERSION} could not be installed: {str(error).splitlines()[0]}",
              flush=True)
        return None


# --- the environment ------------------------------------------------------------------------------------------------

def venv_state(venv: Path, required: tuple[int, int]) -> str:
    """Return "missing", "usable" (its Python runs and is new enough) or "broken"; refuse a folder that is no venv."""
    if not venv.exists() or (venv.is_dir() and not any(venv.iterdir())):
        return "missing"
    if not (venv / "pyvenv.cfg").is_file():
        raise SetupError(f"{venv} exists but is not a virtual environment (it has no pyvenv.cfg). Move it away or "
                         "delete it, then run the same command again.")
    probe = [str(venv_python(venv)), "-c", "import sys; print(*sys.version_info[:2])"]
    try:
        result = subprocess.run(probe, capture_output=True, text=True)
    except OSError:
        return "broken"
    if result.returncode != 0:
        return "broken"
    return "usable" if tuple(int(part) for part in result.stdout.split()) >= required else "broken"


def ensure_env(venv: Path = VENV, installer: str = "auto") -> Path:
    """Return the Python of the book's environment, first making or repairing it when its stamp is not valid."""
    if stamp_is_valid(venv):
        return venv_python(venv)
    required = required_python()
    state = venv_state(venv, required)
    if state != "usable":
        check_python(sys.version_info, required, sys.executable)
        check_disk(venv.parent)
    uv = choose_uv(installer)
    (venv / STAMP_NAME).unlink(missing_ok=True)
    if state == "broken":
        print(f"Removing {venv}: its Python is missing, broken or older than {dotted(required)}.", flush=True)
        remove_tree(venv)
    created = state != "usable"
    verb = "Creating" if created else "Repairing"
    print(f"{verb} the pinned environment in {venv} with {'uv' if uv else 'pip'} (on a fresh machine: about "
          f"{gigabytes(NEEDED_BYTES)} of disk, and minutes) ...", flush=True)
    start = time.monotonic()
    try:
        if created:
            create_venv(venv)
        tool = install(venv_python(venv), uv, uv_required=installer == "uv")
        write_stamp(venv, tool)
    except BaseException:
        if created:
            remove_tree(venv)
        raise
    print(f"The environment is ready ({tool}, {time.monotonic() - start:.0f} s).", flush=True)
    return venv_python(venv)


# --- the commands ---------------------------------------------------------------------------------------------------

def run_step(command: list[str]) -> None:
    """Run a tool in the book's folder, showing its output; raise StepFailed with its exit code when it fails."""
    print("> " + " ".join(command), flush=True)
    code = subprocess.call(command, cwd=ROOT)
    if code != 0:
        raise StepFailed(code)


def lint(python: Path) -> None:
    """ruff over the Python files (pyproject's rules), then the notebooks' code cells at 88 characters a line."""
    run_step([str(python), "-m", "ruff", "check", "."])
    print("ruff: notebook code cells, 88 characters a line", flush=True)
    run_step([str(python), "-m", "ruff", "check", ".", "--select", "E501", "--line-length", "88",
              "--config", 'include = ["chapters/*.ipynb"]'])


FIND_CHROMIUM = """
from tools.sitecheck import find_chromium
try:
    print(find_chromium())
except FileNotFoundError as error:
    print(error)
    raise SystemExit(3)
"""


def chromium_problem(python: Path) -> str | None:
    """Return None when the browser tests find a Chromium (tools.sitecheck.find_chromium), else why not."""
    result = subprocess.run([str(python), "-c", FIND_CHROMIUM], cwd=ROOT, capture_output=True, text=True)
    if result.returncode == 3:
        return result.stdout.strip()
    if result.returncode != 0:
        raise SetupError(f"Looking for Chromium failed. Its last lines:\n{last_lines(result.stderr)}")
    return None


def is_root() -> bool:
    """Return whether this process runs as root (never on Windows)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def ensure_chromium(python: Path) -> None:
    """Make sure the browser tests have Chromium: install Debian's with apt-get (as root or with sudo) if needed."""
    problem = chromium_problem(python)
    if problem is None:
        return
    if os.environ.get("CHROMIUM", "").strip():
        raise SetupError(f"The browser tests need Chromium: {problem}.")
    sudo = [] if is_root() else ["sudo"] if shutil.which("sudo") else None
    if shutil.which("apt-get") is None or sudo is None:
        why = "no apt-get" if shutil.which("apt-get") is None else "neither root nor sudo"
        raise SetupError(f"The browser tests need Chromium, and this machine has {why} to install Debian's. Install "
                         "Chromium or Chrome, then run the same command again, with CHROMIUM=/path/to/chromium "
                         "when it is not on the PATH as chromium.")
    print("Installing Debian's chromium for the browser tests (apt-get, about a minute) ...", flush=True)
    advice = "Run `apt-get install chromium` as root (it needs Debian's package lists), then run the same again."
    apt = [*sudo, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]
    run_captured([*apt, "update", "-qq"], "apt-get update", advice)
    run_captured([*apt, "install", "-y", "-qq", "chromium"], "apt-get install chromium", advice)
    problem = chromium_problem(python)
    if problem is not None:
        raise SetupError(f"apt-get installed chromium, but the browser tests still find none: {problem}.")


def run_command(command: str, python: Path, pytest_extra: list[str], stages: dict[str, float]) -> None:
    """Run one of COMMANDS (after ensure_env): the same steps as the Makefile target of that name; add each step's
    wall time in seconds to `stages`."""
    steps: list[tuple[str, Callable[[], None]]] = []
    if command == "site":
        steps.append(("site build", lambda: run_step([str(python), "-m", "tools.build_site"])))
    if command in ("lint", "test", "test-fast"):
        steps.append(("lint", lambda: lint(python)))
    if command in ("browser", "test", "test-site"):
        steps.append(("chromium check", lambda: ensure_chromium(python)))
    if command in PYTEST_ARGS:
        steps.append(("pytest", lambda: run_step([str(python), "-m", "pytest", *PYTEST_ARGS[command],
                                                   *pytest_extra])))
    for name, step in steps:
        start = time.monotonic()
        step()
        stages[name] = time.monotonic() - start


def stage_report(stages: dict[str, float]) -> str:
    """One line: each stage's wall time and share of the total."""
    total = sum(stages.values())
    parts = [f"{name} {seconds:.0f} s ({seconds / total:.0%})" for name, seconds in stages.items()] if total else []
    return f"Wall time: {', '.join(parts)}; total {total:.0f} s."


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, make the environment, run the command; print a failure as one paragraph."""
    parser = argparse.ArgumentParser(prog="python -m tools.env", description=__doc__.split("\n\n")[0],
                                     epilog="Arguments after a test command go to pytest, e.g. `test-fast -x`.")
    parser.add_argument("command", nargs="?", default="env", choices=COMMANDS)
    parser.add_argument("--installer", choices=("auto", "uv", "pip"), default="auto",
                        help=f"auto (the default): uv, from the PATH or else uv {UV_VERSION} installed with pip "
                             "into the user's cache; pip when that fails. uv: the same, but a failure stops")
    parser.add_argument("--venv", type=Path, default=VENV, help="where the environment goes (default: .venv)")
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in PYTEST_ARGS:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    stages: dict[str, float] = {}
    try:
        start = time.monotonic()
        python = ensure_env(args.venv.absolute(), args.installer)
        stages["environment"] = time.monotonic() - start
        run_command(args.command, python, extra, stages)
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # a file the set-up could not read, write or remove
        print(f"error: {error}. Check the permissions there, then run the same command again.", file=sys.stderr)
        return 1
    except StepFailed as failed:
        return failed.args[0]
    except KeyboardInterrupt:
        print("Stopped. (An environment whose install was cut short has no stamp: the next run repairs it or makes "
              "it afresh.)", file=sys.stderr)
        return 130
    if args.command != "env":
        print(stage_report(stages), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
