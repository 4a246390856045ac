"""The book's PyTorch model builders: a ReLU MLP and a small LeNet-like CNN, both with dropout where asked.

Both return an ``nn.Sequential`` that outputs logits (no softmax: `torch.nn.functional.cross_entropy` and
`utils.training.train_classifier` expect logits) and take the book's argument convention, shared with
`utils.keras_models`: sizes first, then keyword-only drop rates that default to 0 (no dropout layer at all).
Initial weights come from PyTorch's global generator, which `utils.setup` / `seed_everything` seed.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from utils.checks import check_count, check_rate, check_sizes


def make_mlp(n_in: int, hidden: Sequence[int], n_out: int, *, drop_rate: float = 0.0,
             input_drop_rate: float = 0.0) -> nn.Sequential:
    """Build a ReLU MLP with dropout `input_drop_rate` on its inputs and `drop_rate` after each hidden layer.

    The layers are [Dropout(input_drop_rate)], then per hidden width Linear, ReLU, [Dropout(drop_rate)], then the
    output Linear; a rate of 0 leaves its dropout layers out. `hidden` may be empty (a linear model).
    Chapters: overfitting, paper_mnist, inverted_scaling, ensemble
    """
    n_in, n_out = check_count(n_in, "n_in"), check_count(n_out, "n_out")
    hidden = check_sizes(hidden, "hidden", allow_empty=True)
    drop_rate, input_drop_rate = check_rate(drop_rate), check_rate(input_drop_rate)
    layers: list[nn.Module] = [nn.Dropout(input_drop_rate)] if input_drop_rate else []
    for width_in, width_out in zip([n_in, *hidden], hidden, strict=False):
        layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        if drop_rate:
            layers.append(nn.Dropout(drop_rate))
    layers.append(nn.Linear(hidden[-1] if hidden else n_in, n_out))
    return nn.Sequential(*layers)


def make_cnn(n_classes: int, *, drop_rate: float = 0.0, batch_norm: bool = True) -> nn.Sequential:
    """Build a small LeNet-like CNN for flat 28x28 rows, with dropout `drop_rate` only before its last layer.

    Two 5x5 convolutions (8 and 16 channels), each followed by ReLU and 2x2 max-pooling, then Linear(256, 128), ReLU,
    [Dropout(drop_rate)] and Linear(128, n_classes). With `batch_norm` (the default) BatchNorm2d follows the first
    convolution, which is what makes `model.train()` the wrong switch for Monte-Carlo dropout.
    Chapter: mc_dropout
    """
    n_classes = check_count(n_classes, "n_classes", minimum=2)
    drop_rate = check_rate(drop_rate)
    if not isinstance(batch_norm, bool):
        raise TypeError(f"batch_norm must be True or False, got {type(batch_norm).__name__}: {batch_norm!r}")
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 8, kernel_size=5),  # 8 x 24 x 24
        *([nn.BatchNorm2d(8)] if batch_norm else []),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 8 x 12 x 12
        nn.Conv2d(8, 16, kernel_size=5),  # 16 x 8 x 8
        nn.ReLU(),
        nn.MaxPool2d(2),  # 16 x 4 x 4
        nn.Flatten(),
        nn.Linear(256, 128),
        nn.ReLU(),
        *([nn.Dropout(drop_rate)] if drop_rate else []),
        nn.Linear(128, n_classes),
    )
