"""The Transformers chapter's helpers: the dropout sites of the small Transformer, stochastic depth, the dropout
recorder and the sweep's readers."""

from __future__ import annotations

import inspect

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from utils.chapters.transformers import (
    depth_rates,
    dropout_calls,
    interval_points,
    interval_words,
    narrowing_text,
    plot_block_diagram,
    plot_site_differences,
    results_table,
    seed_costs,
    site_differences,
    site_table,
    summary_table,
)
from utils.chapters.transformers_sweeps import (
    SITES,
    DropPath,
    SelfAttention,
    TinyTransformer,
    check_site_rates,
    drop_path,
    error_rate,
    train_transformer,
)
from utils.stats import paired_difference

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _seeded_one_thread():
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    torch.set_num_threads(1)  # the book's setting: small models run fastest on one thread
    yield
    torch.set_num_threads(threads)


def test_check_site_rates_fills_zeros_and_rejects_bad_names_and_rates():
    assert check_site_rates({"attention": 0.1}) == {site: 0.1 if site == "attention" else 0.0 for site in SITES}
    with pytest.raises(ValueError, match="unknown dropout site"):
        check_site_rates({"attn": 0.1})
    with pytest.raises(ValueError, match="drop rate"):
        check_site_rates({"residual": 1.0})
    with pytest.raises(TypeError, match="map site names"):
        check_site_rates([("residual", 0.1)])


def test_drop_path_zeroes_whole_samples_and_rescales_the_rest():
    x = torch.ones(4000, 3, 5)
    out = drop_path(x, 0.3, training=True)
    per_sample = out.reshape(len(x), -1)
    assert torch.all((per_sample == 0).all(dim=1) | torch.isclose(per_sample, torch.tensor(1 / 0.7)).all(dim=1))
    assert abs((per_sample[:, 0] == 0).float().mean().item() - 0.3) < 0.03
    assert abs(out.mean().item() - 1.0) < 0.05  # the mean is preserved


def test_drop_path_is_the_identity_in_evaluation_and_at_rate_zero():
    x = torch.randn(8, 4)
    assert drop_path(x, 0.5, training=False) is x
    assert drop_path(x, 0.0, training=True) is x
    module = DropPath(0.5).eval()
    assert torch.equal(module(x), x)
    assert "rate=0.5" in repr(module)


def test_drop_path_rejects_bad_rates_and_inputs():
    with pytest.raises(ValueError, match="drop rate"):
        drop_path(torch.ones(2, 2), 1.0, training=True)
    with pytest.raises(ValueError):
        DropPath(-0.1)
    with pytest.raises(TypeError, match="batch axis"):
        drop_path(np.ones((2, 2)), 0.1, training=True)


def test_depth_rates_rise_linearly_to_the_last_rate():
    assert depth_rates(4, 0.5) == pytest.approx([0.125, 0.25, 0.375, 0.5])
    assert depth_rates(1) == [0.5]
    with pytest.raises(ValueError):
        depth_rates(0)
    with pytest.raises(ValueError, match="drop rate"):
        depth_rates(3, 1.5)


def test_self_attention_drops_only_in_training_mode():
    attention = SelfAttention(8, 2, rate=0.5)
    x = torch.randn(2, 5, 8)
    attention.eval()
    assert torch.equal(attention(x), attention(x))
    attention.train()
    assert not torch.equal(attention(x), attention(x))
    with pytest.raises(ValueError, match="multiple of n_heads"):
        SelfAttention(10, 3)


def test_tiny_transformer_shapes_and_errors():
    model = TinyTransformer(rates={"embedding": 0.1})
    assert model(torch.randn(3, 40)).shape == (3, 10)
    with pytest.raises(ValueError, match="multiple of the patch"):
        TinyTransformer(length=42, patch=4)


def test_dropout_calls_finds_the_four_sites_of_a_pytorch_encoder_layer():
    layer = nn.TransformerEncoderLayer(16, 2, batch_first=True)
    assert inspect.signature(nn.TransformerEncoderLayer).parameters["dropout"].default == 0.1
    calls = dropout_calls(layer.train(), torch.randn(2, 5, 16))
    assert list(calls["module"]) == ["self_attn", "dropout1", "dropout", "dropout2"]
    assert calls["drops"].all() and (calls["rate"] == 0.1).all()
    assert not dropout_calls(layer.eval(), torch.randn(2, 5, 16))["drops"].any()


