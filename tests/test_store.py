"""The experiment store: sweeps defined in code, run on every core, stored whole, resumable, checked for staleness.

The runner (tools/experiments.py) is tested on a toy sweep (tests/toy/runs.py) in a scratch results folder; the
book's own stored sweeps are checked in tests/test_stored_results.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

import utils.store as store
from tools import experiments
from utils.store import RESULTS_ENV, StaleResults, Sweep, load_provenance, load_results, table_path

ROOT = Path(__file__).resolve().parent.parent


def toy(**changes) -> Sweep:
    """A toy sweep: 3 settings x 2 seeds of tests.toy.runs:run."""
    fields = dict(name="toy", title="a toy sweep", run="tests.toy.runs:run",
                  grid=({"x": 1}, {"x": 2}, {"x": 3}), seeds=(0, 1), metrics=("value", "label"))
    return Sweep(**(fields | changes))


@pytest.fixture
def results(tmp_path, monkeypatch) -> Path:
    """A scratch results folder that the store reads and writes instead of data/results/."""
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path))
    return tmp_path


def test_a_sweep_is_stored_as_one_row_per_run_with_its_provenance(results):
    sweep = toy()
    made = experiments.build([sweep], workers=2, quiet=True)
    assert made == {"toy": 6}
    table = load_results(sweep)
    assert list(table.columns) == ["x", "seed", "value", "label", "wall_s"]
    assert table[["x", "seed"]].values.tolist() == [[1, 0], [1, 1], [2, 0], [2, 1], [3, 0], [3, 1]]
    assert table["value"].tolist() == [1000.0, 1001.0, 2000.0, 2001.0, 3000.0, 3001.0]
    info = load_provenance(sweep)
    for key in ("commit", "versions", "cpu", "threads_per_run", "workers", "started", "finished", "fingerprint"):
        assert key in info
    assert info["fingerprint"] == sweep.fingerprint() and info["runs"] == 6 and info["workers"] == 2
    assert "numpy" in info["versions"] and "python" in info["versions"]


def test_a_temporary_file_left_by_a_killed_writer_is_removed_by_the_next_build(results):
    sweep = toy()
    experiments.build([sweep], workers=1, quiet=True)
    leftover = results / ".toy.csv.abc123.tmp"
    leftover.write_text("x,seed\n1,")  # what a runner killed inside write_atomic leaves
    experiments.build([sweep], workers=1, quiet=True)
    assert not leftover.exists() and len(load_results(sweep)) == 6


def test_a_second_build_runs_only_what_is_missing(results):
    sweep = toy()
    experiments.build([sweep], workers=1, quiet=True)
    more = toy(seeds=(0, 1, 2))
    assert experiments.build([more], workers=1, quiet=True) == {"toy": 3}
    assert experiments.build([more], workers=1, quiet=True) == {"toy": 0}
    assert len(load_results(more)) == 9


def test_changed_parameters_rerun_the_sweep_and_stale_tables_are_refused(results):
    sweep = toy()
    experiments.build([sweep], workers=1, quiet=True)
    changed = toy(parameters={"offset": 0.5})
    assert changed.fingerprint() != sweep.fingerprint()
    with pytest.raises(StaleResults, match="'toy'.*changed"):
        load_results(changed)
    assert experiments.build([changed], workers=1, quiet=True) == {"toy": 6}
    assert load_results(changed)["value"].iloc[0] == 1000.5


def test_a_change_to_the_code_a_sweep_imports_makes_it_stale(results, tmp_path, monkeypatch):
    package = tmp_path / "code" / "utils_toy"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "helper.py").write_text("def f(x):\n    '''Double.'''\n    return 2 * x\n")
    (package / "runs.py").write_text("from utils_toy.helper import f\n\n\ndef run(s, seed):\n"
                                     "    return {'value': float(f(s['x']) + seed)}\n")
    monkeypatch.setattr(store, "ROOT", tmp_path / "code")
    monkeypatch.setattr(store, "_IMPORTABLE", ("utils", "utils_toy"))
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    sweep = Sweep(name="coded", title="t", run="utils_toy.runs:run", grid=({"x": 1},), seeds=(0, 1),
                  metrics=("value",))
    assert store.utils_imports("utils_toy.runs") == {"utils_toy.runs", "utils_toy.helper"}
    before = sweep.fingerprint()
    (package / "helper.py").write_text("def f(x):\n    '''Double, said differently.'''\n    return 2 * x  # same\n")
    assert sweep.fingerprint() == before  # docstrings, comments: not the code
    (package / "helper.py").write_text("def f(x):\n    return 3 * x\n")
    assert sweep.fingerprint() != before


def test_verify_reproduces_a_stored_row_and_names_the_sweep_when_it_does_not(results):
    sweep = toy()
    experiments.build([sweep], workers=1, quiet=True)
    check = experiments.verify(sweep)
    assert check.ok and check.exact and check.sweep == "toy"
    path = table_path(sweep)
    table = pd.read_csv(path)
    table.loc[:, "value"] += 0.25  # a stored row the code no longer makes
    table.to_csv(path, index=False)
    check = experiments.verify(sweep)
    assert not check.ok and check.sweep == "toy" and "value" in check.differences


def test_the_command_line_verifies_and_reports_stale_sweeps_by_name(results, monkeypatch, capsys):
    sweep = toy()
    experiments.build([sweep], workers=1, quiet=True)
    monkeypatch.setattr(experiments, "SWEEPS", {"toy": sweep})
    assert experiments.main(["--verify"]) == 0
    assert "toy: {'x': " in capsys.readouterr().out
    monkeypatch.setattr(experiments, "SWEEPS", {"toy": toy(parameters={"offset": 1.0})})
    assert experiments.main(["--verify"]) == 1
    out = capsys.readouterr().out
    assert "toy" in out and "changed" in out
    assert experiments.main(["nosuch"]) == 2
    assert "unknown sweep" in capsys.readouterr().err


def test_missing_runs_and_missing_tables_are_clear_errors(results):
    sweep = toy()
    with pytest.raises(FileNotFoundError, match="make experiments SWEEP=toy"):
        load_results(sweep)
    experiments.build([toy(seeds=(0,))], workers=1, quiet=True)
    with pytest.raises(StaleResults, match="3 of its 6 runs are not stored"):
        load_results(sweep)
    assert len(load_results(sweep, complete=False)) == 3


def test_a_bad_sweep_definition_is_refused():
    with pytest.raises(ValueError, match="module:function"):
        toy(run="tests.toy.runs")
    with pytest.raises(ValueError, match="same keys"):
        toy(grid=({"x": 1}, {"y": 2}))
    with pytest.raises(ValueError, match="repeats a setting"):
        toy(grid=({"x": 1}, {"x": 1}))
    with pytest.raises(ValueError, match="seeds repeat"):
        toy(seeds=(0, 0))
    with pytest.raises(ValueError, match="clash"):
        toy(grid=({"value": 1},))
    with pytest.raises(ValueError, match="scale"):
        toy(scale="huge")


def test_a_run_that_returns_other_metrics_is_an_error():
    with pytest.raises(ValueError, match="declares"):
        toy(metrics=("value",)).measure({"x": 1}, 0)


def test_writes_are_whole_or_not_at_all(tmp_path):
    target = tmp_path / "table.csv"
    store.write_atomic(target, "a,b\n1,2\n")
    assert target.read_text() == "a,b\n1,2\n"

    class Boom(Exception):
        pass

    real_fsync = os.fsync

    def failing_fsync(fd):
        raise Boom

    os.fsync = failing_fsync
    try:
        with pytest.raises(Boom):
            store.write_atomic(target, "a,b\n3,4\n")
    finally:
        os.fsync = real_fsync
    assert target.read_text() == "a,b\n1,2\n"  # the old table, whole
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]  # no temporary file left behind


def test_a_killed_build_keeps_its_finished_runs_and_resumes(tmp_path):
    """Kill the runner (and its workers) mid-sweep, twice; each time the table is whole; the third run finishes."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from tools import experiments
        from utils.store import Sweep
        sweep = Sweep(name="slow", title="t", run="tests.toy.runs:run", seeds=tuple(range(4)),
                      grid=tuple({{"x": x, "sleep": 0.15}} for x in range(1, 7)), metrics=("value", "label"))
        print(experiments.build([sweep], workers=2, quiet=True)["slow"], flush=True)
    """)
    env = {**os.environ, RESULTS_ENV: str(tmp_path)}
    table = tmp_path / "slow.csv"
    counts = []
    for _ in range(2):
        process = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=ROOT, start_new_session=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        before = counts[-1] if counts else 0
        while time.monotonic() < deadline:
            if table.is_file() and len(pd.read_csv(table)) >= before + 3:
                break
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        stored = pd.read_csv(table)  # parses: never half written
        assert list(stored.columns) == ["x", "sleep", "seed", "value", "label", "wall_s"]
        assert (stored["value"] == stored["x"] * 1000 + stored["seed"]).all()
        counts.append(len(stored))
    assert counts[0] >= 3 and counts[1] > counts[0]
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) == 24 - counts[1]  # only the runs that were not stored
    assert len(pd.read_csv(table)) == 24
    assert not list(tmp_path.glob(".*.tmp")), "a temporary file was left behind"
    assert json.loads((tmp_path / "slow.json").read_text())["runs"] == 24


@pytest.mark.filterwarnings("ignore::utils.data.DatasetFallbackWarning")  # no full MNIST here: the 5k digits stand in
def test_the_smoke_mode_runs_every_paper_scale_sweep_tiny(capsys):
    assert experiments.main(["--scale", "paper", "--smoke"]) == 0
    out = capsys.readouterr().out
    for name in ("table2", "fig9", "fig10", "fig11"):
        assert f"{name}: {{" in out


def test_the_listing_names_every_sweep(capsys):
    assert experiments.main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in experiments.SWEEPS:
        assert name in out


def test_paper_scale_sweeps_follow_the_papers_stated_schedule():
    from utils.sweeps import PAPER_SWEEPS

    table2 = PAPER_SWEEPS["table2"].parameters
    assert table2["methods"]["dropout"] == {"drop_rate": 0.5, "input_drop_rate": 0.2}
    assert table2["methods"]["dropout + max-norm"]["max_norm"] == 2.0
    assert table2["momentum_end"] == 0.95 and table2["layers"] == 3 and table2["width"] == 1024
    updates = table2["epochs"] * -(-54_000 // table2["batch_size"])
    assert 0.95e6 < updates < 1.05e6  # about a million weight updates
    assert all(sweep.scale == "paper" for sweep in PAPER_SWEEPS.values())
    assert dataclasses.replace(PAPER_SWEEPS["table2"], scale="laptop").fingerprint() != ""
