"""Every sweep in the experiment store: its grid of settings, its seeds, and the run function that measures one pair.

`python -m tools.experiments` runs these into `data/results/`, and the chapters read them with
`utils.store.load_results(SWEEPS[name])`. The grids are the laptop scale: the whole store rebuilds on a 2-core
machine within an hour (`make experiments`; the README gives the measured time). Rates are drop rates.
"""

from __future__ import annotations

import dataclasses

from utils.store import Sweep

SEEDS_10 = tuple(range(10))
SEEDS_20 = tuple(range(20))

# The paper's MNIST schedule where it states one (retention 0.8 on inputs and 0.5 on hidden units, momentum rising
# to 0.95, max-norm c = 2), at the 5,000-digit subset's scale: two hidden layers of 256, 20 epochs of 40 updates.
PAPER_MLP = {"dataset": "mnist5k", "layers": 2, "width": 256, "batch_size": 100, "momentum": 0.5,
             "momentum_end": 0.95}
TABLE2_METHODS = {
    "no dropout": {"drop_rate": 0.0, "input_drop_rate": 0.0},
    "dropout": {"drop_rate": 0.5, "input_drop_rate": 0.2},
    "dropout + max-norm": {"drop_rate": 0.5, "input_drop_rate": 0.2, "max_norm": 2.0},
}
# One shared grid for every arm: from below the plain net's best rate to 100 times it (the paper advises dropout
# nets 10-100 times the learning rate of a plain one).
TABLE2_LRS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
RATES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
MNIST1D_SIZES = (100, 500, 1_000, 5_000, 10_000, 50_000)
MNIST5K_SIZES = (100, 500, 1_000, 4_000)
MC_KS = (1, 2, 5, 10, 20, 50, 100)

SWEEPS: dict[str, Sweep] = {
    sweep.name: sweep for sweep in (
        Sweep(
            name="table2",
            title="Table 2 analogue: three methods x one shared learning-rate grid, MNIST 5k",
            run="utils.chapters.paper_sweeps:table2_run",
            grid=tuple({"method": method, "lr": lr} for method in TABLE2_METHODS for lr in TABLE2_LRS),
            seeds=SEEDS_10,
            metrics=("train_error", "val_error", "test_error", "max_unit_norm", "at_radius", "test_correct"),
            parameters={**PAPER_MLP, "epochs": 20, "methods": TABLE2_METHODS, "radius": 2.0},
        ),
        Sweep(
            name="fig9",
            title="Fig. 9 analogue: drop rate with the width fixed, and with the kept units fixed, MNIST 5k",
            run="utils.chapters.paper_sweeps:rate_run",
            grid=tuple({"mode": mode, "rate": rate} for mode in ("fixed width", "fixed kept units")
                       for rate in RATES),
            seeds=SEEDS_10,
            metrics=("width_used", "train_error", "val_error", "test_error"),
            parameters={"dataset": "mnist5k", "layers": 2, "width": 256, "kept": 128, "batch_size": 100, "lr": 0.1,
                        "momentum": 0.9, "epochs": 10, "input_drop_rate": 0.0},
        ),
        Sweep(
            name="fig10_mnist1d",
            title="Fig. 10 analogue on MNIST-1D at the paper's sizes, equal updates at every size",
            run="utils.chapters.paper_sweeps:size_run",
            grid=tuple({"dataset": "mnist1d", "size": n, "method": method} for n in MNIST1D_SIZES
                       for method in ("no dropout", "dropout")),
            seeds=SEEDS_10,
            metrics=("epochs", "updates", "train_error", "test_error"),
            parameters={"layers": 2, "width": 256, "batch_size": 100, "lr": 0.05, "momentum": 0.9,
                        "updates": 8000, "methods": {"no dropout": {}, "dropout": TABLE2_METHODS["dropout"]}},
        ),
        Sweep(
            name="fig10_mnist5k",
            title="Fig. 10 analogue on the 5,000 MNIST digits, equal updates at every size",
            run="utils.chapters.paper_sweeps:size_run",
            grid=tuple({"dataset": "mnist5k", "size": n, "method": method} for n in MNIST5K_SIZES
                       for method in ("no dropout", "dropout")),
            seeds=SEEDS_10,
            metrics=("epochs", "updates", "train_error", "test_error"),
            parameters={"layers": 2, "width": 256, "batch_size": 100, "lr": 0.1, "momentum": 0.9,
                        "updates": 1500, "methods": {"no dropout": {}, "dropout": TABLE2_METHODS["dropout"]}},
        ),
        Sweep(
            name="fig11",
            title="Fig. 11 analogue: Monte-Carlo averaging against weight scaling, a 784-256-256-10 dropout net",
            run="utils.chapters.paper_sweeps:mc_run",
            grid=({"net": "784-256-256-10"},),
            seeds=SEEDS_20,
            metrics=("scaling_error", *(f"mc_error_{k}" for k in MC_KS)),
            parameters={**PAPER_MLP, "epochs": 20, "lr": 0.03, **TABLE2_METHODS["dropout"],
                        "ks": " ".join(map(str, MC_KS))},
        ),
    )
}

