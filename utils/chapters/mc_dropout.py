"""Monte-Carlo dropout in PyTorch: T stochastic passes with only the dropout layers on, and the spread measures.

Gal & Ghahramani (2016) keep dropout switched on at test time, average the softmax outputs of T passes (the
predictive mean) and read the model's uncertainty off how much the passes disagree. Three details matter:

- Only the modules that apply dropout may be in training mode. `model.train()` would also put batch normalisation
  in training mode, so that it normalises with the statistics of the test batch (a prediction then depends on which
  other examples share its batch) and overwrites its running statistics with them. `mc_mode` switches on dropout
  alone.
- Not all of PyTorch's dropout lives in dropout layers. `nn.MultiheadAttention(dropout=...)` drops attention
  weights, and `nn.LSTM`/`nn.GRU`/`nn.RNN(dropout=...)` drop between stacked layers (not after the last), each
  reading its own `training` flag; `nn.TransformerEncoderLayer` in eval mode may take a fused "fast path" (batch_first,
  autograd off) that skips all of its dropout. Searching for `_DropoutNd` finds none of these: `dropout_layers`
  finds them all. Dropout that a custom module applies with `F.dropout(..., training=self.training)` or
  `F.scaled_dot_product_attention(..., dropout_p=...)` (which drops whenever dropout_p > 0, whatever the mode) is
  invisible from outside and must be handled by that module.
- Every layer before the first dropout layer of an `nn.Sequential` is deterministic in eval mode, so `mc_predict`
  runs that part once and repeats only the rest; the results are the same as T full passes with the same seed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from numbers import Real

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from utils.checks import check_count, check_probs, check_seed
from utils.plotting import PALETTE
from utils.torch_dropout import TorchDropout

# Every PyTorch dropout layer (Dropout, Dropout1d/2d/3d, AlphaDropout, FeatureAlphaDropout) derives from
# _DropoutNd; the book's TorchDropout does not. Neither class covers the dropout built into attention, recurrent
# and Transformer modules: see `dropout_rate`.
DROPOUT_TYPES: tuple[type[nn.Module], ...] = (nn.modules.dropout._DropoutNd, TorchDropout)


def dropout_rate(module: nn.Module) -> float | None:
    """The drop rate that `module`'s own `training` flag switches on, or None if its flag switches no dropout.

    Dropout layers: their rate. `nn.MultiheadAttention`: its `dropout` (on the attention weights). `nn.LSTM`,
    `nn.GRU`, `nn.RNN`: their `dropout`, applied between stacked layers only, so 0 for a single layer.
    `nn.TransformerEncoderLayer`: the largest rate inside it, because in eval mode, with autograd off and
    batch_first=True, it runs a fused path that skips all of its dropout. Batch normalisation and every other
    module: None.
    Chapter: mc_dropout
    """
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return float(module.p)
    if isinstance(module, TorchDropout):
        return float(module.rate)
    if isinstance(module, nn.MultiheadAttention):
        return float(module.dropout)
    if isinstance(module, nn.RNNBase):
        return float(module.dropout) if module.num_layers > 1 else 0.0
    if isinstance(module, nn.TransformerEncoderLayer):
        inner = [dropout_rate(child) for child in module.modules() if child is not module]
        return max((rate for rate in inner if rate is not None), default=0.0)
    return None


def dropout_layers(model: nn.Module) -> list[nn.Module]:
    """Return every module inside `model` (itself included) whose `training` flag switches dropout on.

    These are the dropout layers and the attention, recurrent and Transformer-encoder modules of `dropout_rate`,
    whatever their rate, in the order `model.modules()` gives.
    Chapter: mc_dropout
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return [module for module in model.modules() if dropout_rate(module) is not None]


def _active_dropout_layers(model: nn.Module) -> list[nn.Module]:
    """The dropout modules with a positive rate; raise when there are none, as every pass would then be equal."""
    layers = [layer for layer in dropout_layers(model) if dropout_rate(layer) > 0]
    if not layers:
        raise ValueError("the model has no dropout layer with a positive rate, so all Monte-Carlo passes would be "
                         "identical; MC dropout needs a model trained with dropout")
    return layers


