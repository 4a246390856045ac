"""Small PyTorch models and one training loop, shared by every chapter that trains a classifier."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from utils.checks import check_rate
from utils.devices import check_device
from utils.progress import progress

History = dict[str, list[float]]


def make_mlp(n_in: int, hidden: Sequence[int], n_out: int, *, drop_rate: float = 0.0,
             input_drop_rate: float = 0.0) -> nn.Sequential:
    """Build a ReLU MLP with dropout `input_drop_rate` on its inputs and `drop_rate` after each hidden layer."""
    sizes = [n_in, *hidden, n_out]
    if any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 for n in sizes):
        raise ValueError(f"layer sizes must be positive integers, got n_in={n_in}, hidden={list(hidden)}, n_out={n_out}")
    check_rate(drop_rate)
    check_rate(input_drop_rate)
    layers: list[nn.Module] = [nn.Dropout(input_drop_rate)] if input_drop_rate else []
    for width_in, width_out in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        if drop_rate:
            layers.append(nn.Dropout(drop_rate))
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


def _tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Convert a NumPy split to float32 inputs and int64 labels, checking that they match."""
    if len(x) != len(y):
        raise ValueError(f"got {len(x)} inputs but {len(y)} labels")
    return torch.as_tensor(np.asarray(x, dtype=np.float32)), torch.as_tensor(np.asarray(y, dtype=np.int64))


def model_device(model: nn.Module) -> torch.device:
    """The device holding `model`'s parameters (the CPU for a model without parameters)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@torch.no_grad()
def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, *, eval_mode: bool = True) -> tuple[float, float]:
    """Return (mean cross-entropy, accuracy) of `model`, in eval mode unless `eval_mode=False` (then in its current
    mode, e.g. to measure a model someone forgot to switch); the model's mode is restored afterwards."""
    inputs, labels = _tensors(x, y)
    if len(inputs) == 0:
        raise ValueError("cannot evaluate on zero examples")
    device = model_device(model)
    inputs, labels = inputs.to(device), labels.to(device)
    was_training = model.training
    if eval_mode:
        model.eval()
    logits = model(inputs)
    model.train(was_training)
    loss = nn.functional.cross_entropy(logits, labels).item()
    accuracy = (logits.argmax(dim=1) == labels).float().mean().item()
    return loss, accuracy


@torch.no_grad()
def apply_max_norm(model: nn.Module, max_norm: float) -> None:
    """Rescale every unit's incoming weight vector whose L2 norm exceeds `max_norm` back onto the ball."""
    for layer in model.modules():
        if isinstance(layer, nn.Linear):
            layer.weight.copy_(torch.renorm(layer.weight, p=2, dim=0, maxnorm=max_norm))


def train_classifier(
    model: nn.Module,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    epochs: int,
    batch_size: int = 64,
    lr: float = 0.05,
    lr_end: float | None = None,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    max_norm: float | None = None,
    seed: int = 0,
    label: str = "training",
    device: str | torch.device = "cpu",
    eval_every: int = 1,
) -> History:
    """Train with SGD on cross-entropy; return per-epoch loss and accuracy on train (and val), measured in eval mode.

    The minibatch order comes from `seed`, so equal seeds and equal initial weights give identical runs.
    The model is moved to `device` ('cpu', the default, or e.g. 'cuda') and left there, in eval mode.
    With `lr_end` set, the learning rate falls linearly, step by step, from `lr` to `lr_end` at the last step.
    With `eval_every=k` the metrics are measured only after every k-th epoch and after the last one (cheaper; the
    default, 1, measures every epoch).
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be at least 1, got {epochs} and {batch_size}")
    if max_norm is not None and max_norm <= 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    if lr <= 0 or (lr_end is not None and lr_end < 0):
        raise ValueError(f"lr must be positive and lr_end (if given) at least 0, got lr={lr}, lr_end={lr_end}")
    if isinstance(eval_every, bool) or not isinstance(eval_every, (int, np.integer)) or eval_every < 1:
        raise ValueError(f"eval_every must be a positive integer (1 = after every epoch), got {eval_every!r}")
    device = check_device(device)
    model.to(device)
    inputs, labels = (tensor.to(device) for tensor in _tensors(*train))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    history: History = {"loss": [], "accuracy": []} | ({"val_loss": [], "val_accuracy": []} if val else {})
    steps_per_epoch = -(-len(inputs) // batch_size)
    schedule = None if lr_end is None else np.linspace(lr, lr_end, epochs * steps_per_epoch)
    step = 0
    for epoch in progress(range(1, epochs + 1), desc=label, unit="epoch"):
        model.train()
        for batch in torch.randperm(len(inputs), generator=generator).to(device).split(batch_size):
            if schedule is not None:
                for group in optimizer.param_groups:
                    group["lr"] = float(schedule[step])
                step += 1
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(inputs[batch]), labels[batch]).backward()
            optimizer.step()
            if max_norm is not None:
                apply_max_norm(model, max_norm)
        if epoch % eval_every and epoch != epochs:
            continue
        for prefix, split in (("", train), ("val_", val)):
            if split is not None:
                loss, accuracy = evaluate(model, *split)
                history[f"{prefix}loss"].append(loss)
                history[f"{prefix}accuracy"].append(accuracy)
    model.eval()
    return history