# The paper's scale (Srivastava et al., 2014, MNIST appendix, where it states a setting): full MNIST (54,000 training
# digits here, 6,000 held out for validation), three hidden layers of 1,024 ReLUs, retention 0.8 on the inputs and
# 0.5 on hidden units, max-norm c = 2, momentum rising to 0.95, about a million weight updates (1,852 epochs of 540).
# Learning rate and batch size are not stated in the paper: the laptop grid and batch 100 stand in. Run on a GPU:
# `python -m tools.experiments --scale paper` (days on one GPU; `--smoke` checks the code path in a minute).
PAPER_SCALE_MLP = {"dataset": "mnist", "layers": 3, "width": 1024, "batch_size": 100, "momentum": 0.5,
                   "momentum_end": 0.95, "device": "auto"}
PAPER_EPOCHS = 1852
PAPER_SWEEPS: dict[str, Sweep] = {
    sweep.name: sweep for sweep in (
        dataclasses.replace(SWEEPS["table2"], scale="paper",
                            parameters={**PAPER_SCALE_MLP, "epochs": PAPER_EPOCHS, "methods": TABLE2_METHODS,
                                        "radius": 2.0}),
        dataclasses.replace(SWEEPS["fig9"], scale="paper",
                            parameters={**PAPER_SCALE_MLP, "width": 2048, "kept": 256, "momentum_end": 0.95,
                                        "lr": 0.1, "epochs": PAPER_EPOCHS, "input_drop_rate": 0.2}),
        dataclasses.replace(SWEEPS["fig10_mnist1d"], name="fig10", scale="paper",
                            title="Fig. 10 at the paper's scale: full MNIST at the paper's sizes, equal updates",
                            grid=tuple({"dataset": "mnist", "size": n, "method": method} for n in MNIST1D_SIZES
                                       for method in ("no dropout", "dropout")),
                            parameters={**PAPER_SCALE_MLP, "updates": 100_000, "lr": 0.1,
                                        "methods": {"no dropout": {}, "dropout": TABLE2_METHODS["dropout"]}}),
        dataclasses.replace(SWEEPS["fig11"], scale="paper",
                            parameters={**SWEEPS["fig11"].parameters, **PAPER_SCALE_MLP, "epochs": PAPER_EPOCHS}),
    )
}

# Settings that shrink any sweep to seconds, so that a test (and `--smoke`) can run its whole code path.
SMOKE: dict[str, object] = {"dataset": "mnist5k", "width": 8, "kept": 4, "layers": 1, "epochs": 1, "updates": 2,
                            "device": "cpu"}