@contextmanager
def mc_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put `model` in eval mode with only its dropout modules in training mode; restore every module's mode on exit.

    Switched on (each module's own flag, not its children's): the modules of `dropout_layers` with a positive rate.
    Batch normalisation and every other module stay in eval mode.
    Chapter: mc_dropout
    """
    layers = _active_dropout_layers(model)
    modes = {module: module.training for module in model.modules()}
    model.eval()
    for layer in layers:
        layer.training = True  # this module only: .train() would also switch its submodules
    try:
        yield model
    finally:
        for module, training in modes.items():
            module.training = training


def _inputs(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Return `x` as a float32 tensor with at least one example, or raise."""
    inputs = torch.as_tensor(np.asarray(x, dtype=np.float32)) if not isinstance(x, torch.Tensor) else x.float()
    if inputs.ndim < 2 or len(inputs) == 0:
        raise ValueError(f"x must hold at least one example along its first axis, got shape {tuple(inputs.shape)}")
    return inputs


def _split_at_first_dropout(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """(deterministic prefix, stochastic rest) of an nn.Sequential; (identity, model) for any other module."""
    if isinstance(model, nn.Sequential):
        for index, layer in enumerate(model):
            if dropout_layers(layer):  # a dropout layer, or a block holding one: randomness starts here
                return model[:index], model[index:]
    return nn.Identity(), model


@torch.no_grad()
def mc_predict(model: nn.Module, x: np.ndarray | torch.Tensor, passes: int = 50, *, seed: int = 0) -> np.ndarray:
    """Softmax outputs of `passes` forward passes with only dropout on: an array of shape (passes, examples, classes).

    The masks come from `seed` (PyTorch's global random state is left as it was); the model's modes are restored.
    Chapter: mc_dropout
    """
    passes = check_count(passes, "passes")
    seed = check_seed(seed)
    inputs = _inputs(x)
    prefix, rest = _split_at_first_dropout(model)
    with mc_mode(model), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        features = prefix(inputs)
        probs = torch.stack([torch.softmax(rest(features), dim=-1) for _ in range(passes)])
    return probs.numpy()


@torch.no_grad()
def eval_predict(model: nn.Module, x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Softmax outputs of one pass in eval mode (dropout off: the weight-scaling prediction).

    The result has shape (examples, classes).
    Chapter: mc_dropout
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    was_training = model.training
    model.eval()
    try:
        return torch.softmax(model(_inputs(x)), dim=-1).numpy()
    finally:
        model.train(was_training)


def _entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in nats over the last axis, with 0 log 0 = 0."""
    return 0.0 - np.sum(p * np.log(np.where(p > 0, p, 1.0)), axis=-1)  # 0.0 - ...: +0.0, never -0.0


def entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each probability vector of `probs`, shape (examples, classes), per example.

    Applied to the eval-mode softmax (`eval_predict`) it is the plain network's own uncertainty: the baseline that
    the Monte-Carlo measures have to beat.
    Chapter: mc_dropout
    """
    return _entropy(check_probs(probs, ndim=2))


def predictive_mean(probs: np.ndarray) -> np.ndarray:
    """The MC prediction: the softmax outputs averaged over the passes, shape (examples, classes).

    `probs` has shape (passes, examples, classes), as `mc_predict` returns it.
    Chapter: mc_dropout
    """
    return check_probs(probs, ndim=3).mean(axis=0)


def predictive_entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy (nats) of the predictive mean, per example: high when the averaged prediction is unsure.

    Chapter: mc_dropout
    """
    return _entropy(check_probs(probs, ndim=3).mean(axis=0))


def mutual_information(probs: np.ndarray) -> np.ndarray:
    """Predictive entropy minus the passes' mean entropy (nats), per example: high when the passes disagree.

    Chapter: mc_dropout
    """
    return _mutual_information(check_probs(probs, ndim=3))


def _mutual_information(probs: np.ndarray) -> np.ndarray:
    """`mutual_information` of probabilities already checked."""
    return np.maximum(_entropy(probs.mean(axis=0)) - _entropy(probs).mean(axis=0), 0.0)


def softmax_variance(probs: np.ndarray) -> np.ndarray:
    """Variance of each class probability across the passes, summed over the classes, per example.

    Chapter: mc_dropout
    """
    return check_probs(probs, ndim=3).var(axis=0).sum(axis=-1)


def spread_measures(probs: np.ndarray) -> dict[str, np.ndarray]:
    """The three spread measures of `probs`, per example, keyed 'entropy', 'mutual information', 'variance'.

    Chapter: mc_dropout
    """
    probs = check_probs(probs, ndim=3)
    return {"entropy": _entropy(probs.mean(axis=0)), "mutual information": _mutual_information(probs),
            "variance": probs.var(axis=0).sum(axis=-1)}


def rotate_images(x: np.ndarray, angle: float, image_shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    """Rotate flattened images by `angle` degrees (counter-clockwise) about their centres; flat rows in [0, 1] back.

    Chapter: mc_dropout
    """
    if isinstance(angle, bool) or not isinstance(angle, Real):
        raise TypeError(f"angle must be a real number of degrees, got {type(angle).__name__}: {angle!r}")
    x = np.asarray(x, dtype=np.float32)
    height, width = image_shape
    if x.ndim != 2 or x.shape[1] != height * width:
        raise ValueError(f"x must be flat images of shape (n, {height * width}), got shape {x.shape}")
    images = x.reshape(len(x), height, width)
    rotated = ndimage.rotate(images, float(angle), axes=(2, 1), reshape=False, order=1, mode="constant", cval=0.0)
    return np.clip(rotated, 0.0, 1.0).reshape(len(x), -1).astype(np.float32)


def _labels(labels: np.ndarray, n: int, n_classes: int) -> np.ndarray:
    """`labels` as a 1-D integer array of n classes in [0, n_classes), or a clear error."""
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {n} integer classes, one per example, got {labels.dtype} of shape "
                         f"{labels.shape}")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}), got values from {labels.min()} to {labels.max()}")
    return labels


def prediction_scores(probs: np.ndarray, eval_probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy and cross-entropy of the MC mean, of the eval-mode prediction and of one pass, and their agreement.

    `probs` holds the passes, shape (passes, examples, classes), as `mc_predict` returns them; `eval_probs` the
    eval-mode softmax, shape (examples, classes), as `eval_predict` returns it; `labels` the true classes. The keys
    are 'MC accuracy', 'eval accuracy', 'one-pass accuracy' (the first pass alone), 'MC cross-entropy', 'eval
    cross-entropy' (mean negative log-probability of the true class, in nats, a probability below 1e-12 counting as
    1e-12) and 'agreement' (the share of examples on which the MC mean and eval mode predict the same class).
    Chapter: mc_dropout
    """
    probs, eval_probs = check_probs(probs, ndim=3), check_probs(eval_probs, ndim=2)
    if probs.shape[1:] != eval_probs.shape:
        raise ValueError(f"probs {probs.shape} and eval_probs {eval_probs.shape} must describe the same examples "
                         "and classes")
    labels = _labels(labels, *eval_probs.shape)
    mean, rows = probs.mean(axis=0), np.arange(len(labels))

    def cross_entropy(p: np.ndarray) -> float:
        return float(-np.mean(np.log(np.maximum(p[rows, labels], 1e-12))))

    return {"MC accuracy": float(np.mean(mean.argmax(1) == labels)),
            "eval accuracy": float(np.mean(eval_probs.argmax(1) == labels)),
            "one-pass accuracy": float(np.mean(probs[0].argmax(1) == labels)),
            "MC cross-entropy": cross_entropy(mean), "eval cross-entropy": cross_entropy(eval_probs),
            "agreement": float(np.mean(mean.argmax(1) == eval_probs.argmax(1)))}


# The uncertainty scores that rotation_sweep compares: the plain network's own, and the two Monte-Carlo ones.
UNCERTAINTY_SCORES: tuple[str, ...] = ("eval entropy", "entropy", "mutual information")


def _check_sweep(angles: np.ndarray, quantile: float) -> np.ndarray:
    """Return `angles` as a 1-D float array starting at 0 (the upright digits set the alarm thresholds), or raise;
    check that `quantile` lies strictly between 0 and 1."""
    angles = np.asarray(angles, dtype=np.float64)
    if angles.ndim != 1 or len(angles) == 0 or angles[0] != 0:
        raise ValueError(f"angles must be a 1-D array of degrees starting at 0 (the upright digits set the alarm "
                         f"thresholds), got {angles!r}")
    if isinstance(quantile, bool) or not isinstance(quantile, Real) or not 0 < quantile < 1:
        raise ValueError(f"quantile must be a number strictly between 0 and 1 (e.g. 0.95), got {quantile!r}")
    return angles


def rotation_sweep(model: nn.Module, x: np.ndarray, labels: np.ndarray, angles: np.ndarray, *, passes: int = 50,
                   seed: int = 0, quantile: float = 0.95) -> dict[str, np.ndarray]:
    """Rotate the digits by each angle and measure the MC prediction and the eval-mode network on them, per angle.

    Returns arrays over the angles, keyed 'angle', 'accuracy' (of the MC mean of `passes` passes), 'eval accuracy',
    the mean over the digits of each score in UNCERTAINTY_SCORES ('eval entropy': the eval-mode softmax's; 'entropy'
    and 'mutual information': the MC passes'), 'flagged by <score>' (the share of digits whose score exceeds the
    alarm threshold, its `quantile` quantile on the upright digits) and 'low-spread errors' (the share that the MC
    mean gets wrong while their mutual information does not exceed its threshold; 'low-entropy eval errors' likewise
    for the eval-mode prediction and its entropy). The first angle must be 0, as the
    thresholds come from it: every score flags the same share of the upright digits, about 1 - quantile. Angle i
    draws its masks from seed + i.
    Chapter: mc_dropout
    """
    angles = _check_sweep(angles, quantile)
    passes = check_count(passes, "passes")
    seed = check_seed(seed)
    check_seed(seed + len(angles) - 1)
    x = np.asarray(x, dtype=np.float32)
    rows: list[dict[str, float]] = []
    thresholds: dict[str, float] = {}
    for index, angle in enumerate(angles):
        rotated = rotate_images(x, float(angle))
        probs = mc_predict(model, rotated, passes, seed=seed + index)
        eval_probs = eval_predict(model, rotated)
        if index == 0:
            labels = _labels(labels, len(x), eval_probs.shape[1])
        spread = spread_measures(probs)
        scores = {"eval entropy": _entropy(eval_probs), "entropy": spread["entropy"],
                  "mutual information": spread["mutual information"]}
        if index == 0:
            thresholds = {name: float(np.quantile(values, quantile)) for name, values in scores.items()}
        wrong = probs.mean(axis=0).argmax(1) != labels
        quiet = scores["mutual information"] <= thresholds["mutual information"]
        eval_wrong = eval_probs.argmax(1) != labels
        eval_quiet = scores["eval entropy"] <= thresholds["eval entropy"]
        rows.append({"angle": float(angle), "accuracy": 1.0 - float(wrong.mean()),
                     "eval accuracy": float(np.mean(eval_probs.argmax(1) == labels))}
                    | {name: float(values.mean()) for name, values in scores.items()}
                    | {f"flagged by {name}": float(np.mean(values > thresholds[name]))
                       for name, values in scores.items()}
                    | {"low-spread errors": float(np.mean(wrong & quiet)),
                       "low-entropy eval errors": float(np.mean(eval_wrong & eval_quiet))})
    return {key: np.array([row[key] for row in rows]) for key in rows[0]}


def ensemble_sweep(models: Sequence[nn.Module], x: np.ndarray, labels: np.ndarray, angles: np.ndarray, *,
                   quantile: float = 0.95) -> dict[str, np.ndarray]:
    """Rotate the digits by each angle and score a deep ensemble: the mean of the models' eval-mode predictions.

    Returns arrays over the angles, keyed 'angle', 'accuracy', 'entropy' (the mean over the digits of the entropy of
    the averaged prediction) and 'flagged' (the share of digits whose entropy exceeds its `quantile` quantile on the
    upright digits, the first angle, which must be 0), as `rotation_sweep` does for one network.
    Chapter: mc_dropout
    """
    models = list(models)
    if not models or not all(isinstance(m, nn.Module) for m in models):
        raise TypeError("models must be a non-empty sequence of PyTorch modules")
    angles = _check_sweep(angles, quantile)
    x = np.asarray(x, dtype=np.float32)
    rows: list[dict[str, float]] = []
    threshold = 0.0
    for index, angle in enumerate(angles):
        rotated = rotate_images(x, float(angle))
        probs = np.mean([eval_predict(m, rotated) for m in models], axis=0)
        if index == 0:
            labels = _labels(labels, len(x), probs.shape[1])
        scores = _entropy(probs)
        if index == 0:
            threshold = float(np.quantile(scores, quantile))
        rows.append({"angle": float(angle), "accuracy": float(np.mean(probs.argmax(1) == labels)),
                     "entropy": float(scores.mean()), "flagged": float(np.mean(scores > threshold))})
    return {key: np.array([row[key] for row in rows]) for key in rows[0]}


# The Okabe-Ito colours in an order that keeps near pairs apart: vermillion (near orange) and sky blue (near blue)
# come only sixth and seventh, so a figure with up to five classes never holds two near colours; with more, give
# each class a marker as well.
_DISTINCT = tuple(PALETTE[i] for i in (0, 1, 2, 4, 7, 5, 3, 6))


def class_colours(classes: list[int]) -> dict[int, str]:
    """One clearly distinct colour per class shown in a figure, in the order given (at most eight classes).

    Chapter: mc_dropout
    """
    classes = [int(c) for c in classes]
    if len(set(classes)) != len(classes) or not 0 < len(classes) <= len(_DISTINCT):
        raise ValueError(f"classes must be 1 to {len(_DISTINCT)} distinct labels, got {classes!r}")
    return dict(zip(classes, _DISTINCT, strict=False))
