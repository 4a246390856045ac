"""The paper-reproduction helpers: the scale switch, the configurations, the reference numbers, and every experiment's
code path run end to end at a tiny size (the paper scale included, through the same tool a reader runs)."""

import warnings

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from tools.paper_scale import main as paper_scale_main
from utils.chapters.paper import (
    PAPER_FINDINGS,
    PAPER_TABLE2,
    RATE_MODES,
    SCALE_CONFIGS,
    SCALE_ENV,
    SMOKE,
    Method,
    get_scale,
    load_data,
    pick_device,
    plot_table2,
    rate_sweep,
    rate_width,
    run_table2,
    scale_name,
    size_epochs,
    size_sweep,
    subset,
    sweep_table,
    table2_summary,
    torch_threads,
    write_table,
)
from utils.data import DatasetFallbackWarning, find_mnist, load_dataset

matplotlib.use("Agg")


@pytest.fixture
def no_scale_env(monkeypatch):
    monkeypatch.delenv(SCALE_ENV, raising=False)


def test_the_default_scale_is_the_laptop_one(no_scale_env):
    assert scale_name() == "laptop"
    scale = get_scale()
    assert scale.name == "laptop" and scale.dataset == "mnist5k" and scale.device == "cpu"
    assert pick_device(scale) == torch.device("cpu")


@pytest.mark.parametrize("value, expected", [("paper", "paper"), (" Paper ", "paper"), ("laptop", "laptop"),
                                             ("", "laptop")])
def test_the_environment_variable_picks_the_scale(monkeypatch, value, expected):
    monkeypatch.setenv(SCALE_ENV, value)
    assert scale_name() == expected
    assert get_scale().name == expected


def test_an_argument_overrides_the_environment(monkeypatch):
    monkeypatch.setenv(SCALE_ENV, "paper")
    assert get_scale("laptop").name == "laptop"


@pytest.mark.parametrize("value", ["full", "papers", "gpu", "smoke"])
def test_an_unknown_scale_is_refused_with_the_allowed_values(monkeypatch, value):
    monkeypatch.setenv(SCALE_ENV, value)
    with pytest.raises(ValueError, match="allowed: laptop, paper"):
        scale_name()
    with pytest.raises(ValueError, match=SCALE_ENV):
        get_scale()


def test_a_scale_that_is_not_a_string_is_refused():
    with pytest.raises(TypeError):
        scale_name(3)


def test_the_paper_scale_is_the_papers_network_on_full_mnist():
    paper = get_scale("paper")
    assert paper.hidden == (1024, 1024, 1024) and paper.dataset == "mnist" and paper.device == "auto"
    assert len(paper.seeds) >= 3 and len(get_scale("laptop").seeds) >= 3
    assert max(paper.sizes) <= 54_000  # full MNIST's training split


def test_overrides_replace_fields_and_unknown_ones_are_refused():
    smoke = get_scale("paper", **SMOKE)
    assert smoke.hidden == (8,) and smoke.dataset == "mnist" and smoke.name == "paper"
    assert SCALE_CONFIGS["paper"].hidden == (1024, 1024, 1024)  # the stored configuration is untouched
    with pytest.raises(ValueError, match="unknown Scale field"):
        get_scale("laptop", widths=(3,))


def test_auto_picks_the_gpu_only_when_there_is_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert pick_device("auto") == torch.device("cuda:0")
    assert pick_device("cpu") == torch.device("cpu")  # the laptop scale stays on the CPU even with a GPU
    with pytest.raises(ValueError, match="'cpu', 'auto'"):
        pick_device("gpu")


def test_the_papers_numbers_are_those_of_its_table_2():
    assert {name: ref.error_percent for name, ref in PAPER_TABLE2.items()} == {
        "no dropout": 1.60, "dropout": 1.25, "dropout + max-norm": 1.06}
    assert all(ref.source == "Table 2" for ref in PAPER_TABLE2.values())
    assert [method.name for method in get_scale("laptop").methods()] == list(PAPER_TABLE2)
    assert {source for _, source in PAPER_FINDINGS.values()} == {"Fig. 9a", "Fig. 9b", "Fig. 10"}


