"""`import utils` sets nothing and imports no framework; `utils.setup` sets the environment the outputs depend on;
`book_pins` reads the pins in a checkout and in an installed copy."""

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from utils import environment
from utils.environment import DEFAULTS

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str, **preset: str) -> str:
    env = {key: value for key, value in os.environ.items() if key not in DEFAULTS} | preset
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _environment_after(statement: str, **preset: str) -> dict[str, str | None]:
    code = f"import os, utils; {statement}; print(repr({{k: os.environ.get(k) for k in {sorted(DEFAULTS)!r}}}))"
    return ast.literal_eval(_run(code, **preset).strip().splitlines()[-1])


def test_import_utils_sets_nothing():
    assert _environment_after("pass") == dict.fromkeys(DEFAULTS)


def test_setup_sets_the_defaults():
    assert _environment_after("utils.setup(seed=0)") == DEFAULTS


def test_a_value_the_user_set_wins():
    assert _environment_after("utils.setup(seed=0)", TF_NUM_INTRAOP_THREADS="4")["TF_NUM_INTRAOP_THREADS"] == "4"


def test_setup_refuses_keras_imported_first_on_another_backend(tmp_path):
    (tmp_path / "keras.json").write_text('{"backend": "torch"}')
    code = ("import keras, utils\n"
            "try:\n    utils.setup(seed=0)\nexcept RuntimeError as error:\n    print('refused:', error)")
    assert "refused: Keras was imported before utils.setup()" in _run(code, KERAS_HOME=str(tmp_path))


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True])
def test_setup_rejects_a_bad_seed(seed):
    import utils

    with pytest.raises((TypeError, ValueError), match="seed"):
        utils.setup(seed=seed)


def test_setup_keeps_tensorflows_start_up_notes_out_of_stderr():
    result = subprocess.run([sys.executable, "-c", "import utils; utils.setup(seed=0); import keras"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stderr == "", result.stderr[-2000:]


def test_book_pins_in_a_checkout_are_requirements_txt():
    text = (environment.ROOT / "requirements.txt").read_text(encoding="utf-8")
    pins = environment.book_pins()
    assert pins["numpy"] == re.search(r"^numpy==(\S+)", text, re.M)[1]
    assert pins["pytest-xdist"] == re.search(r"^pytest-xdist==([^\s#]+)", text, re.M)[1]  # a comment after the pin
    assert len(pins) == len(re.findall(r"^[\w.-]+==", text, re.M))


def test_book_pins_of_an_installed_copy_come_from_its_metadata(monkeypatch, tmp_path):
    """pip install without -e (Colab) leaves no requirements.txt: pyproject.toml puts the pins in the extra `pins`."""
    requires = ['numpy==2.4.6; extra == "pins"', "other==1.0", 'Py_Yaml==6.0.3; extra == "pins"',
                'tensorflow-cpu==2.21.0; (sys_platform == "linux") and extra == "pins"']
    monkeypatch.setattr(environment, "ROOT", tmp_path)
    monkeypatch.setattr(importlib.metadata, "requires", lambda name: requires)
    assert environment.book_pins() == {"numpy": "2.4.6", "tensorflow-cpu": "2.21.0", "py-yaml": "6.0.3"}


def test_book_pins_say_what_to_do_without_either_source(monkeypatch, tmp_path):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(environment, "ROOT", tmp_path)
    monkeypatch.setattr(importlib.metadata, "requires", missing)
    with pytest.raises(FileNotFoundError, match="install its package"):
        environment.book_pins()
    monkeypatch.setattr(importlib.metadata, "requires", lambda name: ["numpy>=2"])
    with pytest.raises(ValueError, match="no exact pins"):
        environment.book_pins()
