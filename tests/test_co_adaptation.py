"""Co-adaptation autoencoders: shapes, argument checks, seeded repeatability, the removal identity, the figures."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from utils.chapters.co_adaptation import (  # noqa: E402
    N_PIXELS,
    ablation_rises,
    best_factor_errors,
    best_scale,
    cancellation_ratio,
    crossover_fraction,
    difference_table,
    differences,
    expected_removal_errors,
    features,
    first_crossing,
    hidden_activations,
    live_units,
    make_autoencoder,
    masked_errors,
    plot_activations,
    plot_features,
    plot_removal_curves,
    reconstruction_errors,
    removal_errors,
    removal_penalty,
    sparsity,
    summarise_runs,
    train_autoencoder,
    unit_contributions,
)


@pytest.fixture
def images():
    """Sixty random 'images' with MNIST's shape and range, some pixels always off, as at MNIST's border."""
    x = np.random.default_rng(0).random((60, N_PIXELS)).astype(np.float32)
    x[:, :28] = 0.0
    return x


@pytest.fixture
def small(images):
    """A tiny autoencoder trained briefly with dropout (16 hidden units)."""
    torch.manual_seed(0)
    model, _ = train_autoencoder(images, drop_rate=0.5, seed=0, n_hidden=16, epochs=2, batch_size=20)
    return model


def test_the_autoencoder_has_the_papers_layout():
    torch.manual_seed(0)
    plain, dropped = make_autoencoder(), make_autoencoder(drop_rate=0.5)
    assert [type(m) for m in plain] == [nn.Linear, nn.ReLU, nn.Linear]
    assert [type(m) for m in dropped] == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert dropped[2].p == 0.5 and plain[0].out_features == 256 and plain[-1].out_features == N_PIXELS
    assert abs(plain[0].weight.std().item() - 0.01) < 0.001  # the small start


def test_training_repeats_under_a_seed_and_learns(images):
    first, losses = train_autoencoder(images, drop_rate=0.5, seed=3, n_hidden=16, epochs=3, batch_size=20)
    second, again = train_autoencoder(images, drop_rate=0.5, seed=3, n_hidden=16, epochs=3, batch_size=20)
    other, _ = train_autoencoder(images, drop_rate=0.5, seed=4, n_hidden=16, epochs=3, batch_size=20)
    assert losses == again and len(losses) == 3 and losses[-1] < losses[0]
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    assert not torch.equal(first[0].weight, other[0].weight)
    assert not first.training  # returned in eval mode


def test_shapes_of_what_the_chapter_reads(small, images):
    h = hidden_activations(small, images)
    assert h.shape == (60, 16) and (h >= 0).all()
    assert features(small).shape == (16, 28, 28)
    assert reconstruction_errors(small, images).shape == (60,)
    assert unit_contributions(small, images).shape == (60,)
    assert ablation_rises(small, images).shape == (16,)
    assert live_units(h).shape == (16,)


def test_sparsity_counts_zeros_and_dead_units():
    a = np.array([[0.0, 2.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    s = sparsity(a)
    assert s == {"mean activation": 3 / 8, "zero share": 6 / 8, "dead units": 0.5, "zero share, live units": 0.5}
    with pytest.raises(ValueError, match="non-negative"):
        sparsity(-a)
    with pytest.raises(ValueError, match="shape"):
        sparsity(np.zeros(3))


def test_removal_matches_its_exact_expectation(small, images):
    exact = reconstruction_errors(small, images).mean() + removal_penalty(small, images, fraction=0.5)
    rng = np.random.default_rng(1)
    sampled = [masked_errors(small, images, keep, 2.0).mean() for keep in rng.random((1000, 16)) >= 0.5
               if keep.any()]
    assert abs(np.mean(sampled) - exact) < 4 * np.std(sampled) / np.sqrt(len(sampled))
    curve = expected_removal_errors(small, images, [0, 0.5])
    assert np.isclose(curve[0], reconstruction_errors(small, images).mean()) and np.isclose(curve[1], exact)


def test_removal_errors_and_best_scale(small, images):
    scores = removal_errors(small, images, n_masks=5, seed=0)
    assert set(scores) == {"intact", "rescaled", "best rescaling"}
    assert scores["best rescaling"] <= scores["rescaled"] + 1e-9  # the best factor is at least as good as 2
    assert removal_errors(small, images, n_masks=5, seed=0) == scores  # seeded
    keep = np.arange(16) % 2 == 0
    factor = best_scale(small, images, keep)
    errors = [masked_errors(small, images, keep, factor + d).mean() for d in (-0.1, 0.0, 0.1)]
    assert errors[1] <= min(errors[0], errors[2])
    assert np.allclose(masked_errors(small, images, np.ones(16, bool), 1.0), reconstruction_errors(small, images),
                       atol=1e-4)


def test_ablation_rises_match_removing_one_unit(small, images):
    rises = ablation_rises(small, images)
    base = reconstruction_errors(small, images).mean()
    for j in (0, 5):
        keep = np.ones(16, bool)
        keep[j] = False
        assert np.isclose(masked_errors(small, images, keep, 1.0).mean() - base, rises[j], rtol=1e-3, atol=1e-4)


def test_cancellation_ratio_is_one_for_orthogonal_contributions():
    model = make_autoencoder(2)
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].weight[:, 0] = 1.0
        model[0].bias.zero_()
        model[-1].weight.zero_()
        model[-1].weight[0, 0] = model[-1].weight[1, 1] = 1.0  # two units, two different pixels
        model[-1].bias.zero_()
    x = np.zeros((3, N_PIXELS), np.float32)
    x[:, 0] = [1.0, 2.0, 3.0]
    assert np.isclose(cancellation_ratio(model, x), 1.0)
    with torch.no_grad():
        model[-1].weight[1, 1] = 0.0
        model[-1].weight[0, 1] = -0.5  # the second unit undoes half the first: large parts, small sum
    assert np.isclose(cancellation_ratio(model, x), (1 + 0.25) / 0.25)


def test_crossover_fraction():
    f = crossover_fraction(5.0, 100.0, 15.0, 10.0)
    assert np.isclose(5 + f / (1 - f) * 100, 15 + f / (1 - f) * 10)
    with pytest.raises(ValueError, match="no crossing"):
        crossover_fraction(15.0, 100.0, 5.0, 10.0)


def test_arguments_are_checked_with_clear_errors(small, images):
    with pytest.raises(ValueError, match="shape"):
        hidden_activations(small, images[:, :100])
    with pytest.raises(TypeError, match="NumPy array"):
        reconstruction_errors(small, images.tolist())
    with pytest.raises(TypeError, match="make_autoencoder"):
        reconstruction_errors(nn.Linear(N_PIXELS, N_PIXELS), images)
    with pytest.raises(ValueError, match="boolean"):
        masked_errors(small, images, np.ones(16), 1.0)
    with pytest.raises(ValueError, match="every hidden unit"):
        masked_errors(small, images, np.zeros(16, bool), 1.0)
    with pytest.raises(ValueError, match="strictly between"):
        removal_errors(small, images, fraction=1.0)
    with pytest.raises(ValueError, match="drop rate|rate"):
        make_autoencoder(drop_rate=1.5)
    with pytest.raises(ValueError, match="momentum"):
        train_autoencoder(images, drop_rate=0.0, seed=0, momentum=1.0)
    with pytest.raises(ValueError, match="same scores"):
        summarise_runs([{"a": 1.0}, {"b": 2.0}])
    with pytest.raises(ValueError, match="different scores"):
        differences({"a": np.ones(2)}, {"b": np.ones(2)})


def test_tables_and_figures(small, images):
    runs = summarise_runs([{"score": 1.0}, {"score": 2.0}, {"score": 1.5}])
    other = {"score": runs["score"] + np.array([1.0, 1.2, 0.9])}
    diffs = differences(runs, other)
    table = difference_table(runs, other, diffs, digits=2)
    assert isinstance(table, pd.DataFrame) and table.loc["score", "verdict"] == "resolved"
    for fig in (plot_features({"a": small}, images, n_units=6, ncols=3),
                plot_activations({"a": hidden_activations(small, images)}),
                plot_removal_curves({"a": np.ones((2, 3))}, [0.0, 0.5, 0.9], {"a": np.ones(2)},
                                    best={"a": np.ones((2, 3))})):
        assert fig.axes
        plt.close(fig)


def test_best_factor_errors_beat_inverted_rescaling_and_match_masks(small, images):
    fractions = [0.0, 0.25, 0.5]
    best = best_factor_errors(small, images, fractions)
    rescaled = expected_removal_errors(small, images, fractions)
    assert (best <= rescaled + 1e-6).all()  # the best factor is at least as good as 1 / (1 - f)
    rng = np.random.default_rng(2)
    masks = [keep for keep in rng.random((2000, 16)) >= 0.5 if keep.any()]
    factors = np.linspace(0.5, 3.0, 26)  # any fixed factor does no better on average than the best one
    sampled = [np.mean([masked_errors(small, images, keep, s).mean() for keep in masks[:300]]) for s in factors]
    assert min(sampled) >= best[2] * 0.95
    with pytest.raises(ValueError, match="strictly between"):
        best_factor_errors(small, images, [1.0])


def test_first_crossing():
    f = np.array([0.0, 0.1, 0.2, 0.3])
    assert np.isclose(first_crossing(f, [1.0, 2.0, 4.0, 8.0], [3.0, 3.0, 3.0, 3.0]), 0.15)
    with pytest.raises(ValueError, match="no crossing"):
        first_crossing(f, [4.0, 5.0, 6.0, 7.0], [3.0, 3.0, 3.0, 3.0])
    with pytest.raises(ValueError, match="no crossing"):
        first_crossing(f, [1.0, 1.0, 1.0, 1.0], [3.0, 3.0, 3.0, 3.0])
    with pytest.raises(ValueError, match="increase"):
        first_crossing(f[::-1], [1.0, 2.0, 4.0, 8.0], [3.0, 3.0, 3.0, 3.0])


def test_difference_table_shows_shares_in_per_cent():
    runs = {"share": np.array([0.40, 0.42, 0.41]), "mean": np.array([1.0, 1.1, 1.2])}
    other = {"share": runs["share"] + np.array([0.30, 0.32, 0.31]), "mean": runs["mean"] + 0.5}
    table = difference_table(runs, other, differences(runs, other), digits=2, percent=["share"])
    assert table.loc["share", "without dropout"] == "41 %" and "points" in table.loc["share", "with − without"]
    assert table.loc["mean", "with dropout"] == "1.60"