def test_methods_set_the_papers_rates_and_the_constraint():
    plain, dropout, constrained = get_scale("laptop").methods()
    assert plain.train_kwargs() == {"drop_rate": 0.0, "input_drop_rate": 0.0, "max_norm": None}
    assert dropout.train_kwargs() == {"drop_rate": 0.5, "input_drop_rate": 0.2, "max_norm": None}
    assert constrained.max_norm == get_scale("laptop").max_norm
    assert Method("x").max_norm is None


def test_rate_widths_hold_the_width_or_the_kept_units():
    scale = get_scale("laptop", rate_width=64)
    assert [rate_width(scale, r, "fixed width") for r in (0.0, 0.5, 0.8)] == [64, 64, 64]
    assert [rate_width(scale, r, "fixed kept units") for r in (0.0, 0.5, 0.8)] == [64, 128, 320]
    with pytest.raises(ValueError, match="mode"):
        rate_width(scale, 0.5, "fixed n")
    with pytest.raises(ValueError, match="drop rate"):
        rate_width(scale, 1.0, "fixed width")


def test_subsets_are_stratified_repeatable_and_checked(blobs):
    x, y = blobs(300)
    part_x, part_y = subset(x, y, 30, seed=1)
    again_x, _ = subset(x, y, 30, seed=1)
    assert len(part_y) == 30 and np.array_equal(part_x, again_x)
    assert abs(np.bincount(part_y, minlength=3) - 30 * np.bincount(y) / 300).max() <= 1
    assert not np.array_equal(part_x, subset(x, y, 30, seed=2)[0])
    assert subset(x, y, 300, seed=0)[0] is x
    for bad in (2, 301, 3.5, True):
        with pytest.raises(ValueError, match="n must be"):
            subset(x, y, bad, seed=0)


def test_size_epochs_give_the_updates_and_the_minimum():
    scale = get_scale("laptop", batch_size=100, size_updates=200, size_min_epochs=10)
    assert size_epochs(scale, 100) == 200  # one update per epoch
    assert size_epochs(scale, 1000) == 20
    assert size_epochs(scale, 4000) == 10  # the minimum wins
    assert size_epochs(scale, 150) == 100  # two updates per epoch (the last one on 50 examples)


def test_the_summary_sets_ours_beside_the_papers():
    runs = pd.DataFrame({"method": ["dropout"] * 3 + ["other"] * 3, "lr": [0.1] * 6, "seed": [0, 1, 2] * 2,
                         "val_error": [0.0] * 6, "test_error": [0.01, 0.02, 0.03, 0.05, 0.05, 0.05]})
    table = table2_summary(runs)
    assert list(table.index) == ["dropout", "other"]
    assert table.loc["dropout", "test error % (ours)"] == "2.00 ± 0.82"
    assert table.loc["dropout", "paper %"] == "1.25" and table.loc["other", "paper %"] == "–"
    with pytest.raises(ValueError, match="test_error"):
        table2_summary(runs.drop(columns="test_error"))


def test_sweep_tables_have_one_row_per_setting():
    table = sweep_table([0.0, 0.5], {"a": np.array([[0.1, 0.2], [0.3, 0.2]])}, setting="rate")
    assert list(table.index) == ["0", "0.5"] and table.loc["0", "a"] == "20.00 ± 10.00"


def _tiny_data():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetFallbackWarning)
        return load_data(get_scale("laptop", **SMOKE))


