"""The recurrent chapter's module: masks of each scheme, the LSTM's modes and errors, the memory count, the probes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from utils.chapters.recurrent import (
    error_verdict,
    evaluation_table,
    interval_ends,
    keras_mask_probe,
    memory_survival,
    plot_fit_gap,
    plot_schemes,
    plot_survival,
    power_text,
    results_table,
    torch_between_layers,
)
from utils.chapters.recurrent_arms import ARM_SCHEMES, ArmLSTM, arm_run, check_arm_scheme, train_arm
from utils.chapters.recurrent_overfit import mc_error, overfit_run
from utils.chapters.recurrent_sweeps import (
    SCHEMES,
    MaskedLSTM,
    check_scheme,
    dropout_masks,
    scheme_run,
    train_sequence_classifier,
)
from utils.stats import paired_difference


def test_step_masks_are_fresh_and_sequence_masks_are_shared():
    torch.manual_seed(0)
    fresh = dropout_masks(64, 10, 32, 0.5, "step")
    shared = dropout_masks(64, 10, 32, 0.5, "sequence")
    assert fresh.shape == (64, 10, 32) and shared.shape == (64, 1, 32)
    assert set(fresh.unique().tolist()) == {0.0, 2.0}
    assert not torch.equal(fresh[:, 0], fresh[:, 1])
    assert abs((fresh == 0).float().mean().item() - 0.5) < 0.05


@pytest.mark.parametrize("bad", [{"mode": "time"}, {"drop_rate": 1.0}, {"steps": 0}])
def test_dropout_masks_reject_bad_settings(bad):
    settings = {"batch": 2, "steps": 3, "size": 4, "drop_rate": 0.5, "mode": "step"} | bad
    with pytest.raises(ValueError):
        dropout_masks(**settings)


def test_check_scheme_names_the_schemes():
    assert check_scheme("zaremba") == "zaremba"
    with pytest.raises(ValueError, match="variational"):
        check_scheme("gal")


def test_masked_lstm_rejects_rates_that_do_not_fit_the_scheme_and_wrong_inputs():
    with pytest.raises(ValueError, match="scheme 'none'"):
        MaskedLSTM(4, 3, 5, 2, scheme="none", drop_rate=0.5)
    with pytest.raises(ValueError, match="scheme 'none'"):
        MaskedLSTM(4, 3, 5, 2, scheme="naive", drop_rate=0.0)
    with pytest.raises(ValueError, match="12"):
        MaskedLSTM(4, 3, 5, 2)(torch.zeros(2, 10))


def _record(model: MaskedLSTM, x: torch.Tensor) -> list[torch.Tensor]:
    """The masked recurrent inputs h_{t-1} * m that the model feeds its recurrent weights, step by step."""
    seen: list[torch.Tensor] = []
    model.recurrent_weights.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0].detach()))
    model(x)
    return seen


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_each_scheme_masks_where_its_table_says(scheme):
    torch.manual_seed(1)
    model = MaskedLSTM(6, 3, 16, 2, scheme=scheme, drop_rate=0.0 if scheme == "none" else 0.5).train()
    x = torch.rand(8, 18) + 0.5
    zeros = [(h == 0) for h in _record(model, x)[1:]]  # h_0 = 0, so from step 2 on
    recurrent = SCHEMES[scheme]["recurrent"]
    if recurrent is None:
        assert not any(z.any() for z in zeros)
    elif recurrent == "sequence":
        assert all(torch.equal(z, zeros[0]) for z in zeros) and zeros[0].any()
    else:
        assert any(not torch.equal(z, zeros[0]) for z in zeros)


@pytest.mark.parametrize("scheme", ["naive", "zaremba", "variational"])
def test_eval_mode_is_deterministic_and_training_mode_is_not(scheme):
    torch.manual_seed(2)
    model = MaskedLSTM(5, 4, 8, 3, scheme=scheme, drop_rate=0.5)
    x = torch.rand(4, 20)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


def test_training_is_repeatable_and_learns_a_toy_task():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    x = (rng.normal(0, 0.1, (200, 12)) + y[:, None]).astype(np.float32)
    runs = [train_sequence_classifier((x, y), steps=4, scheme="variational", drop_rate=0.2, seed=3, hidden=8,
                                      epochs=3, batch_size=50, lr=0.02) for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(*(r.state_dict().values() for r in runs), strict=True))
    assert not runs[0].training
    assert (runs[0](torch.from_numpy(x)).argmax(1).numpy() == y).mean() > 0.9


def test_training_rejects_inputs_that_do_not_split_into_steps():
    with pytest.raises(ValueError, match="5 equal steps"):
        train_sequence_classifier((np.zeros((4, 12), np.float32), np.zeros(4, int)), steps=5, scheme="none",
                                  drop_rate=0.0, seed=0)


def test_scheme_run_returns_the_sweeps_metrics():
    result = scheme_run({"scheme": "zaremba", "drop_rate": 0.25, "dataset": "mnist5k", "hidden": 4, "epochs": 1,
                         "batch_size": 2000, "lr": 1e-3}, 0)
    assert set(result) == {"train_error", "val_error", "test_error"}
    assert all(0.0 <= v <= 1.0 for v in result.values())


def test_memory_survives_q_to_the_t_per_step_and_q_per_sequence():
    step = memory_survival(6, 0.5, "step", n_units=20_000)
    sequence = memory_survival(6, 0.5, "sequence", n_units=20_000)
    assert np.allclose(step, 0.5 ** np.arange(1, 7), rtol=0.15)
    assert np.allclose(sequence, sequence[0]) and abs(sequence[0] - 0.5) < 0.02
    with pytest.raises(ValueError, match="mode"):
        memory_survival(3, 0.5, "batch")


def test_torch_between_layers_matches_the_library_exactly():
    torch.manual_seed(0)
    run = torch_between_layers(nn.LSTM(3, 5, num_layers=2, dropout=0.5), torch.randn(4, 2, 3), seed=7)
    assert torch.allclose(run["library"], run["by_hand"], atol=1e-6)
    with pytest.raises(ValueError, match="two-layer"):
        torch_between_layers(nn.LSTM(3, 5, num_layers=3), torch.randn(4, 2, 3), seed=0)


@pytest.mark.parametrize("recurrent", [False, True])
def test_keras_masks_are_one_per_sequence_and_scaled(recurrent):
    probe = keras_mask_probe(0.5, recurrent=recurrent, steps=4, units=6, batch=5)
    kept = probe["kept"]
    assert (kept == kept[:, :1]).all() and 0 < kept.mean() < 1
    assert np.allclose(probe["scale"], 2.0, rtol=1e-4)


def test_keras_probe_rejects_a_zero_rate():
    with pytest.raises(ValueError, match="above 0"):
        keras_mask_probe(0.0, recurrent=False)


def test_the_figures_draw_and_check_their_inputs():
    import matplotlib.pyplot as plt

    plt.close(plot_schemes())
    steps = np.arange(1, 4)
    plt.close(plot_survival(steps, {"step": 0.5 ** steps, "sequence": np.full(3, 0.5)}, 0.5, marked=2))
    with pytest.raises(ValueError):
        plot_survival(steps, {"time": steps}, 0.5)
    two = {"none": np.array([0.0, 0.01]), "naive": np.array([0.02, 0.03])}
    plt.close(plot_fit_gap(two, {name: v + 0.1 for name, v in two.items()}, {"none": "a", "naive": "b"}))
    with pytest.raises(ValueError):
        plot_fit_gap(two, {"none": np.array([0.1, 0.2])}, {"none": "a", "naive": "b"})


def _toy_task(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    return (rng.normal(0, 0.1, (n, 12)) + y[:, None]).astype(np.float32), y


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_train_arm_gives_the_sweeps_model_for_its_schemes(scheme):
    settings = {"steps": 4, "scheme": scheme, "drop_rate": 0.0 if scheme == "none" else 0.3, "seed": 5, "hidden": 6,
                "epochs": 2, "batch_size": 16}
    arm, sweep = train_arm(_toy_task(), **settings), train_sequence_classifier(_toy_task(), **settings)
    assert all(torch.equal(a, b) for a, b in zip(arm.state_dict().values(), sweep.state_dict().values(), strict=True))


def test_the_new_arm_masks_inputs_per_step_and_the_recurrent_state_per_sequence():
    assert ARM_SCHEMES["recurrent_sequence"] == {"inputs": "step", "recurrent": "sequence", "output": "step"}
    torch.manual_seed(3)
    model = ArmLSTM(6, 3, 16, 2, scheme="recurrent_sequence", drop_rate=0.5).train()
    seen: list[torch.Tensor] = []
    model.input_weights.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0].detach()))
    zeros = [(h == 0) for h in _record(model, torch.rand(8, 18) + 0.5)[1:]]
    assert all(torch.equal(z, zeros[0]) for z in zeros) and zeros[0].any()  # one recurrent mask
    inputs = seen[0] == 0  # (batch, steps, features): every step's masked input at once
    assert any(not torch.equal(inputs[:, t], inputs[:, 0]) for t in range(1, 6))  # fresh input masks
    x = torch.rand(2, 18)
    model.eval()
    assert torch.equal(model(x), model(x))


def test_the_new_arm_rejects_unknown_schemes_and_rates_that_do_not_fit():
    assert check_arm_scheme("recurrent_sequence") == "recurrent_sequence"
    with pytest.raises(ValueError, match="recurrent_sequence"):
        check_arm_scheme("gal")
    with pytest.raises(ValueError, match="'recurrent_sequence' and drop_rate 0"):
        ArmLSTM(4, 3, 5, 2, scheme="recurrent_sequence", drop_rate=0.0)
    with pytest.raises(ValueError, match="recurrent_sequence"):
        train_arm(_toy_task(), steps=4, scheme="both", drop_rate=0.3, seed=0)


def test_arm_run_returns_the_sweeps_metrics():
    result = arm_run({"scheme": "recurrent_sequence", "drop_rate": 0.25, "dataset": "mnist5k", "hidden": 4,
                      "epochs": 1, "batch_size": 2000, "lr": 1e-3}, 0)
    assert set(result) == {"train_error", "val_error", "test_error"}
    assert all(0.0 <= v <= 1.0 for v in result.values())


OVERFIT_TINY = {"scheme": "variational", "drop_rate": 0.25, "dataset": "mnist5k", "n_train": 30, "subset_seed": 0,
                "hidden": 4, "epochs": 1, "batch_size": 10, "lr": 1e-3}


def test_overfit_run_trains_on_the_subset_and_returns_the_sweeps_metrics():
    result = overfit_run(OVERFIT_TINY, 0)
    assert set(result) == {"train_error", "val_error", "test_error", "test_error_mc"}
    assert all(0.0 <= v <= 1.0 for v in result.values())
    assert result["train_error"] * 30 == pytest.approx(round(result["train_error"] * 30))  # 30 digits
    assert overfit_run(OVERFIT_TINY, 0) == result  # same seed, same run


@pytest.mark.parametrize("change", [{"scheme": "gal"}, {"n_train": 5}, {"n_train": 30.5}, {"subset_seed": -1}])
def test_overfit_run_rejects_bad_settings(change):
    with pytest.raises((TypeError, ValueError)):
        overfit_run({**OVERFIT_TINY, **change}, 0)


def test_interval_ends_writes_no_signed_zero_and_a_real_minus():
    text = interval_ends(paired_difference(np.array([0.0, 0.002, 0.004, 0.001, 0.003]), np.zeros(5)))
    assert text.startswith("0.0 to +") and "-" not in text
    far = interval_ends(paired_difference(np.array([-0.05, -0.04, -0.06, -0.05, -0.045]), np.zeros(5)), "points")
    assert far.startswith("\u2212") and far.endswith(" points")
    with pytest.raises(TypeError):
        interval_ends("not a difference")


def test_power_text_writes_superscript_powers_of_ten():
    assert power_text(3.2e-13) == "3.2 × 10⁻¹³"
    assert power_text(4600.0, 0) == "5 × 10³"
    with pytest.raises(ValueError):
        power_text(0.0)


def test_error_verdict_reads_lower_error_as_better():
    lower = paired_difference(np.array([0.05, 0.06, 0.04]), np.array([0.10, 0.12, 0.11]))
    same = paired_difference(np.array([0.10, 0.12, 0.11]), np.array([0.11, 0.11, 0.11]))
    assert error_verdict(lower) == "resolved better"
    assert error_verdict(paired_difference(np.array([0.10, 0.12, 0.11]), np.array([0.05, 0.06, 0.04]))) == (
        "resolved worse")
    assert error_verdict(same) == "not resolved"


def test_results_table_has_a_row_per_arm_and_a_blank_baseline_interval():
    train = {"none": np.array([0.0, 0.01, 0.0]), "naive": np.array([0.02, 0.03, 0.02])}
    test = {"none": np.array([0.10, 0.12, 0.11]), "naive": np.array([0.05, 0.06, 0.04])}
    table = results_table(train, test, {"none": "no dropout", "naive": "naive"})
    assert list(table.index) == ["no dropout", "naive"]
    assert table.loc["no dropout", "verdict"] == "" and table.loc["naive", "verdict"] == "resolved better"
    assert table.loc["naive", "test error, %"] == "5.0"
    assert table.loc["naive"].iloc[2] == interval_ends(paired_difference(test["naive"], test["none"]))
    with pytest.raises(KeyError):
        results_table(train, test, {"none": "no dropout"})
    with pytest.raises(KeyError):
        results_table(train, test, {"none": "a", "naive": "b"}, baseline="zaremba")
    with pytest.raises(ValueError):
        results_table({"none": train["none"]}, test, {"none": "a", "naive": "b"})


def test_mc_error_averages_masked_passes_and_leaves_the_random_state_alone():
    torch.manual_seed(3)
    x, y = torch.rand(40, 12), np.arange(40) % 2
    plain = MaskedLSTM(4, 3, 8, 2).eval()
    single = float((plain(x).argmax(1).numpy() != y).mean())
    assert mc_error(plain, x.numpy(), y, passes=3) == single  # no masks: every pass is the same
    masked = MaskedLSTM(4, 3, 8, 2, scheme="variational", drop_rate=0.5).eval()
    before = torch.random.get_rng_state()
    first = mc_error(masked, x.numpy(), y, passes=5, seed=1)
    assert torch.equal(torch.random.get_rng_state(), before) and not masked.training
    assert mc_error(masked, x.numpy(), y, passes=5, seed=1) == first  # the seed fixes the masks
    with pytest.raises(ValueError):
        mc_error(masked, x.numpy(), y, passes=0)


def test_evaluation_table_sets_one_pass_against_the_average_over_masks():
    test = {"none": np.array([0.10, 0.12, 0.11]), "naive": np.array([0.08, 0.09, 0.085])}
    test_mc = {"none": test["none"], "naive": np.array([0.05, 0.06, 0.054])}
    labels = {"none": "no dropout", "naive": "naive"}
    table = evaluation_table(test, test_mc, labels)
    assert list(table.index) == ["naive"]  # the baseline has no masks
    assert table.loc["naive", "verdict on one pass"] == "one pass errs more"
    assert table.loc["naive"].iloc[0] == interval_ends(paired_difference(test["naive"], test_mc["naive"]))
    assert table.loc["naive", "verdict over masks"] == "resolved better"
    wide = results_table(test, test, labels, test_mc=test_mc)
    assert wide.loc["naive", "test error over masks, %"] == "5.5"
    with pytest.raises(ValueError):
        evaluation_table(test, {"none": test["none"]}, labels)
    with pytest.raises(KeyError):
        evaluation_table(test, test_mc, labels, baseline="zaremba")


def test_rnn_masks_only_the_recurrent_state_and_trains():
    from utils.chapters.recurrent_rnn import RecurrentMaskRNN, rnn_run, train_rnn

    x = torch.rand(3, 12)
    for mode in ("step", "sequence"):
        model = RecurrentMaskRNN(4, 3, 5, 2, mode=mode, drop_rate=0.5).train()
        assert not torch.equal(model(x), model(x))  # masks are drawn in training mode
        model.eval()
        assert torch.equal(model(x), model(x))
    with pytest.raises(ValueError, match="mode"):
        RecurrentMaskRNN(4, 3, 5, 2, mode="gal", drop_rate=0.5)
    with pytest.raises(ValueError, match="drop_rate"):
        RecurrentMaskRNN(4, 3, 5, 2, mode="none", drop_rate=0.5)
    with pytest.raises(ValueError, match="rows"):
        RecurrentMaskRNN(4, 3, 5, 2)(torch.rand(3, 11))
    rng = np.random.default_rng(0)
    data = (rng.random((20, 12)).astype(np.float32), rng.integers(0, 2, 20))
    first = train_rnn(data, steps=4, mode="step", drop_rate=0.25, seed=1, hidden=5, epochs=1, batch_size=10)
    second = train_rnn(data, steps=4, mode="step", drop_rate=0.25, seed=1, hidden=5, epochs=1, batch_size=10)
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters(), strict=True))
    with pytest.raises(ValueError, match="equal steps"):
        train_rnn(data, steps=5, mode="none", drop_rate=0.0, seed=1)
    settings = {"mode": "none", "drop_rate": 0.25, "dataset": "digits", "n_train": 50, "subset_seed": 0,
                "hidden": 4, "epochs": 1, "batch_size": 25, "lr": 1e-2}
    result = rnn_run(settings, 0)
    assert set(result) == {"train_error", "val_error", "test_error"}
    assert all(0 <= value <= 1 for value in result.values())


def test_paired_forest_draws_each_evaluation_and_checks_its_rows():
    import matplotlib.pyplot as plt

    from utils.chapters.recurrent import plot_paired_forest

    first = paired_difference(np.array([0.08, 0.09, 0.085]), np.array([0.10, 0.12, 0.11]))
    second = paired_difference(np.array([0.07, 0.08, 0.075]), np.array([0.10, 0.12, 0.11]))
    fig = plot_paired_forest({"naive": {"one pass": first, "over masks": second},
                              "Zaremba": {"one pass": second, "over masks": first}})
    assert len(fig.axes[0].get_yticklabels()) == 2
    plt.close(fig)
    with pytest.raises(ValueError):
        plot_paired_forest({"naive": {"one pass": first}, "Zaremba": {"over masks": first}})
    with pytest.raises(TypeError):
        plot_paired_forest({"naive": {"one pass": 0.1}})


def test_interval_ends_takes_a_number_of_decimals():
    diff = paired_difference(np.array([0.10, 0.12, 0.11]), np.array([0.10, 0.121, 0.11]))
    low, high = interval_ends(diff, digits=2).split(" to ")
    assert all(len(end.split(".")[1]) == 2 for end in (low, high))
    with pytest.raises(ValueError):
        interval_ends(diff, digits=-1)
