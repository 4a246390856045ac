"""The test tiers: conftest.py's table of placed tests names tests that exist, and pyproject.toml registers every tier.

A renamed test left in the table would silently fall back to `unit` and slow `make test-fast` down; these checks
catch that before anyone has to notice the time.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def root_conftest(request):
    """The root conftest.py as pytest loaded it (tests/conftest.py has the same module name, so ask pytest)."""
    wanted = (ROOT / "conftest.py").resolve()
    (module,) = [plugin for plugin in request.config.pluginmanager.get_plugins()
                 if getattr(plugin, "__file__", None) and Path(plugin.__file__).resolve() == wanted]
    return module


def test_every_tier_is_registered_as_a_marker(root_conftest):
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    registered = {line.split(":")[0].strip() for line in markers["markers"]}
    assert set(root_conftest.TIERS) <= registered, f"register {set(root_conftest.TIERS) - registered} in pyproject.toml"


def test_every_placed_test_exists(root_conftest):
    stale = []
    for key, tier in root_conftest.PLACED.items():
        assert tier in root_conftest.TIERS, f"{key}: {tier!r} is not a tier"
        path, _, name = key.partition("::")
        if not (ROOT / path).is_file():
            stale.append(key)
        elif name:
            tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
            if name not in {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}:
                stale.append(key)
    assert not stale, f"conftest.py's PLACED names tests that no longer exist (renamed?): {stale}"


def test_this_file_is_in_the_fast_tier(request):
    assert request.node.get_closest_marker("unit"), "a test file with no tier marker of its own should be `unit`"
