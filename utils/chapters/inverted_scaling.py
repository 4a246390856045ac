"""Dropout scaled right and wrong: the variants that the inverted-scaling chapter runs, and how it measures them.

Every variant starts from an ordinary PyTorch ``nn.Sequential`` trained with inverted dropout (``nn.Dropout``, as
``utils.torch_models.make_mlp`` builds it) and swaps its dropout layers for another layer, keeping the weights, so that
the damage a mistake does is measured on the very same trained network. Rates are DROP probabilities throughout.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from utils.checks import check_count, check_positive, check_rate


class ScaledDropout(nn.Module):
    """Dropout with chosen scales: zero with probability `p`, survivors times `train_scale`; eval times `test_scale`.

    The mask is the draw ``nn.Dropout`` makes for a tensor of the same shape, so equal seeds give equal masks.
    Chapter: inverted_scaling
    """

    def __init__(self, p: float, *, train_scale: float, test_scale: float) -> None:
        super().__init__()
        self.p = check_rate(p)
        self.train_scale = check_positive(train_scale, "train_scale")
        self.test_scale = check_positive(test_scale, "test_scale", allow_zero=True)

    def extra_repr(self) -> str:
        return f"p={self.p}, train_scale={self.train_scale:.4g}, test_scale={self.test_scale:.4g}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x * self.test_scale
        keep = F.dropout(torch.ones_like(x), self.p) > 0  # nn.Dropout's own draw, as a boolean mask
        return x * keep * self.train_scale


class Scheme(NamedTuple):
    """How a dropout scheme scales in training and at test time, as functions of the drop rate p.

    Chapter: inverted_scaling
    """

    train_scale: Callable[[float], float]
    test_scale: Callable[[float], float]
    rescale_next: bool  # divide the next Linear's weights by 1 - p, so that training computes the same function


SCHEMES: dict[str, Scheme] = {
    "inverted": Scheme(lambda p: 1 / (1 - p), lambda p: 1.0, False),  # correct: what nn.Dropout does
    "standard": Scheme(lambda p: 1.0, lambda p: 1 - p, True),  # correct: Srivastava et al.
    "rate_at_test": Scheme(lambda p: 1.0, lambda p: p, True),  # mistake: scales by the rate at test time
    "scaled_twice": Scheme(lambda p: 1 / (1 - p), lambda p: 1 - p, False),  # mistake: inverted AND test scaling
    "unscaled_standard": Scheme(lambda p: 1.0, lambda p: 1.0, True),  # mistake: standard, test scaling forgotten
}


class ForgetfulDropout(nn.Module):
    """MISTAKE: F.dropout without training=..., which defaults to True, so dropout stays on after model.eval().

    Chapter: inverted_scaling
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = check_rate(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p)  # the bug: training is not passed


class FunctionalDropout(ForgetfulDropout):
    """The fix: pass the module's own mode, so that eval() turns dropout off.

    Chapter: inverted_scaling
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, training=self.training)


def swap_dropout(model: nn.Sequential, make_layer: Callable[[float], nn.Module], *,
                 rescale_next: bool = False) -> nn.Sequential:
    """Copy `model` with make_layer(p) in place of each nn.Dropout(p).

    With `rescale_next`, also divide the weight of the Linear layer after each dropout layer by 1 - p: the
    reparametrisation that turns inverted dropout into standard dropout.
    Chapter: inverted_scaling
    """
    layers = _check_sequential(model)
    indices = [index for index, layer in enumerate(layers) if isinstance(layer, nn.Dropout)]
    if not indices:
        raise ValueError("the model has no nn.Dropout layer to swap")
    copied = copy.deepcopy(model)
    for index in indices:
        p = layers[index].p
        if rescale_next:
            with torch.no_grad():
                _next_linear(list(copied), index).weight.div_(1 - p)
        copied[index] = make_layer(p)
    return copied


def with_scheme(model: nn.Sequential, scheme: str) -> nn.Sequential:
    """Copy `model` (trained with nn.Dropout) with its dropout scaled as SCHEMES[scheme] says.

    Chapter: inverted_scaling
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; known schemes: {', '.join(SCHEMES)}")
    rule = SCHEMES[scheme]

    def make_layer(p: float) -> ScaledDropout:
        return ScaledDropout(p, train_scale=rule.train_scale(p), test_scale=rule.test_scale(p))

    return swap_dropout(model, make_layer, rescale_next=rule.rescale_next)