def test_dropout_calls_sees_each_site_of_the_tiny_transformer():
    model = TinyTransformer(n_layers=2, rates={site: 0.1 for site in ("embedding", "attention", "residual")})
    calls = dropout_calls(model.train(), torch.randn(2, 40))
    assert list(calls["module"]) == ["drop", "blocks.0.attention", "blocks.0.drop1", "blocks.0.feed_forward.2",
                                     "blocks.0.drop2", "blocks.1.attention", "blocks.1.drop1",
                                     "blocks.1.feed_forward.2", "blocks.1.drop2"]
    assert list(calls["drops"]) == [True, True, True, False, True, True, True, False, True]
    assert not dropout_calls(model.eval(), torch.randn(2, 40))["drops"].any()
    with pytest.raises(TypeError, match="nn.Module"):
        dropout_calls(lambda x: x, torch.ones(1))


def test_training_is_paired_by_seed_and_learns(monkeypatch):
    # Seeding Keras as well would import TensorFlow, which takes longer than the whole test: torch's seed is enough.
    monkeypatch.setattr("utils.chapters.transformers_sweeps.seed_everything", torch.manual_seed)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    x = (rng.normal(size=(60, 8)) + 2.0 * y[:, None]).astype(np.float32)
    kwargs = {"seed": 3, "epochs": 8, "batch_size": 20, "patch": 2, "d_model": 8, "n_heads": 2, "d_ff": 8,
              "n_layers": 1}
    a = train_transformer(x, y, rates={}, **kwargs)
    b = train_transformer(x, y, rates={}, **kwargs)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert error_rate(a, x, y) < 0.3 and not a.training
    with pytest.raises(ValueError, match="one label per example"):
        train_transformer(x, y[:-1], rates={}, **kwargs)


def _table() -> pd.DataFrame:
    rows = []
    for seed in range(5):
        for sites, shift in (("none", 0.0), ("attention", 0.05), ("embedding", 0.0)):
            rows.append({"n_train": 1000, "sites": sites, "seed": seed,
                         "test_error": 0.2 + shift + 0.01 * seed + (0.001 * seed ** 2 if sites == "embedding" else 0)})
    return pd.DataFrame(rows)


def test_site_differences_pairs_by_seed_and_checks_its_input():
    differences = site_differences(_table(), 1000)
    assert list(differences) == ["attention", "embedding"]  # in the table's order
    assert differences["attention"].mean == pytest.approx(0.05) and differences["attention"].resolved
    with pytest.raises(ValueError, match="no runs"):
        site_differences(_table(), 4000)
    with pytest.raises(ValueError, match="columns"):
        site_differences(_table().drop(columns="seed"), 1000)
    with pytest.raises(ValueError, match="no 'dropout' runs"):
        site_differences(_table(), 1000, baseline="dropout")


def test_gap_and_seed_costs_pair_by_seed():
    table = _table().assign(train_error=lambda t: t["test_error"] - 0.1 * (t["sites"] == "none"))
    gap = site_differences(table, 1000, metric="gap")
    assert gap["attention"].mean == pytest.approx(-0.1) and gap["attention"].high < 0
    costs = seed_costs(table, 1000, "attention")
    assert list(costs.index) == list(range(5)) and np.allclose(costs, 0.05)
    with pytest.raises(ValueError, match="metric must be"):
        site_differences(table, 1000, metric="loss")
    with pytest.raises(ValueError, match="columns"):
        site_differences(_table(), 1000, metric="gap")  # no training error to subtract
    with pytest.raises(ValueError, match="needs 'residual'"):
        seed_costs(table, 1000, "residual")


def test_results_table_gives_percentages_in_the_tables_order():
    table = _table().assign(train_error=0.1)
    result = results_table(table)
    assert list(result.index) == ["1,000 signals, none", "1,000 signals, attention weights",
                                  "1,000 signals, embedding"]
    assert result.loc["1,000 signals, none", "train error %"] == 10.0
    with pytest.raises(ValueError, match="columns"):
        results_table(_table())


