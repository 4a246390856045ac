"""The book's stored sweeps (data/results/) still match the code: fresh fingerprints, and a sample of rows re-run.

For every sweep in utils.sweeps.SWEEPS: the table is complete, its fingerprint is the code's (else the test names the
sweep and says to run `make experiments SWEEP=<name>`), and its quickest stored run, re-run here, gives the stored
numbers (exactly on the CPU model that built the store, within the seed spread on another). The last two tests make
both checks fail on purpose, on a copy of a real table.
"""

from __future__ import annotations

import dataclasses
import shutil

import pandas as pd
import pytest

from tools import experiments
from utils.store import RESULTS_ENV, StaleResults, load_results, provenance_path, table_path
from utils.sweeps import SWEEPS


@pytest.mark.parametrize("name", list(SWEEPS))
def test_the_stored_table_is_complete_and_made_by_the_current_code(name):
    table = load_results(SWEEPS[name])  # raises StaleResults naming the sweep when the code changed
    assert len(table) == len(SWEEPS[name].grid) * len(SWEEPS[name].seeds)


@pytest.mark.parametrize("name", list(SWEEPS))
def test_a_stored_run_reproduces_when_run_again(name):
    check = experiments.verify(SWEEPS[name])
    assert check.ok, (f"sweep {name!r}: re-running {check.setting} seed {check.seed} does not reproduce the stored "
                      f"row: {check.differences} (stored, now). Run `make experiments SWEEP={name}` again.")


@pytest.fixture
def copied_store(tmp_path, monkeypatch):
    """A copy of the fig11 table and provenance in a scratch results folder that the store then reads."""
    sweep = SWEEPS["fig11"]
    for path in (table_path(sweep), provenance_path(sweep)):
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path))
    return sweep


@pytest.mark.parametrize("cpu", ["the store's", "another"])
def test_a_tampered_stored_row_fails_the_check_and_names_its_sweep(copied_store, monkeypatch, cpu):
    sweep = copied_store
    table = pd.read_csv(table_path(sweep))
    row = experiments.sample_row(sweep, table)
    if cpu == "the store's":  # compared bit for bit: five test digits more than were measured is caught
        monkeypatch.setattr(experiments, "cpu_model", lambda: experiments.load_provenance(sweep)["cpu"])
        table.loc[table["seed"] == row["seed"], "scaling_error"] += 0.01
    else:  # compared with the setting's spread over seeds: a whole setting moved by 20 points is caught
        monkeypatch.setattr(experiments, "cpu_model", lambda: "another CPU")
        table.loc[table["net"] == row["net"], "scaling_error"] += 0.2
    table.to_csv(table_path(sweep), index=False)
    check = experiments.verify(sweep)
    assert check.exact == (cpu == "the store's")
    assert not check.ok and check.sweep == "fig11" and "scaling_error" in check.differences


def test_results_of_changed_code_are_refused_and_name_their_sweep(copied_store):
    changed = dataclasses.replace(copied_store, parameters={**copied_store.parameters, "epochs": 21})
    with pytest.raises(StaleResults, match="sweep 'fig11': the code its results depend on has changed"):
        load_results(changed)
    with pytest.raises(StaleResults, match="make experiments SWEEP=fig11"):
        experiments.verify(changed)