# The tutorials chapter's comparisons (Keras, run by utils.chapters.tutorials_offline_sweeps): each arm on the same
# seeds, so that the arms pair up seed by seed. MLP and CNN on the 5,000 MNIST digits, validation scored every epoch;
# k-fold cross-validation on the Breast Cancer development set, each seed one repetition with its own folds.
TUTORIAL_MLP = {"dataset": "mnist5k", "hidden": [64, 64], "optimizer": "rmsprop", "lr": 2e-3, "epochs": 10,
                "batch_size": 128}
TUTORIAL_CNN = {"dataset": "mnist5k", "filters": [12, 24], "downsample": "stride", "optimizer": "adam", "lr": 2e-3,
                "epochs": 6, "batch_size": 64}
TUTORIAL_KFOLD = {"configs": {"baseline": {}, "dropout + max-norm": {"drop_rate": 0.2, "input_drop_rate": 0.2,
                                                                    "max_norm": 3.0}},
                  "hidden": [30, 15], "lr": 0.05, "momentum": 0.9, "epochs": 10, "batch_size": 32, "n_splits": 5,
                  "split_seed": 0}


def _epoch_metrics(epochs: int) -> tuple[str, ...]:
    """The metrics of a tutorials image run (see `mlp_run`): per-epoch validation curves, then the summaries."""
    return (*(f"val_acc_{e}" for e in range(1, epochs + 1)), *(f"val_loss_{e}" for e in range(1, epochs + 1)),
            "val_acc_last", "val_acc_best", "best_epoch", "train_acc_fit", "train_acc_off", "test_acc_last",
            "test_acc_best")