def standard_lr_groups(model: nn.Sequential, lr: float, *, power: int = 2) -> list[dict]:
    """Parameter groups with which a standard-dropout copy (from with_scheme) retraces an inverted run at `lr`.

    A weight W' = W / (1 - p) after a ScaledDropout layer gets lr / (1 - p)**power, every other parameter `lr`:
    power 2 for SGD (with or without momentum), whose step is proportional to the gradient; power 1 for Adam,
    whose step hardly depends on the gradient's scale.
    Chapter: inverted_scaling
    """
    lr = check_positive(lr, "lr")
    if power not in (1, 2):
        raise ValueError(f"power must be 1 (Adam) or 2 (SGD), got {power!r}")
    layers = _check_sequential(model)
    keep = {}  # id(weight) -> product of the keep probabilities of the dropout layers before it
    for index, layer in enumerate(layers):
        if isinstance(layer, ScaledDropout):
            weight = _next_linear(layers, index).weight
            keep[id(weight)] = keep.get(id(weight), 1.0) * (1 - layer.p)
    if not keep:
        raise ValueError("the model has no ScaledDropout layer; build it with with_scheme(model, 'standard')")
    return [{"params": [w], "lr": lr / keep[id(w)] ** power if id(w) in keep else lr}
            for w in model.parameters()]


@torch.no_grad()
def input_mean_ratios(model: nn.Sequential, x: np.ndarray, *, passes: int = 10) -> np.ndarray:
    """For each Linear layer: the mean of its input in eval mode over its mean across `passes` training-mode passes.

    Chapter: inverted_scaling
    """
    layers = _check_sequential(model)
    passes = check_count(passes, "passes")
    linears = [layer for layer in layers if isinstance(layer, nn.Linear)]
    if not linears:
        raise ValueError("the model has no Linear layer")
    inputs = torch.as_tensor(np.asarray(x, dtype=np.float32))
    seen: list[float] = []
    hooks = [layer.register_forward_pre_hook(lambda _, args: seen.append(args[0].mean().item()))
             for layer in linears]
    was_training = model.training
    try:
        model.eval()
        model(inputs)
        model.train()
        for _ in range(passes):
            model(inputs)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    means = np.array(seen).reshape(passes + 1, len(linears))
    return means[0] / means[1:].mean(axis=0)


@torch.no_grad()
def right_answers(model: nn.Module, x: np.ndarray, labels: np.ndarray, *, eval_mode: bool = True) -> np.ndarray:
    """Whether `model` classifies each example right: one boolean per example, as `utils.stats.mcnemar` takes them.

    In eval mode by default; with `eval_mode=False`, in the mode the model is in (a training-mode call draws new
    masks). The model's mode is restored.
    Chapter: inverted_scaling
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    inputs = torch.as_tensor(np.asarray(x, dtype=np.float32))
    labels = np.asarray(labels)
    if labels.shape != (len(inputs),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {len(inputs)} integer classes, one per example, got {labels.dtype} of "
                         f"shape {labels.shape}")
    was_training = model.training
    try:
        if eval_mode:
            model.eval()
        return model(inputs).argmax(dim=1).numpy() == labels
    finally:
        model.train(was_training)


def _check_sequential(model: nn.Module) -> list[nn.Module]:
    """Return the layers of `model` if it is an nn.Sequential; raise TypeError otherwise."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential, got {type(model).__name__}")
    return list(model)


def _next_linear(layers: list[nn.Module], index: int) -> nn.Linear:
    """Return the first Linear layer after position `index`; raise ValueError if there is none."""
    following = next((layer for layer in layers[index + 1:] if isinstance(layer, nn.Linear)), None)
    if following is None:
        raise ValueError(f"dropout layer {index} ({layers[index]}) has no Linear layer after it")
    return following
