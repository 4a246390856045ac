"""Plot helpers: the right lines, in the book's palette, and clear errors on bad input."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pytest

from utils.plotting import (
    BOOK_STYLE,
    PALETTE,
    draw_network,
    network_masks,
    plot_bands,
    plot_history,
    plot_runs,
    show_images,
    use_book_style,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


HISTORY = {"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.8, 0.9], "accuracy": [0.6, 0.8, 0.9],
           "val_accuracy": [0.5, 0.7, 0.7]}


def test_style_sets_the_palette_as_colour_cycle():
    use_book_style()
    cycle = [c["color"] for c in matplotlib.rcParams["axes.prop_cycle"]]
    assert cycle == list(PALETTE)
    assert matplotlib.rcParams["figure.figsize"] == list(BOOK_STYLE["figure.figsize"])


def test_palette_is_distinct_and_valid():
    assert len(set(PALETTE)) == len(PALETTE) >= 8
    assert all(mcolors.is_color_like(c) for c in PALETTE)


def test_history_has_a_panel_per_metric_with_training_and_validation():
    fig = plot_history(HISTORY, ("loss", "accuracy"), title="run")
    assert len(fig.axes) == 2
    for ax, metric in zip(fig.axes, ("loss", "accuracy"), strict=True):
        assert ax.get_ylabel() == metric
        lines = ax.get_lines()
        assert [line.get_label() for line in lines] == ["training", "validation"]
        np.testing.assert_array_equal(lines[0].get_xdata(), [1, 2, 3])
        np.testing.assert_array_equal(lines[1].get_ydata(), HISTORY[f"val_{metric}"])
        assert [line.get_color() for line in lines] == list(PALETTE[:2])


def test_history_accepts_a_keras_history_like_object_and_a_single_metric():
    class History:
        history = {"loss": [3.0, 2.0]}

    fig = plot_history(History(), "loss")
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["training"]


def test_history_rejects_unknown_metric_and_bad_types():
    with pytest.raises(KeyError, match="val_acc"):
        plot_history(HISTORY, ("val_acc",))
    with pytest.raises(TypeError, match="mapping"):
        plot_history([1, 2, 3])
    with pytest.raises(ValueError, match="at least one"):
        plot_history(HISTORY, ())


def test_runs_share_one_axis_and_2d_entries_get_mean_and_band():
    seeds = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]])
    ax = plot_runs({"dropout": seeds, "plain": [1.0, 1.5]}, ylabel="error")
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["dropout", "plain"]
    np.testing.assert_allclose(lines[0].get_ydata(), [2.0, 3.0, 4.0])
    assert len(ax.collections) == 1  # one ±std band, for the 2-D entry only
    assert len(lines[1].get_xdata()) == 2


@pytest.mark.parametrize("runs", [{}, {"a": []}, {"a": np.zeros((2, 2, 2))}])
def test_runs_reject_empty_or_malformed_input(runs):
    with pytest.raises(ValueError):
        plot_runs(runs)


def test_show_images_reshapes_rows_and_titles_them():
    images = np.random.default_rng(0).random((12, 64))
    fig = show_images(images, labels=list(range(12)), image_shape=(8, 8), ncols=5)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 12 and len(fig.axes) == 15
    assert shown[11].get_title() == "11"
    assert shown[0].images[0].get_array().shape == (8, 8)


@pytest.mark.parametrize("kwargs, message", [
    ({"images": np.zeros((3, 10)), "image_shape": (8, 8)}, "reshape"),
    ({"images": np.zeros((3, 8))}, "stack"),
    ({"images": np.zeros((3, 8, 8)), "labels": [1, 2]}, "labels"),
    ({"images": np.zeros((3, 8, 8)), "ncols": 0}, "ncols"),
])
def test_show_images_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        show_images(**kwargs)


def test_network_masks_are_seeded_keep_outputs_and_never_empty_a_layer():
    a = network_masks((4, 6, 6, 2), drop_rate=0.5, seed=3)
    b = network_masks((4, 6, 6, 2), drop_rate=0.5, seed=3)
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert a[-1].all()
    heavy = network_masks((3, 3, 1), drop_rate=0.99, seed=0)
    assert all(mask.any() for mask in heavy)
    assert network_masks((5, 5, 1), drop_rate=0.0, seed=0)[0].all()


@pytest.mark.parametrize("sizes, rate", [((4,), 0.5), ((4, 0, 2), 0.5), ((4, 2), 1.0), ((4, 2), -0.1)])
def test_network_masks_reject_bad_input(sizes, rate):
    with pytest.raises(ValueError):
        network_masks(sizes, rate, seed=0)


def test_draw_network_removes_the_connections_of_dropped_units():
    sizes = (3, 4, 2)
    full = draw_network(sizes)
    assert len(full.get_lines()) == 3 * 4 + 4 * 2
    kept = [np.array([True, False, True]), np.array([True, True, False, False]), np.ones(2, bool)]
    _, ax = plt.subplots()
    draw_network(sizes, kept, ax=ax)
    assert len(ax.get_lines()) == 2 * 2 + 2 * 2
    crosses = [c for c in ax.collections if c.get_paths() and len(c.get_offsets()) == 1]
    assert len(crosses) == sum(sizes) + 3  # one marker per unit, plus a cross on each of the 3 dropped


def test_draw_network_rejects_masks_of_the_wrong_shape():
    with pytest.raises(ValueError, match="mask"):
        draw_network((3, 2), [np.ones(3, bool)])


def test_plot_bands_draws_means_and_bands_against_the_settings():
    runs = {"a": np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]]), "b": [0.5, 0.5, 0.5]}
    ax = plot_bands([10, 100, 1000], runs, xlabel="size", ylabel="error", log_x=True)
    a, b = ax.get_lines()
    assert list(a.get_xdata()) == [10, 100, 1000] and np.allclose(a.get_ydata(), [0.2, 0.2, 0.2])
    assert len(ax.collections) == 1  # one band: "b" is a single run
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "size"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]


@pytest.mark.parametrize("settings, runs, kwargs", [
    ([1, 2], {}, {}),
    ([], {"a": [[]]}, {}),
    ([1, 2], {"a": [0.1, 0.2, 0.3]}, {}),
    ([0, 1], {"a": [0.1, 0.2]}, {"log_x": True}),
])
def test_plot_bands_rejects_bad_input(settings, runs, kwargs):
    with pytest.raises(ValueError):
        plot_bands(settings, runs, xlabel="x", ylabel="y", **kwargs)