def test_the_three_experiments_run_and_repeat_at_a_tiny_size():
    scale = get_scale("laptop", **SMOKE)
    data = _tiny_data()
    assert len(data.y_train) == SMOKE["train_limit"]
    runs, search = run_table2(scale, data)
    assert list(runs["method"].unique()) == list(PAPER_TABLE2)
    assert len(runs) == 3 * len(scale.seeds) and len(search) == 3 * len(scale.lr_grid)
    for method, group in search.groupby("method"):
        best = group.loc[group["val_error"].idxmin(), "lr"]
        chosen = runs.loc[runs["method"] == method, "lr"].unique()
        assert list(chosen) == [best]
        # the search's first-seed run is reused, not repeated
        first = runs[(runs["method"] == method) & (runs["seed"] == scale.seeds[0])]
        assert first["test_error"].item() == group.loc[group["lr"] == best, "test_error"].item()
    again, _ = run_table2(scale, data, lrs=runs.groupby("method", sort=False)["lr"].first().to_dict())
    pd.testing.assert_frame_equal(runs, again)
    rates = rate_sweep(scale, data)
    assert set(rates) == set(RATE_MODES)
    assert rates["fixed width"]["test"].shape == (len(scale.seeds), len(scale.rates))
    assert np.array_equal(rates["fixed width"]["test"][:, 0], rates["fixed kept units"]["test"][:, 0])
    sizes = size_sweep(scale, data)
    assert set(sizes) == {"no dropout", "dropout"} and sizes["dropout"].shape == (len(scale.seeds), len(scale.sizes))
    assert np.all((sizes["dropout"] >= 0) & (sizes["dropout"] <= 1))
    with pytest.raises(ValueError, match="exceed"):
        size_sweep(get_scale("laptop", **(SMOKE | {"sizes": (20, 10_000)})), data)


@pytest.mark.parametrize("scale", ["paper", "laptop"])
def test_the_paper_scale_tool_runs_its_whole_code_path_at_smoke_size(tmp_path, capsys, monkeypatch, scale):
    monkeypatch.setenv(SCALE_ENV, scale)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert paper_scale_main(["--smoke", "--out", str(tmp_path)]) == 0
    fell_back = any(issubclass(w.category, DatasetFallbackWarning) for w in caught)
    assert fell_back == (scale == "paper" and find_mnist() is None)  # full MNIST only at paper scale
    for stem in ("table2", "rate", "size"):
        assert (tmp_path / f"{stem}.csv").is_file() and (tmp_path / f"{stem}.md").is_file()
    table = pd.read_csv(tmp_path / "table2.csv", index_col="method")
    assert list(table.index) == list(PAPER_TABLE2)
    assert (tmp_path / "table2_runs.csv").is_file() and (tmp_path / "table2_search.csv").is_file()
    assert "| dropout + max-norm" in (tmp_path / "table2.md").read_text()
    printed = capsys.readouterr().out
    assert f"scale '{scale}'" in printed and ("device: cpu" in printed or "device: cuda" in printed)


def test_the_tool_refuses_an_unknown_scale(monkeypatch):
    monkeypatch.setenv(SCALE_ENV, "huge")
    with pytest.raises(ValueError, match="allowed"):
        paper_scale_main(["--smoke", "--only", "table2"])
    with pytest.raises(SystemExit):
        paper_scale_main(["--scale", "huge"])


def test_the_laptop_data_is_the_mnist_subset(no_scale_env):
    data = load_data(get_scale())
    assert data.sizes == load_dataset("mnist5k").sizes == {"train": 4000, "val": 500, "test": 500}


def test_the_laptop_scale_runs_single_threaded_and_restores_the_setting():
    assert get_scale("laptop").threads == 1 and get_scale("paper").threads is None
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        with torch_threads(0):
            pass


def test_the_table2_plot_shows_seeds_means_and_the_papers_numbers():
    runs = pd.DataFrame({"method": ["no dropout"] * 2 + ["dropout"] * 2, "test_error": [0.05, 0.07, 0.04, 0.06]})
    ax = plot_table2(runs)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["no dropout", "dropout"]
    diamonds = [line for line in ax.get_lines() if line.get_marker() == "D"]
    assert [line.get_ydata()[0] for line in diamonds] == pytest.approx([0.016, 0.0125])
    dots = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert sorted(np.concatenate([line.get_ydata() for line in dots])) == [0.04, 0.05, 0.06, 0.07]
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="test_error"):
        plot_table2(runs.drop(columns="test_error"))


def test_tables_are_written_as_csv_and_markdown(tmp_path):
    table = pd.DataFrame({"a": ["1.00 ± 0.50"]}, index=pd.Index(["x"], name="setting"))
    csv_path, md_path = write_table(table, tmp_path / "new", "demo")
    assert pd.read_csv(csv_path, index_col="setting").loc["x", "a"] == "1.00 ± 0.50"
    assert "| x " in md_path.read_text(encoding="utf-8")
