"""tools/env.py: the environment's set-up without make. Unit tests install nothing; the slow test makes a real,
tiny environment offline, from a wheel it builds itself."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tools import env
from tools.toc import ROOT

MACHINE_LISTING = """\
:env:.cert='/etc/ssl/certs/ca-certificates.crt'
:env:.default-timeout='180'
:env:.disable-pip-version-check='1'
:env:.find-links='/opt/wheels'
global.cert='/etc/ssl/certs/ca-certificates.crt'
global.constraint='/etc/xdg/pip/constraints.txt'
global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'
global.find-links='/srv/overridden'
"""


# --- pip's settings, for uv -----------------------------------------------------------------------------------------

def test_pip_config_environment_beats_install_beats_global():
    listing = MACHINE_LISTING + "install.index-url='https://mirror.example/simple'\nfreeze.index-url='ignored'\n"
    settings = env.parse_pip_config(listing)
    assert settings["find-links"] == "/opt/wheels"  # PIP_FIND_LINKS wins over the config file
    assert settings["index-url"] == "https://mirror.example/simple"  # [install], not [freeze]
    assert settings["extra-index-url"] == "file:///opt/pypi/simple file:///opt/pypi-more/simple"
    assert env.parse_pip_config("garbage\n\nglobal.no_index=true\n") == {"no-index": "true"}


def test_uv_options_follow_several_indexes_like_pip():
    options, environ, untranslated = env.uv_options(env.parse_pip_config(MACHINE_LISTING))
    assert options == ["--constraint", "/etc/xdg/pip/constraints.txt",
                       "--extra-index-url", "file:///opt/pypi/simple",
                       "--extra-index-url", "file:///opt/pypi-more/simple",
                       "--find-links", "/opt/wheels", "--index-strategy", "unsafe-best-match"]
    assert environ == {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt", "UV_HTTP_TIMEOUT": "180"}
    assert untranslated == []


def test_uv_options_for_one_index_and_for_no_index():
    assert env.uv_options({"index-url": " https://mirror.example/simple "}) == (
        ["--index-url", "https://mirror.example/simple"], {}, [])
    options, _, _ = env.uv_options({"no-index": "1", "find-links": "/wheels", "trusted-host": "a b"})
    assert options == ["--find-links", "/wheels", "--no-index", "--allow-insecure-host", "a",
                       "--allow-insecure-host", "b"]
    assert env.uv_options({"no-index": "false"}) == ([], {}, [])


def test_pip_settings_uv_cannot_follow_are_named():
    _, _, untranslated = env.uv_options({"pre": "1", "only-binary": ":all:", "progress-bar": "off", "quiet": "1"})
    assert untranslated == ["only-binary", "pre"]


def test_untranslatable_settings_mean_pip(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(env, "pip_settings", lambda python: {"prefer-binary": "1"})
    with pytest.raises(env.SetupError, match=r"prefer-binary.*--installer pip"):
        env.install(tmp_path / "python", uv=tmp_path / "uv", uv_required=True)
    commands: list[list[str]] = []
    monkeypatch.setattr(env, "run_captured", lambda command, *args: commands.append(command))
    monkeypatch.setattr(env.subprocess, "run", lambda *args, **kwargs: subprocess.CompletedProcess(args, 0))
    assert env.install(tmp_path / "python", uv=tmp_path / "uv") == "pip"
    assert "Installing with pip: uv has no counterpart here for the pip setting(s) prefer-binary" in (
        capsys.readouterr().out)
    assert [command[1:4] for command in commands] == [["-m", "pip", "install"]] * 2


# --- paths and the stamp --------------------------------------------------------------------------------------------

def test_windows_and_posix_paths():
    venv = Path("book") / ".venv"
    assert env.venv_python(venv, windows=True) == venv / "Scripts" / "python.exe"
    assert env.venv_bin(venv, "uv", windows=True) == venv / "Scripts" / "uv.exe"
    assert env.venv_python(venv, windows=False) == venv / "bin" / "python"


@pytest.fixture
def book(tmp_path, monkeypatch):
    """A book folder with its two stamped files, and a fake environment with a Python file in it."""
    root = tmp_path / "book"
    root.mkdir()
    (root / "requirements.txt").write_text("numpy==2.4.6\n")
    (root / "pyproject.toml").write_text('[project]\nrequires-python = ">=3.11"\n')
    monkeypatch.setattr(env, "ROOT", root)
    return root


def fake_venv(venv: Path) -> None:
    """Make `venv` look like a virtual environment: pyvenv.cfg and a Python file."""
    python = env.venv_python(venv)
    python.parent.mkdir(parents=True)
    python.write_text("")
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")


def test_stamp_missing_valid_stale(book):
    venv = book / ".venv"
    fake_venv(venv)
    assert not env.stamp_is_valid(venv)  # missing
    env.write_stamp(venv, "pip")
    assert env.stamp_is_valid(venv)
    assert not (venv / (env.STAMP_NAME + ".tmp")).exists()
    (book / "requirements.txt").write_text("numpy==2.4.7\n")
    assert not env.stamp_is_valid(venv)  # a changed pin
    env.write_stamp(venv, "pip")
    (book / "pyproject.toml").write_text('[project]\nrequires-python = ">=3.12"\n')
    assert not env.stamp_is_valid(venv)


def test_stamp_without_python_or_unreadable_is_not_valid(book):
    venv = book / ".venv"
    fake_venv(venv)
    env.write_stamp(venv, "pip")
    env.venv_python(venv).unlink()
    assert not env.stamp_is_valid(venv)
    fake_venv(book / "other")
    (book / "other" / env.STAMP_NAME).write_text("")  # make's old, empty stamp
    assert not env.stamp_is_valid(book / "other")


def test_required_python_is_read_from_pyproject(book):
    assert env.required_python() == (3, 11)
    (book / "pyproject.toml").write_text("[project]\n")
    with pytest.raises(env.SetupError, match="requires-python"):
        env.required_python()


# --- the messages ---------------------------------------------------------------------------------------------------

def test_old_python_says_which_to_install_and_how_to_use_it():
    env.check_python((3, 11, 0), (3, 11), "python3")
    env.check_python((3, 13, 1), (3, 11), "python3")
    with pytest.raises(env.SetupError) as raised:
        env.check_python((3, 9, 6), (3, 11), "/usr/bin/python3")
    message = str(raised.value)
    assert "\n" not in message
    for part in ("Python 3.11 or newer", "/usr/bin/python3 is Python 3.9.6", "python3.11 -m tools.env",
                 "py -3.11 -m tools.env", "make PYTHON=python3.11"):
        assert part in message


def test_little_disk_says_how_much_is_needed_and_free(tmp_path, monkeypatch):
    env.check_disk(tmp_path, needed=10**9, free=2 * 10**9)
    with pytest.raises(env.SetupError) as raised:
        env.check_disk(tmp_path, needed=3 * 10**9, free=int(1.2e9))
    assert "about 3.0 GB of free disk space" in str(raised.value)
    assert "only 1.2 GB is free" in str(raised.value) and "Free at least 1.8 GB" in str(raised.value)
    monkeypatch.setattr(env.shutil, "disk_usage", lambda path: type("Usage", (), {"free": 10**8})())
    with pytest.raises(env.SetupError, match="only 0.1 GB"):
        env.check_disk(tmp_path)


def test_failed_command_shows_its_last_lines_and_what_to_try():
    script = "import sys\nfor i in range(40): print('line', i)\nsys.exit(7)"
    with pytest.raises(env.SetupError) as raised:
        env.run_captured([sys.executable, "-c", script], "the installer", "What to try: again.")
    message = str(raised.value)
    assert message.startswith("the installer failed (exit code 7)")
    assert "line 39" in message and "line 25" in message and "line 24" not in message
    assert message.endswith("What to try: again.")
    with pytest.raises(env.SetupError, match="Could not start"):
        env.run_captured(["/no/such/installer"], "the installer")


def test_main_prints_one_message_and_no_traceback(monkeypatch, capsys):
    def fail(*args):
        raise env.SetupError("The book needs Python 3.11 or newer.")

    monkeypatch.setattr(env, "ensure_env", fail)
    assert env.main([]) == 1
    error = capsys.readouterr().err
    assert error == "error: The book needs Python 3.11 or newer.\n"
    with pytest.raises(SystemExit):
        env.main(["site", "-x"])  # pytest's arguments only after a test command


def test_uv_comes_from_the_path_or_the_bootstrap_and_pip_is_the_fallback(monkeypatch, capsys):
    monkeypatch.setattr(env.shutil, "which", lambda name: "/usr/local/bin/uv")
    assert env.choose_uv("auto") == env.choose_uv("uv") == Path("/usr/local/bin/uv")
    assert env.choose_uv("pip") is None
    monkeypatch.setattr(env.shutil, "which", lambda name: None)
    monkeypatch.setattr(env, "bootstrap_uv", lambda: Path("/cache/uv"))
    assert env.choose_uv("auto") == env.choose_uv("uv") == Path("/cache/uv")

    def unreachable():
        raise env.SetupError(f"`pip install uv=={env.UV_VERSION}` failed.\nNo matching distribution")

    monkeypatch.setattr(env, "bootstrap_uv", unreachable)
    assert env.choose_uv("auto") is None  # pip installs instead, and says why in one line
    assert capsys.readouterr().out == (f"Installing with pip, since uv {env.UV_VERSION} could not be installed: "
                                       f"`pip install uv=={env.UV_VERSION}` failed.\n")
    with pytest.raises(env.SetupError, match="No matching distribution"):
        env.choose_uv("uv")


def test_no_chromium_and_no_apt_get_says_what_to_do(monkeypatch):
    monkeypatch.setattr(env, "chromium_problem", lambda python: "no Chromium found")
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.setattr(env.shutil, "which", lambda name: None)
    with pytest.raises(env.SetupError, match="no apt-get.*CHROMIUM=/path/to/chromium"):
        env.ensure_chromium(Path("python"))
    monkeypatch.setenv("CHROMIUM", "/nowhere/chrome")
    with pytest.raises(env.SetupError, match="The browser tests need Chromium: no Chromium found"):
        env.ensure_chromium(Path("python"))


def test_missing_chromium_is_installed_with_apt_get_through_sudo(monkeypatch):
    answers = iter(["no Chromium found", None])
    monkeypatch.setattr(env, "chromium_problem", lambda python: next(answers))
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.setattr(env.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(env, "is_root", lambda: False)
    commands: list[str] = []
    monkeypatch.setattr(env, "run_captured", lambda command, what, advice: commands.append(" ".join(command)))
    env.ensure_chromium(Path("python"))
    assert commands == ["sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq",
                        "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium"]


# --- no half-made environment ---------------------------------------------------------------------------------------

@pytest.fixture
def installer(book, monkeypatch):
    """Fake venv creation and install: record the calls; `installer.fail` makes the install raise it."""
    class Installer:
        fail: BaseException | None = None
        calls: list[str] = []

    def create(venv):
        Installer.calls.append("create")
        fake_venv(venv)

    def install(python, uv, uv_required=False):
        Installer.calls.append("install")
        if Installer.fail:
            raise Installer.fail
        return "pip"

    Installer.calls = []
    monkeypatch.setattr(env, "create_venv", create)
    monkeypatch.setattr(env, "install", install)
    monkeypatch.setattr(env, "check_disk", lambda folder: None)
    return Installer


def test_installer_failure_removes_the_environment_it_made(book, installer):
    installer.fail = env.SetupError("pip install failed")
    venv = book / ".venv"
    with pytest.raises(env.SetupError):
        env.ensure_env(venv, "pip")
    assert not venv.exists()
    installer.fail = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        env.ensure_env(venv, "pip")
    assert not venv.exists()


def test_failed_repair_keeps_the_environment_but_not_its_stamp(book, installer, monkeypatch):
    venv = book / ".venv"
    fake_venv(venv)
    (venv / env.STAMP_NAME).write_text('{"hashes": {}}')  # stale: a pin changed since
    monkeypatch.setattr(env, "venv_state", lambda venv, required: "usable")
    installer.fail = env.SetupError("pip install failed")
    with pytest.raises(env.SetupError):
        env.ensure_env(venv, "pip")
    assert venv.exists() and not (venv / env.STAMP_NAME).exists()
    installer.fail = None
    assert env.ensure_env(venv, "pip") == env.venv_python(venv)
    assert installer.calls == ["install", "install"] and env.stamp_is_valid(venv)


def test_valid_stamp_is_trusted_and_broken_environment_is_made_afresh(book, installer):
    venv = book / ".venv"
    fake_venv(venv)  # its "python" is an empty file: it does not run
    (venv / "left-over").write_text("")
    assert env.venv_state(venv, (3, 11)) == "broken"
    env.ensure_env(venv, "pip")
    assert installer.calls == ["create", "install"] and env.stamp_is_valid(venv)
    assert not (venv / "left-over").exists()
    env.ensure_env(venv, "pip")
    assert installer.calls == ["create", "install"]  # nothing ran the second time


def test_a_folder_that_is_no_environment_is_left_alone(book, installer):
    venv = book / ".venv"
    venv.mkdir()
    (venv / "notes.txt").write_text("mine")
    with pytest.raises(env.SetupError, match="not a virtual environment"):
        env.ensure_env(venv, "pip")
    assert (venv / "notes.txt").read_text() == "mine" and installer.calls == []


def test_old_python_stops_before_anything_is_made(book, installer, monkeypatch):
    monkeypatch.setattr(env, "sys", SimpleNamespace(version_info=(3, 10, 2), executable="/usr/bin/python3.10"))
    with pytest.raises(env.SetupError, match="needs Python 3.11"):
        env.ensure_env(book / ".venv", "pip")
    assert installer.calls == [] and not (book / ".venv").exists()


# --- one implementation ---------------------------------------------------------------------------------------------

def test_make_targets_call_tools_env():
    makefile = (ROOT / "Makefile").read_text()
    for target in env.COMMANDS:
        recipe = re.search(rf"^{re.escape(target)}:\n\t(.+)$", makefile, re.MULTILINE)
        assert recipe, f"the Makefile has no target {target}"
        assert recipe.group(1).strip() == "$(BOOKENV)" + ("" if target == "env" else f" {target}")
    assert re.search(r"^BOOKENV\s*:= \$\(PYTHON\) -m tools\.env", makefile, re.MULTILINE)


def test_commands_run_the_steps_of_their_make_targets(monkeypatch):
    steps: list[str] = []
    monkeypatch.setattr(env, "run_step", lambda command: steps.append(" ".join(command[1:])))
    monkeypatch.setattr(env, "ensure_chromium", lambda python: steps.append("chromium"))
    stages: dict[str, float] = {}
    env.run_command("test", Path("py"), ["-x"], stages)
    assert steps == ["-m ruff check .", "-m ruff check . --select E501 --line-length 88 --config "
                     'include = ["chapters/*.ipynb"]', "chromium", "-m pytest -n auto -x"]
    assert list(stages) == ["lint", "chromium check", "pytest"]
    steps.clear()
    env.run_command("test-site", Path("py"), [], {})
    env.run_command("site", Path("py"), [], {})
    env.run_command("env", Path("py"), [], {})
    assert steps == ["chromium", "-m pytest tests -m site", "-m tools.build_site"]


def test_the_stage_report_gives_each_stage_its_share():
    line = env.stage_report({"environment": 60.0, "lint": 5.0, "pytest": 135.0})
    assert line == "Wall time: environment 60 s (30%), lint 5 s (2%), pytest 135 s (68%); total 200 s."


def test_pytest_arguments_are_one_constant():
    assert set(env.PYTEST_ARGS) <= set(env.COMMANDS)
    assert env.PYTEST_ARGS["test-fast"][:3] == ("tests", "-m", "unit")


# --- a real environment ---------------------------------------------------------------------------------------------

# A build backend of a few lines, so that the tiny book's editable install needs neither setuptools nor a download.
# write_wheel also makes the tiny book's one dependency.
BACKEND = '''
import base64, hashlib, zipfile
from pathlib import Path


def write_wheel(folder, name, version, files):
    info = f"{name}-{version}.dist-info"
    files = {**files, f"{info}/METADATA": f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\\nGenerator: test_env\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\\n".join([*record, f"{info}/RECORD,,"]) + "\\n"
    wheel = f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(Path(folder) / wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return write_wheel(wheel_directory, "tinybook", "0.1", {"tinybook.pth": str(Path.cwd()) + "\\n"})
'''


@pytest.mark.slow
def test_a_real_environment_offline(tmp_path, monkeypatch):
    root = tmp_path / "book"
    (root / "tinybook").mkdir(parents=True)
    (root / "tinybook" / "__init__.py").write_text("")
    (root / "tinybuild.py").write_text(BACKEND)
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "tinybuild"\nbackend-path = ["."]\n\n'
        '[project]\nname = "tinybook"\nversion = "0.1"\nrequires-python = ">=3.11"\n')
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    write_wheel = runpy.run_path(str(root / "tinybuild.py"))["write_wheel"]
    write_wheel(wheels, "tinydep", "1.0", {"tinydep.py": "VERSION = '1.0'\n"})
    (root / "requirements.txt").write_text(f"--no-index\n--find-links {wheels}\ntinydep==1.0\n")
    monkeypatch.setattr(env, "ROOT", root)
    venv = tmp_path / "venv"
    python = env.ensure_env(venv, "pip")
    assert env.stamp_is_valid(venv)
    check = subprocess.run([str(python), "-c", "import tinybook, tinydep; print(tinydep.VERSION)"],
                           cwd=tmp_path, capture_output=True, text=True)
    assert check.stdout.strip() == "1.0", check.stderr
    (root / "requirements.txt").write_text(f"--no-index\n--find-links {wheels}\ntinydep==2.0\n")
    with pytest.raises(env.SetupError, match="(?s)pip install --requirement.*tinydep==2.0.*What to try"):
        env.ensure_env(venv, "pip")  # a repair that fails: no such version
    assert venv.exists() and not (venv / env.STAMP_NAME).exists()
    fresh = tmp_path / "fresh"
    with pytest.raises(env.SetupError):
        env.ensure_env(fresh, "pip")
    assert not fresh.exists()