SWEEPS |= {
    sweep.name: sweep for sweep in (
        Sweep(
            name="tutorials_mlp",
            title="Tutorials: a 784-64-64-10 Keras MLP with and without dropout 0.2, MNIST 5k",
            run="utils.chapters.tutorials_offline_sweeps:mlp_run",
            grid=({"drop_rate": 0.0}, {"drop_rate": 0.2}),
            seeds=SEEDS_20,
            metrics=_epoch_metrics(TUTORIAL_MLP["epochs"]),
            parameters=TUTORIAL_MLP,
        ),
        Sweep(
            name="tutorials_cnn",
            title="Tutorials: a small Keras CNN with and without dropout 0.5 before its classifier, MNIST 5k",
            run="utils.chapters.tutorials_offline_sweeps:cnn_run",
            grid=({"drop_rate": 0.0}, {"drop_rate": 0.5}),
            seeds=SEEDS_20,
            metrics=_epoch_metrics(TUTORIAL_CNN["epochs"]),
            parameters=TUTORIAL_CNN,
        ),
        Sweep(
            name="tutorials_kfold",
            title="Tutorials: repeated 5-fold cross-validation, baseline against dropout + max-norm, Breast Cancer",
            run="utils.chapters.tutorials_offline_sweeps:kfold_run",
            grid=({"config": "baseline", "scaling": "inside folds"},
                  {"config": "dropout + max-norm", "scaling": "inside folds"},
                  {"config": "dropout + max-norm", "scaling": "all data"}),
            seeds=SEEDS_20,
            metrics=(*(f"fold_acc_{k}" for k in range(1, TUTORIAL_KFOLD["n_splits"] + 1)), "cv_acc"),
            parameters=TUTORIAL_KFOLD,
        ),
        Sweep(
            name="transformer_sites",
            title="Transformers: dropout 0.1 at each site of a 1-block Transformer alone, all, none; MNIST-1D",
            run="utils.chapters.transformers_sweeps:site_run",
            grid=(*({"n_train": 1000, "sites": sites} for sites in (
                "none", "embedding", "attention", "residual", "embedding+attention+residual")),
                  *({"n_train": 4000, "sites": sites} for sites in ("none", "embedding+attention+residual"))),
            seeds=tuple(range(8)),
            metrics=("train_error", "val_error", "test_error"),
            parameters={"rate": 0.1, "layers": 1, "updates": 400, "batch_size": 100, "lr": 3e-3},
        ),
        Sweep(
            name="transformer_overfit",
            title="Transformers: dropout 0.1 at each site alone, all, none, where the plain model memorises 300 "
                  "MNIST-1D signals",
            run="utils.chapters.transformers_sweeps:site_run",
            grid=tuple({"n_train": 300, "sites": sites} for sites in (
                "none", "embedding", "attention", "residual", "embedding+attention+residual")),
            seeds=tuple(range(8)),
            metrics=("train_error", "val_error", "test_error"),
            parameters={"rate": 0.1, "layers": 1, "updates": 600, "batch_size": 50, "lr": 3e-3},
        ),
        Sweep(
            name="recurrent_schemes",
            title="Recurrent: four dropout schemes in a 64-unit LSTM reading MNIST 5k digits row by row, p = 0.25",
            run="utils.chapters.recurrent_sweeps:scheme_run",
            grid=tuple({"scheme": scheme} for scheme in ("none", "naive", "zaremba", "variational")),
            seeds=tuple(range(8)),
            metrics=("train_error", "val_error", "test_error"),
            parameters={"dataset": "mnist5k", "drop_rate": 0.25, "hidden": 64, "epochs": 8, "batch_size": 100,
                        "lr": 3e-3},
        ),
        Sweep(  # pairs seed by seed with recurrent_schemes: same parameters and seeds
            name="recurrent_arms",
            title="Recurrent: per-step input masks with one recurrent mask per sequence, same LSTM and seeds, p = 0.25",
            run="utils.chapters.recurrent_arms:arm_run",
            grid=({"scheme": "recurrent_sequence"},),
            seeds=tuple(range(8)),
            metrics=("train_error", "val_error", "test_error"),
            parameters={"dataset": "mnist5k", "drop_rate": 0.25, "hidden": 64, "epochs": 8, "batch_size": 100,
                        "lr": 3e-3},
        ),
        Sweep(  # the same LSTM and schemes where the plain network overfits: 1,000 digits, many epochs
            name="recurrent_overfit",
            title="Recurrent: four dropout schemes in a 64-unit LSTM on 1,000 MNIST 5k digits read row by row, "
                  "50 epochs, p = 0.25",
            run="utils.chapters.recurrent_overfit:overfit_run",
            grid=tuple({"scheme": scheme} for scheme in ("none", "zaremba", "variational", "naive")),
            seeds=tuple(range(8)),
            metrics=("train_error", "val_error", "test_error", "test_error_mc"),
            parameters={"dataset": "mnist5k", "n_train": 1000, "subset_seed": 0, "drop_rate": 0.25, "hidden": 64,
                        "epochs": 50, "batch_size": 50, "lr": 3e-3},
        ),
        Sweep(  # pairs seed by seed with recurrent_overfit: same parameters, subset and seeds
            name="recurrent_overfit_arm",
            title="Recurrent: per-step input masks with one recurrent mask per sequence, on 1,000 MNIST 5k digits, "
                  "50 epochs, same LSTM and seeds, p = 0.25",
            run="utils.chapters.recurrent_fifth:overfit_arm_run",
            grid=({"scheme": "recurrent_sequence"},),
            seeds=tuple(range(8)),
            metrics=("train_error", "val_error", "test_error", "test_error_mc"),
            parameters={"dataset": "mnist5k", "n_train": 1000, "subset_seed": 0, "drop_rate": 0.25, "hidden": 64,
                        "epochs": 50, "batch_size": 50, "lr": 3e-3},
        ),
        Sweep(
            name="recurrent_rnn",
            title="Recurrent: a 64-unit tanh RNN on 1,000 MNIST 5k digits read row by row, 40 epochs, recurrent "
                  "mask none, per step or per sequence, p = 0.25",
            run="utils.chapters.recurrent_rnn:rnn_run",
            grid=tuple({"mode": mode} for mode in ("none", "step", "sequence")),
            seeds=tuple(range(8)),
            metrics=("train_error", "val_error", "test_error"),
            parameters={"dataset": "mnist5k", "n_train": 1000, "subset_seed": 0, "drop_rate": 0.25, "hidden": 64,
                        "epochs": 40, "batch_size": 50, "lr": 3e-3},
        ),
        Sweep(
            name="convolutional_cnn",
            title="Dropout on feature maps: element-wise, channels or 5x5 blocks, a two-convolution CNN, MNIST 5k",
            run="utils.chapters.convolutional_sweeps:cnn_run",
            grid=({"kind": "none", "rate": 0.0},
                  *({"kind": kind, "rate": 0.1} for kind in ("element", "channel", "block"))),
            seeds=SEEDS_10,
            metrics=("train_error", "val_error", "test_error"),
            parameters={"dataset": "mnist5k", "width": 8, "block_size": 5, "epochs": 5, "batch_size": 64, "lr": 0.05,
                        "momentum": 0.9},
        ),
        Sweep(
            name="convolutional_overfit",
            title="Dropout on feature maps where the CNN memorises 500 MNIST 5k digits: none, element, channel, "
                  "5x5 blocks, p = 0.3",
            run="utils.chapters.convolutional_overfit:overfit_run",
            grid=({"kind": "none", "rate": 0.0},
                  *({"kind": kind, "rate": 0.3} for kind in ("element", "channel", "block"))),
            seeds=tuple(range(16)),
            metrics=("train_error", "val_error", "test_error"),
            parameters={"dataset": "mnist5k", "n_train": 500, "width": 8, "block_size": 5, "epochs": 30,
                        "batch_size": 32, "lr": 0.05, "momentum": 0.9},
        ),
        # Choosing the rate (utils.chapters.choosing_rate_sweeps): interactions of the drop rate, paired seeds.
        Sweep(
            name="rate_batch",
            title="Drop rate x minibatch size, learning rate scaled with the batch, equal epochs, MNIST 5k",
            run="utils.chapters.choosing_rate_sweeps:batch_run",
            grid=tuple({"batch_size": b, "rate": r} for b in (25, 100, 400) for r in (0.0, 0.2, 0.4, 0.6)),
            seeds=tuple(range(8)),
            metrics=("lr", "train_error", "val_error", "test_error"),
            parameters={"dataset": "mnist5k", "layers": 2, "width": 256, "epochs": 10, "base_lr": 0.05,
                        "base_batch": 100, "momentum": 0.9},
        ),
        Sweep(
            name="rate_decay",
            title="Drop rate x L2 weight decay, 1,000 MNIST digits, a 784-256-256-10 MLP",
            run="utils.chapters.choosing_rate_sweeps:decay_run",
            grid=tuple({"rate": r, "weight_decay": w} for r in (0.0, 0.5) for w in (0.0, 3e-3, 3e-2)),
            seeds=tuple(range(8)),
            metrics=("train_error", "val_error", "test_error"),
            parameters={"dataset": "mnist5k", "train_size": 1000, "layers": 2, "width": 256, "epochs": 40,
                        "lr": 0.05, "momentum": 0.9, "batch_size": 100},
        ),
        Sweep(
            name="rate_schedule",
            title="Early and late dropout (Liu et al., 2023): an underfitting and an overfitting MLP",
            run="utils.chapters.choosing_rate_sweeps:schedule_run",
            grid=tuple({"regime": g, "schedule": s} for g in ("underfitting", "overfitting")
                       for s in ("none", "standard", "early", "late")),
            seeds=tuple(range(8)),
            metrics=(*(f"train_loss_{k}" for k in range(1, 11)), *(f"test_error_{k}" for k in range(1, 11))),
            parameters={"switch": 0.25, "batch_size": 100, "momentum": 0.9, "regimes": {
                "underfitting": {"dataset": "mnist1d", "train_size": None, "width": 32, "layers": 2, "epochs": 30,
                                 "lr": 0.05, "rate": 0.1},
                "overfitting": {"dataset": "mnist5k", "train_size": 500, "width": 512, "layers": 2, "epochs": 60,
                                "lr": 0.05, "rate": 0.5}}},
        ),
        Sweep(
            name="rate_length",
            title="Training length: the underfitting MLP of rate_schedule at 1, 2 and 3 times its epochs, MNIST-1D",
            run="utils.chapters.choosing_rate_length:length_run",
            grid=tuple({"arm": a} for a in ("none", "standard")),
            seeds=tuple(range(8)),
            metrics=(*(f"train_loss_{b}x" for b in (1, 2, 3)), *(f"test_error_{b}x" for b in (1, 2, 3))),
            parameters={"dataset": "mnist1d", "width": 32, "layers": 2, "epochs": 30, "budgets": (1, 2, 3),
                        "lr": 0.05, "rate": 0.1, "momentum": 0.9, "batch_size": 100},
        ),
        Sweep(
            name="rate_lr",
            title="Drop rate x learning rate, crossed, the Fig. 9 analogue's MLP (fixed width), MNIST 5k",
            run="utils.chapters.choosing_rate_lr:lr_run",
            grid=tuple({"lr": lr, "rate": r} for lr in (0.025, 0.05, 0.1, 0.2) for r in (0.0, 0.2, 0.4)),
            seeds=tuple(range(12)),
            metrics=("train_error", "val_error", "test_error"),
            parameters={"dataset": "mnist5k", "layers": 2, "width": 256, "epochs": 10, "momentum": 0.9,
                        "batch_size": 100},
        ),
        Sweep(
            name="rate_bn",
            title="Dropout before batch normalisation against after the last BN layer (variance shift), MNIST 5k",
            run="utils.chapters.choosing_rate_sweeps:bn_run",
            grid=({"place": "none", "rate": 0.0}, {"place": "before BN", "rate": 0.2},
                  {"place": "before BN", "rate": 0.5}, {"place": "after last BN", "rate": 0.2},
                  {"place": "after last BN", "rate": 0.5}),
            seeds=tuple(range(8)),
            metrics=("test_error", "test_error_refit", "var_ratio", "var_ratio_predicted"),
            parameters={"dataset": "mnist5k", "layers": 2, "width": 256, "epochs": 10, "lr": 0.05, "momentum": 0.9,
                        "batch_size": 100},
        ),
        Sweep(
            name="rate_late",
            title="Early and late dropout where dropout helps: rate_decay's MLP on 1,000 MNIST 5k digits, p = 0.5",
            run="utils.chapters.choosing_rate_late:late_run",
            grid=tuple({"schedule": s} for s in ("none", "standard", "early", "late")),
            seeds=tuple(range(8)),
            metrics=tuple(f"{m}_{e}" for m in ("train_loss", "val_error", "test_error") for e in range(4, 41, 4)),
            parameters={"dataset": "mnist5k", "train_size": 1000, "layers": 2, "width": 256, "epochs": 40,
                        "every": 4, "lr": 0.05, "momentum": 0.9, "batch_size": 100, "rate": 0.5, "switch": 0.25},
        ),
        Sweep(
            name="rate_early",
            title="Early dropout, step and linear, two rates: rate_schedule's small MLP and a narrower one, MNIST-1D",
            run="utils.chapters.choosing_rate_early:early_run",
            grid=tuple({"network": n, "schedule": "none", "rate": 0.0} for n in ("small", "narrow"))
            + tuple({"network": n, "schedule": s, "rate": r} for n in ("small", "narrow")
                    for s in ("standard", "early", "early_linear") for r in (0.1, 0.3)),
            seeds=tuple(range(12)),
            metrics=(*(f"{split}_{m}_{e}" for split in ("train", "test") for m in ("error", "loss")
                       for e in range(3, 31, 3)), "val_error"),
            parameters={"dataset": "mnist1d", "epochs": 30, "every": 3, "lr": 0.05, "momentum": 0.9,
                        "batch_size": 100, "switch": 0.25,
                        "networks": {"small": {"width": 32, "layers": 2}, "narrow": {"width": 8, "layers": 2}}},
        ),
    )
}
