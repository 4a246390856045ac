"""Dropout on feature maps: DropBlock in NumPy, the masks of three kinds of dropout, and what a dropped element loses.

`DropBlock2d` is the book's NumPy reference for DropBlock (Ghiasi, Lin & Le, 2018): seeds drawn with probability
gamma, grown into block_size x block_size squares by max-pooling, the kept elements rescaled by the kept fraction.
`utils.chapters.convolutional_sweeps.TorchDropBlock2d` is the same layer in PyTorch: the same seeds, the same mask.
The rate p is the DROP rate, as everywhere in the book. Feature maps are channels-first: (N, C, H, W).
"""

from __future__ import annotations

from numbers import Integral

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from utils.chapters.convolutional_sweeps import _seed_shape, check_block_size, dropblock_gamma
from utils.checks import check_count, check_rate
from utils.plotting import PALETTE

# --- DropBlock: the seed rate gamma, the block mask, the layer ------------------------------------------------------


def block_mask(seeds: np.ndarray, block_size: int) -> np.ndarray:
    """The keep mask (True = kept) of a boolean seed mask: False in every seed's block.

    `seeds` has shape (..., H - bs + 1, W - bs + 1). Each seed at (i, j) of the valid
    positions drops the square whose top-left corner is (i, j) in the full (H, W)
    map; this is a max-pool of the padded seeds with a bs x bs window.
    Chapter: convolutional
    """
    block_size = _check_seeds(seeds, block_size)
    *lead, rows, cols = seeds.shape
    shape = (*lead, rows + block_size - 1, cols + block_size - 1)
    dropped = np.zeros(shape, dtype=bool)
    for di in range(block_size):  # the max-pool: the union of bs^2 shifted copies
        for dj in range(block_size):
            dropped[..., di:di + rows, dj:dj + cols] |= seeds
    return ~dropped


def _check_seeds(seeds: object, block_size: object) -> int:
    """Raise a clear error unless `seeds` is a boolean array of at least 2 axes; return the checked block size."""
    if not isinstance(seeds, np.ndarray) or seeds.dtype != np.bool_ or seeds.ndim < 2:
        got = (f"{seeds.dtype} array of shape {seeds.shape}"
               if isinstance(seeds, np.ndarray) else type(seeds).__name__)
        raise ValueError("seeds must be a boolean array (True = a block starts here) "
                         f"of at least 2 axes, got {got}")
    return check_count(block_size, "block_size")


def _check_maps(x: object, name: str) -> np.ndarray:
    """Raise a clear error unless `x` is a floating-point NumPy array of shape (N, C, H, W)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(x).__name__}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must have a floating-point dtype, got {x.dtype}")
    if x.ndim != 4:
        raise ValueError(f"{name} must be 4-D feature maps (N, C, H, W), got shape {x.shape}")
    return x


def _check_layer(rate: object, block_size: object, seed: object) -> tuple[float, int, np.random.Generator]:
    """Check DropBlock2d's arguments; return the rate, the block size and a random generator."""
    rate = check_rate(rate)
    size = check_count(block_size, "block_size")
    if size % 2 == 0:
        raise ValueError(f"block_size must be an odd positive integer, got {block_size}")
    if seed is not None and not isinstance(seed, np.random.Generator) and (
            isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0):
        raise TypeError(f"seed must be None, a non-negative int or a numpy.random.Generator, got {seed!r}")
    return rate, size, seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


