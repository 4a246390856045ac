"""Monte-Carlo dropout: only dropout switched on, repeatable passes, the spread measures, rotation and the CNN."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from utils.chapters.mc_dropout import (
    UNCERTAINTY_SCORES,
    class_colours,
    dropout_layers,
    dropout_rate,
    ensemble_sweep,
    entropy,
    eval_predict,
    mc_mode,
    mc_predict,
    mutual_information,
    prediction_scores,
    predictive_entropy,
    predictive_mean,
    rotate_images,
    rotation_sweep,
    softmax_variance,
    spread_measures,
)
from utils.seeding import seed_everything
from utils.torch_dropout import TorchDropout
from utils.torch_models import make_cnn, make_mlp


@pytest.fixture
def lenet():
    """A LeNet-like CNN with batch norm whose running statistics are not the defaults."""
    seed_everything(0)
    model = make_cnn(10, drop_rate=0.5)
    with torch.no_grad():
        model.train()(torch.rand(32, 784))  # gives the batch-norm layer non-trivial running statistics
    return model.eval()


@pytest.fixture
def digits():
    return np.random.default_rng(0).random((12, 784), dtype=np.float32)


def test_mc_mode_switches_on_dropout_only_and_restores_every_mode(lenet):
    lenet[2].train()  # a mixed state, to check that it comes back exactly
    before = {name: module.training for name, module in lenet.named_modules()}
    with mc_mode(lenet):
        on = [type(m).__name__ for m in lenet.modules() if m.training]
    assert on == ["Dropout"]
    assert {name: module.training for name, module in lenet.named_modules()} == before


def test_mc_mode_restores_modes_after_an_error(lenet):
    with pytest.raises(RuntimeError), mc_mode(lenet):
        raise RuntimeError("inside")
    assert not any(m.training for m in lenet.modules())


def test_batch_norm_statistics_are_used_and_left_alone(lenet, digits):
    stats = [t.clone() for t in (lenet[2].running_mean, lenet[2].running_var)]
    mc_predict(lenet, digits, passes=5)
    assert torch.equal(stats[0], lenet[2].running_mean) and torch.equal(stats[1], lenet[2].running_var)
    # A row's prediction does not depend on the rest of its batch (it would with model.train()).
    noise = np.random.default_rng(1).random((11, 784), dtype=np.float32) * 5
    alone = mc_predict(lenet, np.concatenate([digits[:1], digits[1:]]), passes=3, seed=4)[:, 0]
    mixed = mc_predict(lenet, np.concatenate([digits[:1], noise]), passes=3, seed=4)[:, 0]
    np.testing.assert_allclose(alone, mixed, atol=1e-6)


def test_passes_are_probabilities_that_differ_and_repeat_with_the_seed(lenet, digits):
    state = torch.random.get_rng_state()
    probs = mc_predict(lenet, digits, passes=6, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())  # the global generator is untouched
    assert probs.shape == (6, 12, 10)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
    assert not np.allclose(probs[0], probs[1])
    np.testing.assert_array_equal(probs, mc_predict(lenet, digits, passes=6, seed=3))
    assert not np.allclose(probs, mc_predict(lenet, digits, passes=6, seed=4))
    assert not lenet.training


@pytest.mark.parametrize("build", [
    lambda: make_cnn(10, drop_rate=0.3),
    lambda: make_mlp(784, [32, 16], 10, drop_rate=0.5, input_drop_rate=0.2),  # dropout first: nothing to share
    lambda: nn.Sequential(nn.Linear(784, 20), nn.Sequential(nn.ReLU(), nn.Dropout(0.5)), nn.Linear(20, 10)),
])
def test_sharing_the_deterministic_prefix_changes_nothing(build, digits):
    seed_everything(0)
    model = build().eval()
    for module in dropout_layers(model):
        module.train()
    torch.manual_seed(9)
    with torch.no_grad():
        naive = torch.stack([torch.softmax(model(torch.as_tensor(digits)), dim=-1) for _ in range(4)]).numpy()
    model.eval()
    np.testing.assert_allclose(mc_predict(model, digits, passes=4, seed=9), naive, atol=1e-6)


def test_other_dropout_classes_count(digits):
    model = nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 2, 3), nn.Dropout2d(0.5), nn.Flatten(),
                          nn.Linear(2 * 26 * 26, 3))
    assert len(dropout_layers(model)) == 1
    probs = mc_predict(model, digits, passes=3)
    assert not np.allclose(probs[0], probs[1])


@pytest.mark.parametrize("model, n_in", [
    (make_cnn(10, drop_rate=0.0), 784),
    (make_cnn(10, drop_rate=0.0, batch_norm=False), 784),
    (make_mlp(4, [3], 2), 4),
    (nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.0), nn.Linear(3, 2)), 4),
    (nn.Linear(4, 2), 4),
])
def test_models_without_active_dropout_are_refused(model, n_in):
    with pytest.raises(ValueError, match="no dropout layer"):
        mc_predict(model, np.zeros((2, n_in)))


@pytest.mark.parametrize("call, error", [
    (lambda m, x: mc_predict(m, x, passes=0), ValueError),
    (lambda m, x: mc_predict(m, x, passes=2.0), TypeError),
    (lambda m, x: mc_predict(m, x, seed=-1), ValueError),
    (lambda m, x: mc_predict(m, x[:0]), ValueError),
    (lambda m, x: mc_predict(m, x[0]), ValueError),
    (lambda m, x: eval_predict("model", x), TypeError),
    (lambda m, x: dropout_layers(None), TypeError),
])
def test_bad_arguments_are_rejected(lenet, digits, call, error):
    with pytest.raises(error):
        call(lenet, digits)


def test_eval_predict_is_the_eval_mode_softmax_and_keeps_the_mode(lenet, digits):
    lenet.train()
    probs = eval_predict(lenet, digits)
    assert lenet.training
    with torch.no_grad():
        expected = torch.softmax(lenet.eval()(torch.as_tensor(digits)), dim=-1).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-6)


def test_spread_measures_on_known_cases():
    sure, other, flat = np.eye(4)[0], np.eye(4)[2], np.full(4, 0.25)
    probs = np.array([[sure, flat, sure], [sure, flat, other]])  # 2 passes, 3 examples
    np.testing.assert_allclose(predictive_mean(probs), [sure, flat, (sure + other) / 2])
    np.testing.assert_allclose(predictive_entropy(probs), [0.0, np.log(4), np.log(2)], atol=1e-12)
    np.testing.assert_allclose(mutual_information(probs), [0.0, 0.0, np.log(2)], atol=1e-12)
    np.testing.assert_allclose(softmax_variance(probs), [0.0, 0.0, 0.5], atol=1e-12)
    assert set(spread_measures(probs)) == {"entropy", "mutual information", "variance"}


def test_mutual_information_lies_between_zero_and_the_entropy():
    probs = np.random.default_rng(0).dirichlet(np.full(10, 0.3), size=(20, 50))
    mi, entropy = mutual_information(probs), predictive_entropy(probs)
    assert np.all(mi >= 0) and np.all(mi <= entropy + 1e-12) and np.all(entropy <= np.log(10) + 1e-12)


@pytest.mark.parametrize("probs", [np.full((3, 4), 0.25), np.full((2, 3, 4), 0.3), -np.eye(4)[None],
                                   np.zeros((0, 2, 3)), np.ones((2, 3, 1)), np.full((2, 3, 2), np.nan)])
@pytest.mark.parametrize("measure", [predictive_mean, predictive_entropy, mutual_information, softmax_variance,
                                     spread_measures])
def test_measures_reject_arrays_that_are_not_passes_of_probabilities(probs, measure):
    with pytest.raises(ValueError, match="probs|probabilit"):
        measure(probs)


def test_rotation_turns_counter_clockwise_about_the_centre(digits):
    images = digits.reshape(-1, 28, 28)
    np.testing.assert_allclose(rotate_images(digits, 0), digits, atol=1e-6)
    quarter = rotate_images(digits, 90).reshape(-1, 28, 28)
    np.testing.assert_allclose(quarter, np.rot90(images, k=1, axes=(1, 2)), atol=1e-5)
    np.testing.assert_allclose(rotate_images(digits, 180), np.rot90(images, 2, axes=(1, 2)).reshape(-1, 784), atol=1e-5)
    tilted = rotate_images(digits, 33)
    assert tilted.dtype == np.float32 and tilted.shape == digits.shape and 0 <= tilted.min() <= tilted.max() <= 1


@pytest.mark.parametrize("x, angle, error", [
    (np.zeros((2, 783)), 10, ValueError),
    (np.zeros(784), 10, ValueError),
    (np.zeros((2, 784)), True, TypeError),
    (np.zeros((2, 784)), "90", TypeError),
])
def test_rotation_rejects_bad_input(x, angle, error):
    with pytest.raises(error):
        rotate_images(x, angle)


def test_entropy_of_single_predictions():
    sure, flat = np.eye(4)[1], np.full(4, 0.25)
    np.testing.assert_allclose(entropy(np.array([sure, flat, [0.5, 0.5, 0, 0]])), [0.0, np.log(4), np.log(2)],
                               atol=1e-12)
    np.testing.assert_allclose(entropy(predictive_mean(np.array([[sure, flat]]))), [0.0, np.log(4)], atol=1e-12)
    with pytest.raises(ValueError, match="2-D"):
        entropy(np.full((2, 3, 4), 0.25))  # passes: take predictive_entropy


def test_prediction_scores_on_a_hand_made_case():
    a, b, c = np.eye(3)
    probs = np.array([[a, c, c, b], [a, a, c, b]])  # 2 passes, 4 examples; the first pass is wrong on example 1
    eval_probs = np.array([a, a, 0.4 * a + 0.6 * b, b])
    labels = np.array([0, 0, 2, 1])
    scores = prediction_scores(probs, eval_probs, labels)
    assert scores["MC accuracy"] == 1.0  # example 1 ties between classes 0 and 2; argmax takes class 0: right
    assert scores["one-pass accuracy"] == 0.75 and scores["eval accuracy"] == 0.75
    assert scores["agreement"] == 0.75  # example 2: MC says 2, eval mode says 1
    np.testing.assert_allclose(scores["MC cross-entropy"], np.log(2) / 4)
    np.testing.assert_allclose(scores["eval cross-entropy"], -np.log(1e-12) / 4)  # a zero counts as 1e-12


@pytest.mark.parametrize("change, match", [
    (lambda p, e, y: (p[:, :3], e, y), "same examples"),
    (lambda p, e, y: (p, e, y[:3]), "labels"),
    (lambda p, e, y: (p, e, y.astype(float)), "labels"),
    (lambda p, e, y: (p, e, y + 3), r"\[0, 3\)"),
    (lambda p, e, y: (p[0], e, y), "3-D"),
])
def test_prediction_scores_reject_mismatched_inputs(change, match):
    probs, eval_probs, labels = np.full((2, 4, 3), 1 / 3), np.full((4, 3), 1 / 3), np.array([0, 1, 2, 0])
    with pytest.raises(ValueError, match=match):
        prediction_scores(*change(probs, eval_probs, labels))


def test_rotation_sweep_measures_every_angle_and_sets_thresholds_upright(lenet, digits):
    labels = np.arange(len(digits)) % 10
    sweep = rotation_sweep(lenet, digits, labels, np.array([0, 90, 180]), passes=4, seed=2)
    flagged = [f"flagged by {score}" for score in UNCERTAINTY_SCORES]
    assert set(sweep) == {"angle", "accuracy", "eval accuracy", "low-spread errors",
                          "low-entropy eval errors", *UNCERTAINTY_SCORES, *flagged}
    assert all(values.shape == (3,) for values in sweep.values())
    np.testing.assert_array_equal(sweep["angle"], [0, 90, 180])
    # The thresholds are the upright digits' 95th percentiles: of 12 digits, each score flags the top one.
    assert [sweep[key][0] for key in flagged] == [1 / 12] * 3
    upright = mc_predict(lenet, digits, passes=4, seed=2)
    np.testing.assert_allclose(sweep["mutual information"][0], mutual_information(upright).mean())
    np.testing.assert_allclose(sweep["entropy"][0], predictive_entropy(upright).mean())
    np.testing.assert_allclose(sweep["eval entropy"][0], entropy(eval_predict(lenet, digits)).mean())
    np.testing.assert_allclose(sweep["accuracy"][0], np.mean(predictive_mean(upright).argmax(1) == labels))
    turned = mc_predict(lenet, rotate_images(digits, 90), passes=4, seed=3)  # angle 1 draws from seed + 1
    np.testing.assert_allclose(sweep["mutual information"][1], mutual_information(turned).mean())
    assert np.all(sweep["low-spread errors"] <= 1 - sweep["accuracy"] + 1e-12)
    assert np.all(sweep["low-entropy eval errors"] <= 1 - sweep["eval accuracy"] + 1e-12)
    again = rotation_sweep(lenet, digits, labels, [0, 90, 180], passes=4, seed=2)
    assert all(np.array_equal(sweep[key], again[key]) for key in sweep)


@pytest.mark.parametrize("kwargs, error", [
    ({"angles": [90, 0]}, ValueError),
    ({"angles": []}, ValueError),
    ({"quantile": 1.0}, ValueError),
    ({"quantile": True}, ValueError),
    ({"passes": 0}, ValueError),
    ({"seed": -1}, ValueError),
    ({"labels": np.zeros(5, dtype=int)}, ValueError),
])
def test_rotation_sweep_rejects_bad_arguments(lenet, digits, kwargs, error):
    arguments = {"angles": [0, 45], "labels": np.zeros(len(digits), dtype=int)} | kwargs
    with pytest.raises(error):
        rotation_sweep(lenet, digits, arguments.pop("labels"), arguments.pop("angles"), **arguments)


class _Attention(nn.Module):
    """Self-attention over (batch, sequence, features) inputs, with a pooled linear head."""

    def __init__(self, batch_first: bool = True) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(8, 2, dropout=0.5, batch_first=batch_first)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.attention(x, x, x, need_weights=False)[0].mean(dim=1))


class _Recurrent(nn.Module):
    """A stacked recurrent network (LSTM or GRU) with dropout between its layers, and a linear head."""

    def __init__(self, rnn: type[nn.RNNBase]) -> None:
        super().__init__()
        self.rnn = rnn(8, 8, num_layers=2, dropout=0.5, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


class _Encoder(nn.Module):
    """One Transformer encoder layer, then batch norm over the pooled features (which must stay in eval mode)."""

    def __init__(self, batch_first: bool = True) -> None:
        super().__init__()
        self.encoder = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.3, batch_first=batch_first)
        self.norm = nn.BatchNorm1d(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.norm(self.encoder(x).mean(dim=1)))


def _with_batch_norm(inner: nn.Module) -> nn.Module:
    """A model of (batch, 5, 8) sequences: batch norm over the features first, then `inner`."""

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm = nn.BatchNorm1d(8)
            self.inner = inner

        def forward(self, x):
            return self.inner(self.norm(x.transpose(1, 2)).transpose(1, 2))

    return Model()


BUILT_IN_DROPOUT = {
    "multihead attention": lambda: _with_batch_norm(_Attention()),
    "multihead attention, sequence first": lambda: _with_batch_norm(_Attention(batch_first=False)),
    "LSTM": lambda: _with_batch_norm(_Recurrent(nn.LSTM)),
    "GRU": lambda: _with_batch_norm(_Recurrent(nn.GRU)),
    "Transformer encoder layer": lambda: _Encoder(),
    "Transformer encoder layer, sequence first": lambda: _Encoder(batch_first=False),
}


@pytest.mark.parametrize("build", BUILT_IN_DROPOUT.values(), ids=BUILT_IN_DROPOUT.keys())
def test_mc_mode_switches_on_the_dropout_built_into_attention_recurrent_and_transformer_modules(build):
    seed_everything(0)
    model = build()
    x = torch.randn(16, 5, 8)
    with torch.no_grad():
        model.train()(x)  # non-trivial running statistics
    model.eval()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    stats = [(m.running_mean.clone(), m.running_var.clone(), int(m.num_batches_tracked)) for m in norms]
    with torch.no_grad():
        assert torch.equal(model(x), model(x))  # eval mode: deterministic
        # Switching on only the _DropoutNd layers leaves this model's dropout (or some of it) off.
        for module in model.modules():
            if isinstance(module, nn.modules.dropout._DropoutNd):
                module.train()
        if not any(isinstance(m, nn.TransformerEncoderLayer) and not m.self_attn.batch_first
                   for m in model.modules()):  # that one's Dropout layers do drop in the slow path
            assert torch.equal(model(x), model(x))
        model.eval()
        with mc_mode(model):
            assert not torch.equal(model(x), model(x))  # stochastic
            assert not any(m.training for m in norms)
            switched = [m for m in model.modules() if m.training]
            assert switched == [m for m in model.modules() if dropout_rate(m)]  # those and nothing else
        assert not any(m.training for m in model.modules())  # back in eval mode
        assert torch.equal(model(x), model(x))
    for norm, (mean, var, tracked) in zip(norms, stats, strict=True):
        assert torch.equal(norm.running_mean, mean) and torch.equal(norm.running_var, var)
        assert int(norm.num_batches_tracked) == tracked


def test_mc_predict_draws_from_the_built_in_dropout_and_repeats_with_the_seed():
    seed_everything(0)
    model = nn.Sequential(nn.Unflatten(1, (4, 8)), _Recurrent(nn.LSTM)).eval()
    x = np.random.default_rng(0).random((6, 32), dtype=np.float32)
    probs = mc_predict(model, x, passes=3, seed=1)
    assert not np.allclose(probs[0], probs[1])
    np.testing.assert_array_equal(probs, mc_predict(model, x, passes=3, seed=1))


def test_dropout_rate_names_the_modules_whose_flag_switches_dropout():
    assert dropout_rate(nn.Dropout(0.2)) == 0.2 and dropout_rate(nn.AlphaDropout(0.1)) == 0.1
    assert dropout_rate(TorchDropout(0.3)) == 0.3
    assert dropout_rate(nn.MultiheadAttention(8, 2, dropout=0.1)) == 0.1
    assert dropout_rate(nn.LSTM(4, 4, num_layers=3, dropout=0.25)) == 0.25
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        single = nn.GRU(4, 4, num_layers=1, dropout=0.25)
    assert dropout_rate(single) == 0.0  # dropout between layers only: one layer has none
    assert dropout_rate(nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)) == 0.1  # PyTorch's default
    for module in (nn.BatchNorm1d(4), nn.LayerNorm(4), nn.Linear(4, 4), nn.RReLU(), nn.Sequential(nn.Dropout(0.5))):
        assert dropout_rate(module) is None


def test_a_model_whose_only_dropout_is_a_single_layer_lstms_is_refused():
    with pytest.warns(UserWarning):
        model = _Recurrent(nn.LSTM)
        model.rnn = nn.LSTM(8, 8, num_layers=1, dropout=0.5, batch_first=True)
    with pytest.raises(ValueError, match="no dropout layer"), mc_mode(model):
        pass


def test_scaled_dot_product_attention_drops_whatever_the_mode():
    # The functional attention has no mode: a module that calls it must pass dropout_p=0 itself in eval mode,
    # and mc_mode cannot see that dropout from outside.
    q = torch.randn(1, 2, 5, 8)
    assert not torch.equal(F.scaled_dot_product_attention(q, q, q, dropout_p=0.5),
                           F.scaled_dot_product_attention(q, q, q, dropout_p=0.5))
    assert torch.equal(F.scaled_dot_product_attention(q, q, q), F.scaled_dot_product_attention(q, q, q))


def test_class_colours_are_distinct_and_keep_near_pairs_apart_for_five_classes():
    from utils.plotting import PALETTE

    colours = class_colours([1, 2, 3, 7, 8])
    assert list(colours) == [1, 2, 3, 7, 8] and len(set(colours.values())) == 5
    assert not {PALETTE[1], PALETTE[3]} <= set(colours.values())  # orange and vermillion
    assert not {PALETTE[0], PALETTE[5]} <= set(colours.values())  # blue and sky blue
    for bad in ([], [1, 1], list(range(9))):
        with pytest.raises(ValueError):
            class_colours(bad)


def test_ensemble_sweep_averages_the_eval_mode_predictions(lenet, digits):
    labels = np.arange(len(digits)) % 10
    other = copy.deepcopy(lenet)
    with torch.no_grad():
        other[-1].bias += 0.5
    sweep = ensemble_sweep([lenet, other], digits, labels, np.array([0, 90]))
    assert set(sweep) == {"angle", "accuracy", "entropy", "flagged"}
    mean = (eval_predict(lenet, digits) + eval_predict(other, digits)) / 2
    np.testing.assert_allclose(sweep["entropy"][0], entropy(mean).mean(), rtol=1e-6)
    np.testing.assert_allclose(sweep["accuracy"][0], np.mean(mean.argmax(1) == labels))
    assert sweep["flagged"][0] == 1 / 12  # the top one of 12 upright digits
    single = ensemble_sweep([lenet], digits, labels, [0, 90])
    plain = rotation_sweep(lenet, digits, labels, [0, 90], passes=2)
    np.testing.assert_allclose(single["entropy"], plain["eval entropy"], rtol=1e-6)
    np.testing.assert_allclose(single["flagged"], plain["flagged by eval entropy"])


@pytest.mark.parametrize("models, angles", [([], [0, 90]), (["not a model"], [0, 90]), (None, [90, 0])])
def test_ensemble_sweep_rejects_bad_arguments(lenet, digits, models, angles):
    with pytest.raises((TypeError, ValueError)):
        ensemble_sweep([lenet] if models is None else models, digits, np.zeros(len(digits), dtype=int), angles)
