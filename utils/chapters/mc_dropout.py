"""Monte-Carlo dropout in PyTorch: T stochastic passes with only the dropout layers on, and the spread measures.

Gal & Ghahramani (2016) keep dropout switched on at test time, average the softmax outputs of T passes (the
predictive mean) and read the model's uncertainty off how much the passes disagree. Two details matter:

- Only the dropout layers may be in training mode. `model.train()` would also put batch normalisation in training
  mode, so that it normalises with the statistics of the test batch (a prediction then depends on which other
  examples share its batch) and overwrites its running statistics with them. `mc_mode` switches on dropout alone.
- Every layer before the first dropout layer of an `nn.Sequential` is deterministic in eval mode, so `mc_predict`
  runs that part once and repeats only the rest; the results are the same as T full passes with the same seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Real

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from utils.checks import check_count, check_probs, check_seed

# Every PyTorch dropout module (Dropout, Dropout1d/2d/3d, AlphaDropout, FeatureAlphaDropout) derives from this.
DROPOUT_TYPES: tuple[type[nn.Module], ...] = (nn.modules.dropout._DropoutNd,)


def dropout_layers(model: nn.Module) -> list[nn.Module]:
    """Return every dropout module inside `model` (itself included), in the order `model.modules()` gives.

    Chapter: mc_dropout
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return [module for module in model.modules() if isinstance(module, DROPOUT_TYPES)]


def _active_dropout_layers(model: nn.Module) -> list[nn.Module]:
    """The dropout modules with a positive rate; raise when there are none, as every pass would then be equal."""
    layers = [layer for layer in dropout_layers(model) if layer.p > 0]
    if not layers:
        raise ValueError("the model has no dropout layer with a positive rate, so all Monte-Carlo passes would be "
                         "identical; MC dropout needs a model trained with dropout")
    return layers


@contextmanager
def mc_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put `model` in eval mode with only its dropout layers in training mode; restore every module's mode on exit.

    Chapter: mc_dropout
    """
    layers = _active_dropout_layers(model)
    modes = {module: module.training for module in model.modules()}
    model.eval()
    for layer in layers:
        layer.train()
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
