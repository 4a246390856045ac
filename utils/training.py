"""One PyTorch training loop, evaluation and max-norm, shared by every chapter that trains a classifier.

The models it trains come from `utils.torch_models` (or any ``nn.Module`` that maps float32 inputs to logits).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from utils.checks import check_count, check_positive, check_seed
from utils.devices import check_device
from utils.progress import progress

History = dict[str, list[float]]


def _tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Convert a NumPy split to float32 inputs and int64 labels, checking that they match."""
    if len(x) != len(y):
        raise ValueError(f"got {len(x)} inputs but {len(y)} labels")
    return torch.as_tensor(np.asarray(x, dtype=np.float32)), torch.as_tensor(np.asarray(y, dtype=np.int64))


def model_device(model: nn.Module) -> torch.device:
    """The device holding `model`'s parameters (the CPU for a model without parameters).

    Chapters: overfitting, paper_mnist
    """
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@torch.no_grad()
def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, *, eval_mode: bool = True) -> tuple[float, float]:
    """Return (mean cross-entropy, accuracy) of `model`, in eval mode unless `eval_mode=False`.

    With `eval_mode=False` the model runs in its current mode (e.g. to measure a model someone forgot to switch);
    the model's mode is restored afterwards.
    Chapters: overfitting, inverted_scaling, mc_dropout
    """
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


def apply_max_norm(model: nn.Module, max_norm: float) -> None:
    """Rescale every unit's incoming weight vector whose L2 norm exceeds `max_norm` back onto the ball.

    Chapter: paper_mnist
    """
    max_norm = check_positive(max_norm, "max_norm")
    _renorm(model, max_norm)


@torch.no_grad()
def _renorm(model: nn.Module, max_norm: float) -> None:
    """`apply_max_norm` for a `max_norm` already checked (the training loop calls it after every step)."""
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
    momentum_end: float | None = None,
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
    With `momentum_end` set, the momentum rises linearly, step by step, from `momentum` to `momentum_end` at the last
    step (the paper's schedule: momentum that starts low and ends near 0.95-0.99).
    With `eval_every=k` the metrics are measured only after every k-th epoch and after the last one (cheaper; the
    default, 1, measures every epoch).
    Chapters: overfitting, inverted_scaling, mc_dropout, ensemble
    """
    epochs, batch_size = check_count(epochs, "epochs"), check_count(batch_size, "batch_size")
    eval_every = check_count(eval_every, "eval_every (1 = after every epoch)")
    lr = check_positive(lr, "lr")
    lr_end = None if lr_end is None else check_positive(lr_end, "lr_end", allow_zero=True)
    max_norm = None if max_norm is None else check_positive(max_norm, "max_norm")
    for name, value in (("momentum", momentum), ("momentum_end", momentum_end)):
        if value is not None and not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must satisfy 0 <= {name} < 1, got {value!r}")
    seed = check_seed(seed)
    device = check_device(device)
    model.to(device)
    inputs, labels = (tensor.to(device) for tensor in _tensors(*train))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    history: History = {"loss": [], "accuracy": []} | ({"val_loss": [], "val_accuracy": []} if val else {})
    steps_per_epoch = -(-len(inputs) // batch_size)
    schedule = None if lr_end is None else np.linspace(lr, lr_end, epochs * steps_per_epoch)
    momenta = None if momentum_end is None else np.linspace(momentum, momentum_end, epochs * steps_per_epoch)
    step = 0
    for epoch in progress(range(1, epochs + 1), desc=label, unit="epoch"):
        model.train()
        for batch in torch.randperm(len(inputs), generator=generator).to(device).split(batch_size):
            for group in optimizer.param_groups:
                if schedule is not None:
                    group["lr"] = float(schedule[step])
                if momenta is not None:
                    group["momentum"] = float(momenta[step])
            step += 1
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(inputs[batch]), labels[batch]).backward()
            optimizer.step()
            if max_norm is not None:
                _renorm(model, max_norm)
        if epoch % eval_every and epoch != epochs:
            continue
        for prefix, split in (("", train), ("val_", val)):
            if split is not None:
                loss, accuracy = evaluate(model, *split)
                history[f"{prefix}loss"].append(loss)
                history[f"{prefix}accuracy"].append(accuracy)
    model.eval()
    return history
