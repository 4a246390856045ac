"""DropBlock's seed rate and its PyTorch layer, the chapter's small CNN, and the run behind its stored sweep.

`TorchDropBlock2d` drops bs x bs squares of (N, C, H, W) feature maps (Ghiasi, Lin & Le, 2018) with the seed rate of
`dropblock_gamma`; `make_conv_net` builds a two-convolution network with one kind of dropout after each convolution
(none, element-wise, whole channels, blocks); `cnn_run` trains it on the 5,000 MNIST digits for the sweep
`convolutional_cnn` (utils/sweeps.py). The rate p is the DROP rate, as everywhere in the book.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from utils.checks import check_count, check_rate
from utils.data import load_dataset
from utils.seeding import seed_everything
from utils.training import evaluate, train_classifier

KINDS: tuple[str, ...] = ("none", "element", "channel", "block")  # the kinds of dropout on the feature maps


def check_block_size(block_size: int, height: int, width: int) -> int:
    """Return `block_size` if it is an odd integer no larger than the feature map; raise a clear error otherwise.

    Chapter: convolutional
    """
    block_size = check_count(block_size, "block_size")
    if block_size % 2 == 0:
        raise ValueError(f"block_size must be odd, so that a block has a centre element, got {block_size}")
    if block_size > min(height, width):
        raise ValueError(f"block_size {block_size} is larger than the {height}x{width} feature map; "
                         f"use at most {min(height, width)}")
    return block_size


def dropblock_gamma(rate: float, block_size: int, height: int, width: int) -> float:
    """The probability gamma with which each valid position seeds a block.

    gamma = p H W / (bs^2 (H - bs + 1)(W - bs + 1)). Seeds lie where a whole block
    fits, (H - bs + 1)(W - bs + 1) positions; each drops bs^2 elements, so the
    expected number of dropped elements, counting overlaps twice, is p H W
    (torchvision's `ops.drop_block2d` formula).
    Chapter: convolutional
    """
    rate = check_rate(rate)
    height, width = check_count(height, "height"), check_count(width, "width")
    block_size = check_block_size(block_size, height, width)
    return rate * height * width / (
        block_size**2 * (height - block_size + 1) * (width - block_size + 1))


def _seed_shape(shape: tuple[int, ...], block_size: int) -> tuple[int, ...]:
    """The shape of the seed mask for feature maps of `shape`: the positions where a whole block fits."""
    n, c, height, width = shape
    return n, c, height - block_size + 1, width - block_size + 1


def _grow_blocks(seeds: torch.Tensor, block_size: int) -> torch.Tensor:
    """1 wherever a seed's bs x bs block (seed at its top-left corner) covers the map.

    A max-pool of the seeds, taken one axis at a time (bs shifted copies along the
    columns, then along the rows): 2 bs steps instead of the bs^2 of a direct union.
    """
    *lead, rows, cols = seeds.shape
    wide = seeds.new_zeros((*lead, rows, cols + block_size - 1))
    for shift in range(block_size):
        wide[..., shift:shift + cols] = torch.maximum(
            wide[..., shift:shift + cols], seeds)
    tall = seeds.new_zeros((*lead, rows + block_size - 1, cols + block_size - 1))
    for shift in range(block_size):
        tall[..., shift:shift + rows, :] = torch.maximum(
            tall[..., shift:shift + rows, :], wide)
    return tall


class TorchDropBlock2d(nn.Module):
    """DropBlock as a PyTorch module: the NumPy `DropBlock2d`'s mask and scale, autograd for the backward pass.

    It respects `self.training` (identity in eval mode) and draws its seeds from PyTorch's global generator, or
    takes a boolean seed tensor, with which it drops exactly the elements the NumPy layer drops.
    Chapter: convolutional
    """

    def __init__(self, rate: float, block_size: int) -> None:
        super().__init__()
        self.rate = check_rate(rate)
        self.block_size = check_count(block_size, "block_size")
        if self.block_size % 2 == 0:
            raise ValueError(f"block_size must be odd, so that a block has a centre element, got {block_size}")

    def forward(
        self, x: torch.Tensor, seeds: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Apply DropBlock to `x` (N, C, H, W) in training mode; identity in eval."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            got = (f"a {x.dtype} tensor" if isinstance(x, torch.Tensor)
                   else type(x).__name__)
            raise TypeError(f"x must be a floating-point tensor, got {got}")
        if x.dim() != 4:
            raise ValueError("x must be 4-D feature maps (N, C, H, W), "
                             f"got shape {tuple(x.shape)}")
        height, width = x.shape[-2:]
        gamma = dropblock_gamma(self.rate, self.block_size, height, width)
        if not self.training or self.rate == 0.0:
            return x
        shape = _seed_shape(tuple(x.shape), self.block_size)
        if seeds is None:
            seeds = torch.rand(shape, device=x.device) < gamma
        elif seeds.dtype != torch.bool or tuple(seeds.shape) != shape:
            raise ValueError(f"seeds must be a boolean tensor of shape {shape}")
        dropped = _grow_blocks(seeds.to(x.dtype), self.block_size)
        keep = 1.0 - dropped
        kept = keep.sum()
        scale = keep.numel() / kept if kept > 0 else kept
        return x * keep * scale

    def extra_repr(self) -> str:
        return f"rate={self.rate}, block_size={self.block_size}"


def dropout_layer(kind: str, rate: float, block_size: int) -> nn.Module:
    """The dropout layer of one `kind` for (N, C, H, W) feature maps: Dropout, Dropout2d, DropBlock or Identity.

    Chapter: convolutional
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    rate = check_rate(rate)
    if kind == "none" or rate == 0.0:
        return nn.Identity()
    if kind == "element":
        return nn.Dropout(rate)
    if kind == "channel":
        return nn.Dropout2d(rate)
    return TorchDropBlock2d(rate, block_size)


def make_conv_net(kind: str = "none", rate: float = 0.0, *, block_size: int = 5, width: int = 8) -> nn.Sequential:
    """A small CNN for flat 28x28 digits with one kind of dropout after each convolution's ReLU.

    Conv 3x3 (`width` channels, 28x28), ReLU, dropout, max-pool to 14x14, conv 3x3 (2 `width` channels), ReLU,
    dropout, max-pool to 7x7, then one linear layer to 10 logits.
    Chapter: convolutional
    """
    width = check_count(width, "width")
    block_size = check_count(block_size, "block_size")
    if block_size % 2 == 0 or block_size > 14:
        raise ValueError(f"block_size must be odd and at most 14 (the second feature map's size), got {block_size}")
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), dropout_layer(kind, rate, block_size), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), dropout_layer(kind, rate, block_size),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * width * 49, 10),
    )


def cnn_run(settings: Mapping[str, Any], seed: int) -> dict[str, float]:
    """Train `make_conv_net(kind, rate)` on the 5,000 MNIST digits from `seed`; return its error on each split.

    The same seed gives both arms of a pair the same initial convolutions, where their shapes agree, and the same
    minibatch order: everything is seeded from it before the network is built.
    Chapter: convolutional
    """
    data = load_dataset(settings["dataset"])
    seed_everything(seed)
    model = make_conv_net(settings["kind"], settings["rate"], block_size=settings["block_size"],
                          width=settings["width"])
    train_classifier(model, (data.x_train, data.y_train), epochs=settings["epochs"], batch_size=settings["batch_size"],
                     lr=settings["lr"], momentum=settings["momentum"], seed=seed, eval_every=settings["epochs"])
    errors = {}
    for split in ("train", "val", "test"):
        _, accuracy = evaluate(model, getattr(data, f"x_{split}"), getattr(data, f"y_{split}"))
        errors[f"{split}_error"] = 1.0 - accuracy
    return errors
