"""`import utils` sets the environment the book's outputs depend on, before any framework is imported."""

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = {"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_WAIT_POLICY": "PASSIVE",
            "TF_NUM_INTRAOP_THREADS": "1"}


def _environment_after_import(**preset: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in DEFAULTS} | preset
    code = f"import os, utils; print(repr({{k: os.environ.get(k) for k in {sorted(DEFAULTS)!r}}}))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60, check=True)
    return ast.literal_eval(result.stdout)


def test_import_utils_sets_the_defaults():
    assert _environment_after_import() == DEFAULTS


def test_a_value_the_user_set_wins():
    assert _environment_after_import(TF_NUM_INTRAOP_THREADS="4")["TF_NUM_INTRAOP_THREADS"] == "4"
