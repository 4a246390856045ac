"""conftest.py replaces nbval's private `IPyNbCell.compare_outputs` to compare figures with a tolerance. nbval does
not promise that method, so these tests fail loudly, and say what to do, when an nbval upgrade could break the patch
silently: a version other than the pinned one, the method gone or its parameters changed, or nbval no longer
calling it."""

from __future__ import annotations

import importlib.metadata
import inspect
import re
from pathlib import Path

from nbval import plugin

ROOT = Path(__file__).resolve().parents[1]
# What conftest.py's `_compare_outputs_and_figures` relies on: called as compare_outputs(self, test, ref, skip), with
# skip_compare optional (nbval's own call passes two arguments), and falling back to the file's skip_compare.
EXPECTED_SIGNATURE = "(self, test, ref, skip_compare=None)"
WHAT_TO_DO = ("conftest.py patches nbval's private IPyNbCell.compare_outputs. Read the installed nbval's "
              "nbval/plugin.py (IPyNbCell.compare_outputs and IPyNbCell.runtest), adapt "
              "_compare_outputs_and_figures in conftest.py to it, check that a changed figure still fails "
              "(tests/test_nbimages.py, and a notebook with an altered figure under `make test`), then update "
              "this test and the nbval pin in requirements.txt together.")


def _pinned_nbval() -> str:
    pins = re.findall(r"^nbval==([^\s;#]+)", (ROOT / "requirements.txt").read_text(encoding="utf-8"), re.MULTILINE)
    assert len(pins) == 1, f"requirements.txt should pin nbval exactly once (nbval==X.Y.Z), found {pins}"
    return pins[0]


def _original_compare_outputs():
    """nbval's own method: conftest.py keeps it as `_compare_text_outputs` after installing its replacement."""
    current = plugin.IPyNbCell.__dict__.get("compare_outputs")
    assert current is not None, f"nbval.plugin.IPyNbCell has no compare_outputs method any more. {WHAT_TO_DO}"
    return current.__globals__.get("_compare_text_outputs", current), current


def _signature(function) -> str:
    """The parameters as written in the source, without annotations: "(self, test, ref, skip_compare=None)"."""
    parameters = [parameter.replace(annotation=inspect.Parameter.empty)
                  for parameter in inspect.signature(function).parameters.values()]
    return str(inspect.Signature(parameters))


def test_installed_nbval_is_the_pinned_version():
    installed, pinned = importlib.metadata.version("nbval"), _pinned_nbval()
    assert installed == pinned, (
        f"nbval {installed} is installed but requirements.txt pins {pinned}. If the environment is stale, run "
        f"`make env`. If you are upgrading nbval: {WHAT_TO_DO}")


def test_conftest_patch_is_installed_and_wraps_nbvals_method():
    original, current = _original_compare_outputs()
    assert current.__name__ == "_compare_outputs_and_figures", (
        "IPyNbCell.compare_outputs is not conftest.py's _compare_outputs_and_figures: figures are compared "
        f"without tolerance, or not at all. {WHAT_TO_DO}")
    assert original is not current and original.__module__ == "nbval.plugin", (
        f"conftest.py no longer keeps nbval's own compare_outputs as _compare_text_outputs. {WHAT_TO_DO}")


def test_nbvals_method_has_the_parameters_the_patch_relies_on():
    original, current = _original_compare_outputs()
    assert _signature(original) == EXPECTED_SIGNATURE, (
        f"nbval's IPyNbCell.compare_outputs is now {_signature(original)}, not {EXPECTED_SIGNATURE}. {WHAT_TO_DO}")
    assert _signature(current) == EXPECTED_SIGNATURE, (
        f"conftest.py's _compare_outputs_and_figures is {_signature(current)}; it must take what nbval's method "
        f"takes, {EXPECTED_SIGNATURE}")


def test_nbval_still_calls_the_method_and_keeps_what_the_patch_uses():
    """The patch is dead code if runtest stops calling compare_outputs; it reads skip_compare from the notebook
    and appends to comparison_traceback, which runtest reports."""
    runtest = inspect.getsource(plugin.IPyNbCell.runtest)
    original = inspect.getsource(_original_compare_outputs()[0])
    file_init = inspect.getsource(plugin.IPyNbFile.__init__)
    problems = [what for what, present in (
        ("IPyNbCell.runtest calls self.compare_outputs(", "self.compare_outputs(" in runtest),
        ("IPyNbCell.runtest reports self.comparison_traceback", "self.comparison_traceback" in runtest),
        ("compare_outputs resets self.comparison_traceback to a list", "self.comparison_traceback = []" in original),
        ("IPyNbFile sets self.skip_compare", "self.skip_compare" in file_init),
    ) if not present]
    assert not problems, f"nbval changed what conftest.py's patch relies on: {problems}. {WHAT_TO_DO}"