def test_interval_words_and_points_use_one_decimal_and_a_real_minus_and_narrowing_reads_positive():
    close = paired_difference([0.0100, 0.0002, 0.0150], [0.0, 0.0, 0.0])
    assert close.low < 0 and interval_words(close).startswith("\u2212")
    assert "-" not in interval_words(close) and interval_words(close).endswith("(95 % interval, 3 seeds): not resolved")
    gain = paired_difference([0.10, 0.12, 0.11, 0.13], [0.15, 0.16, 0.17, 0.18])
    assert interval_points(gain) == (f"{100 * gain.low:.1f} to {100 * gain.high:.1f} points").replace("-", "\u2212")
    text = narrowing_text(gain)
    assert text == f"{-100 * gain.high:.1f} to {-100 * gain.low:.1f} points"
    with pytest.raises(ValueError, match="not resolved below 0"):
        narrowing_text(close)
    with pytest.raises(TypeError, match="PairedDifference"):
        interval_words(0.1)
    with pytest.raises(TypeError, match="PairedDifference"):
        interval_points(0.1)


def test_site_differences_takes_a_level_for_an_allowance():
    plain = site_differences(_table(), 1000)["embedding"]
    wider = site_differences(_table(), 1000, level=1 - 0.05 / 4)["embedding"]
    assert wider.level == 1 - 0.05 / 4 and wider.low < plain.low and wider.high > plain.high
    with pytest.raises(ValueError, match="level"):
        site_differences(_table(), 1000, level=1.5)


def test_site_table_puts_every_site_against_none_with_its_verdict():
    table = _table().assign(train_error=0.1)
    result = site_table([("1,000", table, 1000)])
    assert list(result.columns) == ["test error", "training error", "gap (test \u2212 train)"]
    assert list(result.index) == ["1,000, attention weights", "1,000, embedding"]
    for label, cell in result["test error"].items():
        sites = {"1,000, attention weights": "attention", "1,000, embedding": "embedding"}[label]
        verdict = site_differences(table, 1000)[sites]
        assert cell.endswith("*") == verdict.resolved and "-" not in cell
    with pytest.raises(ValueError, match="at least one group"):
        site_table([])


def test_site_table_adds_a_column_at_the_allowance_level():
    table = _table()
    result = site_table([("1,000", table, 1000)], metrics=("test_error",), allowance_level=1 - 0.05 / 4)
    assert list(result.columns) == ["test error, 95 %", "test error, 98.75 %"]
    wider = site_differences(table, 1000, level=1 - 0.05 / 4)["embedding"]
    assert result.loc["1,000, embedding", "test error, 98.75 %"].strip().removesuffix("*").strip() == (
        interval_points(wider).removesuffix(" points"))
    with pytest.raises(ValueError, match="level"):
        site_table([("1,000", table, 1000)], allowance_level=1.5)


def test_summary_table_joins_the_means_and_the_test_error_intervals():
    table = _table().assign(train_error=0.1)
    result = summary_table([(table, 1000)], allowance_level=1 - 0.05 / 4)
    assert list(result.columns.get_level_values(1)) == ["train error", "test error", "test error, 95 %",
                                                        "test error, 98.75 %"]
    assert list(result.index) == list(results_table(table).index)
    assert result.loc["1,000 signals, none"].iloc[2:].tolist() == ["", ""]  # no interval for the baseline
    with pytest.raises(ValueError, match="at least one"):
        summary_table([], allowance_level=0.99)


def test_the_figures_draw():
    table = _table().assign(train_error=0.1)
    fig = plot_site_differences(table, [("1,000", 1000)])
    assert len(fig.axes) == 3
    assert [label.get_text() for label in fig.axes[0].get_yticklabels()] == ["attention weights, 1,000",
                                                                             "embedding, 1,000"]
    with pytest.raises(ValueError, match="at least one group"):
        plot_site_differences(table, [])
    with_allowance = plot_site_differences(table, [("1,000", 1000)], allowance_level=1 - 0.05 / 4)
    assert len(with_allowance.axes[0].collections) > len(fig.axes[0].collections)  # the thin whiskers
    with pytest.raises(ValueError, match="allowance_level"):
        plot_site_differences(table, [("1,000", 1000)], allowance_level=0.5)
    assert plot_block_diagram().axes