class DropBlock2d:
    """DropBlock on (N, C, H, W) feature maps: drop bs x bs squares, about `rate`.

    In training, seeds are drawn with probability `gamma` (`dropblock_gamma`) where a
    whole block fits and grown into blocks (`block_mask`); the kept elements are
    multiplied by numel / (number kept), as torchvision's `drop_block2d` does. In
    evaluation mode, and at rate 0, the layer is the identity. No schedule.
    Chapter: convolutional
    """

    def __init__(
        self, rate: float, block_size: int, *,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        self.rate, self.block_size, self.rng = _check_layer(rate, block_size, seed)
        self.training = True
        self.mask: np.ndarray | None = None  # the last training-mode keep mask
        self.scale = 1.0  # what the kept elements were multiplied by

    def train(self, mode: bool = True) -> DropBlock2d:
        """Switch to training mode (`mode=False`: evaluation mode); return the layer."""
        self.training = bool(mode)
        return self

    def eval(self) -> DropBlock2d:
        """Switch to evaluation mode, where the layer is the identity; return it."""
        return self.train(False)

    def draw_seeds(self, shape: tuple[int, ...]) -> np.ndarray:
        """A fresh boolean seed mask for maps of `shape`: True with chance gamma."""
        height, width = shape[-2:]
        gamma = dropblock_gamma(self.rate, self.block_size, height, width)
        return self.rng.random(_seed_shape(shape, self.block_size)) < gamma

    def forward(
        self, x: np.ndarray, seeds: np.ndarray | None = None
    ) -> np.ndarray:
        """Apply DropBlock to `x` (N, C, H, W), with given boolean seeds if any."""
        self._check_forward(x, seeds)
        if not self.training or self.rate == 0.0:  # evaluation mode: the identity
            self.mask, self.scale = None, 1.0
            return x
        if seeds is None:
            seeds = self.draw_seeds(x.shape)
        keep = block_mask(seeds, self.block_size)
        kept = int(keep.sum())
        self.mask = keep
        self.scale = keep.size / kept if kept else 0.0  # 1 / (the fraction kept)
        return (x * keep * self.scale).astype(x.dtype)

    __call__ = forward

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Return the gradient for the last forward input: same mask, same scale."""
        _check_maps(grad_out, "grad_out")
        if not self.training or self.rate == 0.0:
            return grad_out
        if self.mask is None:
            raise RuntimeError("backward() called before forward() in training mode")
        if grad_out.shape != self.mask.shape:
            raise ValueError(f"grad_out has shape {grad_out.shape}, "
                             f"the last forward input had {self.mask.shape}")
        return (grad_out * self.mask * self.scale).astype(grad_out.dtype)

    def _check_forward(self, x: np.ndarray, seeds: np.ndarray | None) -> None:
        """Raise a clear error unless `x` is (N, C, H, W) floats that fit a block and `seeds` fits `x`."""
        _check_maps(x, "x")
        check_block_size(self.block_size, *x.shape[-2:])
        shape = _seed_shape(x.shape, self.block_size)
        if seeds is not None and (not isinstance(seeds, np.ndarray) or seeds.dtype != np.bool_
                                  or seeds.shape != shape):
            raise ValueError(f"seeds must be a boolean array of shape {shape} "
                             "(N, C, H - block_size + 1, W - block_size + 1)")

    def __repr__(self) -> str:
        return f"DropBlock2d(rate={self.rate}, block_size={self.block_size}, training={self.training})"


def keep_probability_map(rate: float, block_size: int, height: int, width: int) -> np.ndarray:
    """The probability that DropBlock keeps each element of an H x W map: (1 - gamma)^k, k seeds' blocks cover it.

    An interior element lies in the blocks of bs^2 possible seeds, an element near an edge in fewer, so it is dropped
    less often; and overlapping blocks drop some elements twice, so the mean kept fraction is a little above 1 - p.
    Chapter: convolutional
    """
    gamma = dropblock_gamma(rate, block_size, height, width)
    valid = np.ones((height - block_size + 1, width - block_size + 1), dtype=bool)
    covers = np.zeros((height, width))
    for di in range(block_size):
        for dj in range(block_size):
            covers[di:di + valid.shape[0], dj:dj + valid.shape[1]] += valid
    return (1.0 - gamma) ** covers


def draw_keep_masks(shape: tuple[int, int, int, int], rate: float, block_size: int,
                    rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Three keep masks (True = kept) at drop rate `rate` for maps of `shape`: element-wise, whole channels, blocks.

    Chapter: convolutional
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if len(shape) != 4:
        raise ValueError(f"shape must be (N, C, H, W), got {shape}")
    rate = check_rate(rate)
    n, c, height, width = shape
    blocks = DropBlock2d(rate, check_block_size(block_size, height, width), seed=rng)
    return {
        "element": rng.random(shape) >= rate,
        "channel": np.broadcast_to(rng.random((n, c, 1, 1)) >= rate, shape),
        "block": block_mask(blocks.draw_seeds(shape), block_size),
    }


def neighbour_correlation(maps: np.ndarray, distance: int = 1) -> np.ndarray:
    """Per channel, the correlation between elements `distance` apart (across and down) of (N, C, H, W) maps.

    Pairs are pooled over the examples and positions of each channel; a channel that never varies gets NaN.
    Chapter: convolutional
    """
    maps = _check_maps(maps, "maps").astype(np.float64)
    distance = check_count(distance, "distance")
    if distance >= min(maps.shape[-2:]):
        raise ValueError(f"distance must be smaller than the map's sides {maps.shape[-2:]}, got {distance}")
    correlations = []
    for channel in range(maps.shape[1]):
        m = maps[:, channel]
        a = np.concatenate([m[:, :, :-distance].ravel(), m[:, :-distance, :].ravel()])
        b = np.concatenate([m[:, :, distance:].ravel(), m[:, distance:, :].ravel()])
        ok = a.std() > 0 and b.std() > 0
        correlations.append(np.corrcoef(a, b)[0, 1] if ok else np.nan)
    return np.array(correlations)


def fill_errors(maps: np.ndarray, keep: np.ndarray, where: np.ndarray | None = None) -> dict[str, float]:
    """How well a dropped element is guessed from what survives: two root-mean-square errors and a share.

    For each dropped element (among `where`, if given) with at least one kept element among its 8 neighbours:
    'neighbours', the error of guessing it as the mean of those kept neighbours; 'map mean', the error of guessing
    it as the mean of its map's kept elements (same elements); 'guessable', the share of dropped elements that have
    a kept neighbour at all (a dropped channel has none, the inside of a dropped block has none). Over every dropped
    element: 'pooled', the error of the neighbours' guess where there is one and the map mean where not, and
    'pooled map mean', the error of the map mean everywhere.
    Chapter: convolutional
    """
    maps = _check_maps(maps, "maps").astype(np.float64)
    for name, array in (("keep", keep), ("where", where)):
        if array is not None and (not isinstance(array, np.ndarray) or array.dtype != np.bool_
                                  or array.shape != maps.shape):
            raise ValueError(f"{name} must be a boolean array of the maps' shape {maps.shape}")
    kept = keep.astype(np.float64)
    padded_values = np.pad(maps * kept, ((0, 0), (0, 0), (1, 1), (1, 1)))
    padded_kept = np.pad(kept, ((0, 0), (0, 0), (1, 1), (1, 1)))
    height, width = maps.shape[-2:]
    total, count = np.zeros_like(maps), np.zeros_like(maps)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                total += padded_values[..., 1 + di:1 + di + height, 1 + dj:1 + dj + width]
                count += padded_kept[..., 1 + di:1 + di + height, 1 + dj:1 + dj + width]
    dropped = ~keep if where is None else ~keep & where
    guessable = dropped & (count > 0)
    if not guessable.any():
        raise ValueError("no dropped element has a kept neighbour: nothing to guess")
    map_mean = (maps * kept).sum(axis=(2, 3), keepdims=True) / np.maximum(kept.sum(axis=(2, 3), keepdims=True), 1)
    map_guess = np.broadcast_to(map_mean, maps.shape)
    guess = np.where(count > 0, total / np.maximum(count, 1), map_guess)

    def rms(chosen: np.ndarray, guesses: np.ndarray) -> float:
        return float(np.sqrt(np.mean((guesses[chosen] - maps[chosen]) ** 2)))

    return {
        "neighbours": rms(guessable, guess),
        "map mean": rms(guessable, map_guess),
        "guessable": float(guessable.sum() / max(dropped.sum(), 1)),
        "pooled": rms(dropped, guess),
        "pooled map mean": rms(dropped, map_guess),
    }


def pooling_loss(maps: np.ndarray, keep: np.ndarray) -> dict[str, float]:
    """The share of the maps' activation a mask removes, before and after a 2x2 max-pool.

    'before': the dropped elements' share of the total activation of `maps` (non-negative, as after a ReLU);
    'after': the share of the max-pooled maps' total lost when the masked maps are pooled instead, no rescaling in
    either. Where a window's largest element is dropped, the pool passes on the next largest kept one.
    Chapter: convolutional
    """
    maps = _check_maps(maps, "maps").astype(np.float64)
    if not isinstance(keep, np.ndarray) or keep.dtype != np.bool_ or keep.shape != maps.shape:
        raise ValueError(f"keep must be a boolean array of the maps' shape {maps.shape}")
    n, c, height, width = maps.shape
    if height % 2 or width % 2 or (maps < 0).any() or maps.sum() == 0:
        raise ValueError("maps must be non-negative, not all zero, with an even number of rows and columns; got "
                         f"{height}x{width} maps with minimum {maps.min():.3g}")

    def pool(a: np.ndarray) -> np.ndarray:
        return a.reshape(n, c, height // 2, 2, width // 2, 2).max(axis=(3, 5))

    pooled = pool(maps)
    return {"before": float((maps * ~keep).sum() / maps.sum()),
            "after": float((pooled - pool(maps * keep)).sum() / pooled.sum())}


def channel_fill_errors(train_maps: np.ndarray, test_maps: np.ndarray) -> dict[str, np.ndarray]:
    """How well a whole dropped channel is guessed from the other channels at the same position, per channel.

    For each channel c, a least-squares regression of c on the other channels at the same (digit, row, column), with
    an intercept, is fitted on `train_maps` and scored on `test_maps`: 'other channels', its root-mean-square error
    over every test element of c; 'channel mean', the error of the position-blind guess, c's mean over the training
    maps. Both arrays have one entry per channel.
    Chapter: convolutional
    """
    train_maps = _check_maps(train_maps, "train_maps")
    test_maps = _check_maps(test_maps, "test_maps")
    channels = train_maps.shape[1]
    if channels < 2 or test_maps.shape[1] != channels:
        raise ValueError("train_maps and test_maps need the same number of channels, at least 2; got "
                         f"{channels} and {test_maps.shape[1]}")
    train = train_maps.transpose(0, 2, 3, 1).reshape(-1, channels).astype(np.float64)
    test = test_maps.transpose(0, 2, 3, 1).reshape(-1, channels).astype(np.float64)
    regression, blind = np.zeros(channels), np.zeros(channels)
    for c in range(channels):
        others = [k for k in range(channels) if k != c]
        design = np.column_stack([train[:, others], np.ones(len(train))])
        weights = np.linalg.lstsq(design, train[:, c], rcond=None)[0]
        guess = np.column_stack([test[:, others], np.ones(len(test))]) @ weights
        regression[c] = np.sqrt(np.mean((guess - test[:, c]) ** 2))
        blind[c] = np.sqrt(np.mean((train[:, c].mean() - test[:, c]) ** 2))
    return {"other channels": regression, "channel mean": blind}


def plot_mask_grid(maps: np.ndarray, masks: dict[str, np.ndarray], *, n_channels: int = 4) -> Figure:
    """Draw the first `n_channels` feature maps of one example: as they are, then under each keep mask.

    `maps` is (C, H, W), each mask the same shape; each map has its own grey scale, from 0 (white) to its largest
    activation (black), and dropped elements are drawn in a highlight colour.
    Chapter: convolutional
    """
    n_channels = check_count(n_channels, "n_channels")
    rows = {"feature maps": np.ones(maps.shape, dtype=bool), **masks}
    fig, axes = plt.subplots(len(rows), n_channels, figsize=(1.1 * n_channels + 1.2, 1.15 * len(rows)),
                             squeeze=False)
    for row, (name, keep) in zip(axes, rows.items(), strict=True):
        for channel, ax in enumerate(row):
            image = np.ma.masked_where(~keep[channel], maps[channel])
            cmap = plt.get_cmap("gray_r").copy()
            cmap.set_bad(PALETTE[1])
            ax.imshow(image, cmap=cmap, vmin=0, vmax=float(maps[channel].max()) or 1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if channel == 0:
                ax.set_ylabel(name)
            if name == "feature maps":
                ax.set_title(f"channel {channel + 1}")
    return fig
