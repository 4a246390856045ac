"""Co-adaptation made visible: one-hidden-layer ReLU autoencoders trained with and without dropout on the hidden layer.

Srivastava et al. (2014, §7.1–7.2, Figs. 7 and 8) train an autoencoder with 256 ReLU hidden units on MNIST, with and
without dropout, and compare its first-layer features (each hidden unit's incoming weights, shown as a 28×28 image)
and the sparsity of its hidden activations. This module trains the same kind of network on the book's digits and
measures what the paper shows in pictures, plus one thing it only asserts: how much a network depends on its hidden
units' partners, read off the reconstruction when a random part of the hidden layer is removed at test time.

The autoencoder is `x -> W2 (m ⊙ h) / (1 - p) + b2` with `h = relu(W1 x + b1)` (inverted dropout, rate p, only in
training) and a linear output; the loss is the squared error summed over the 784 pixels, averaged over examples.
Because the output is linear in the hidden units, removing units with inverted scaling has an exact expected cost:
`removal_penalty` (see its docstring).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Real

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from utils.checks import check_count, check_positive, check_rate, check_seed
from utils.plotting import PALETTE
from utils.stats import PairedDifference, paired_difference

IMAGE_SHAPE: tuple[int, int] = (28, 28)
N_PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]


# --- argument checks ---------------------------------------------------------------------------------------------


def _as_images(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Return flat images (n, 784) as a float32 tensor, or raise a clear error."""
    if not isinstance(x, (np.ndarray, torch.Tensor)):
        raise TypeError(f"x must be a NumPy array or a tensor of flat images, got {type(x).__name__}")
    x = torch.as_tensor(x, dtype=torch.float32)
    if x.ndim != 2 or x.shape[1] != N_PIXELS or x.shape[0] == 0:
        raise ValueError(f"x must hold flat 28x28 images, shape (n, {N_PIXELS}) with n >= 1, got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("x holds NaN or infinite pixels")
    return x


def _check_autoencoder(model: nn.Module) -> tuple[nn.Linear, nn.Linear]:
    """Return the encoder and decoder layers of an autoencoder from `make_autoencoder`, or raise."""
    if not isinstance(model, nn.Sequential) or len(model) < 3:
        raise TypeError(f"model must be an autoencoder from make_autoencoder, got {type(model).__name__}")
    encoder, decoder = model[0], model[-1]
    if not (isinstance(encoder, nn.Linear) and isinstance(decoder, nn.Linear) and isinstance(model[1], nn.ReLU)):
        raise TypeError("model must be Linear, ReLU, [Dropout], Linear, as make_autoencoder builds it")
    if encoder.in_features != N_PIXELS or decoder.out_features != N_PIXELS:
        raise ValueError(f"model must map {N_PIXELS} pixels to {N_PIXELS}, got {encoder.in_features} to "
                         f"{decoder.out_features}")
    return encoder, decoder


def _check_keep(keep: np.ndarray, n_hidden: int) -> torch.Tensor:
    """Return a boolean keep-mask over the hidden units as a float tensor, or raise."""
    keep = np.asarray(keep)
    if keep.dtype != bool or keep.shape != (n_hidden,):
        raise ValueError(f"keep must be a boolean array with one entry per hidden unit, shape ({n_hidden},), got "
                         f"dtype {keep.dtype} and shape {keep.shape}")
    if not keep.any():
        raise ValueError("keep removes every hidden unit: keep at least one")
    return torch.as_tensor(keep, dtype=torch.float32)


def _check_fraction(fraction: float) -> float:
    """Return a removed fraction strictly between 0 and 1, or raise."""
    if isinstance(fraction, bool) or not isinstance(fraction, Real):
        raise TypeError(f"fraction must be a number strictly between 0 and 1, got {type(fraction).__name__}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}")
    return float(fraction)


# --- the networks and their training -----------------------------------------------------------------------------


def _autoencoder_settings(n_hidden: int, drop_rate: float, init_std: float) -> tuple[int, float, float]:
    """Return make_autoencoder's arguments checked: a hidden width, a drop rate and a positive std, or raise."""
    return check_count(n_hidden, "n_hidden"), check_rate(drop_rate), check_positive(init_std, "init_std")


def make_autoencoder(n_hidden: int = 256, *, drop_rate: float = 0.0,
                     init_std: float = 0.01) -> nn.Sequential:
    """Build Linear(784, n_hidden), ReLU, [Dropout(drop_rate)], Linear(n_hidden, 784): a ReLU autoencoder.

    The encoder's weights start as N(0, init_std²), small, so that a trained feature shows what training put there
    rather than the random start; everything else keeps PyTorch's default initialisation. Initial weights come from
    PyTorch's global generator (seed it first). A drop rate of 0 leaves the dropout layer out.
    Chapter: co_adaptation
    """
    n_hidden, drop_rate, init_std = _autoencoder_settings(n_hidden, drop_rate, init_std)
    dropout = [nn.Dropout(drop_rate)] if drop_rate else []  # inverted, training only
    model = nn.Sequential(
        nn.Linear(784, n_hidden),  # the encoder: row j of W1 is unit j's feature
        nn.ReLU(),
        *dropout,
        nn.Linear(n_hidden, 784),  # the decoder: column j of W2 is w_j
    )
    with torch.no_grad():
        model[0].weight.normal_(0.0, init_std)  # a small start
    return model


def reconstruction_errors(model: nn.Module, x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Each image's squared reconstruction error, summed over its 784 pixels, with the model in eval mode.

    Chapter: co_adaptation
    """
    _check_autoencoder(model)
    x = _as_images(x)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return ((model(x) - x) ** 2).sum(dim=1).numpy().astype(np.float64)
    finally:
        model.train(was_training)


def train_autoencoder(x: np.ndarray, *, drop_rate: float, seed: int, n_hidden: int = 256, epochs: int = 20,
                      lr: float = 0.003, momentum: float = 0.9,
                      batch_size: int = 64) -> tuple[nn.Sequential, list[float]]:
    """Train a fresh autoencoder on flat images `x` by SGD with momentum; return it (in eval mode) and its losses.

    `seed` fixes the initial weights, the order of the minibatches and the dropout masks, so a seed repeats a run
    exactly. The losses are the mean training loss of each epoch, as training saw it (masks on).
    Chapter: co_adaptation
    """
    seed = check_seed(seed)
    epochs, batch_size = check_count(epochs, "epochs"), check_count(batch_size, "batch_size")
    lr = check_positive(lr, "lr")
    momentum = check_positive(momentum, "momentum", allow_zero=True)
    if momentum >= 1:
        raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
    x = _as_images(x)
    torch.manual_seed(seed)  # the initial weights and the dropout masks
    model = make_autoencoder(n_hidden, drop_rate=drop_rate)
    order = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    losses = []
    model.train()
    for _ in range(epochs):
        total = 0.0
        for batch in torch.randperm(len(x), generator=order).split(batch_size):
            xb = x[batch]
            loss = ((model(xb) - xb) ** 2).sum(dim=1).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        losses.append(total / len(x))
    if not np.isfinite(losses[-1]):
        raise RuntimeError(f"training diverged (loss {losses[-1]}): lower lr, now {lr}")
    return model.eval(), losses


# --- what the hidden units do ------------------------------------------------------------------------------------


def hidden_activations(model: nn.Module, x: np.ndarray | torch.Tensor) -> np.ndarray:
    """The hidden units' activations relu(W1 x + b1), shape (images, units): what the decoder sees at test time.

    Chapter: co_adaptation
    """
    encoder, _ = _check_autoencoder(model)
    with torch.no_grad():
        return torch.relu(encoder(_as_images(x))).numpy().astype(np.float64)


def features(model: nn.Module) -> np.ndarray:
    """Each hidden unit's incoming weights as a 28×28 image, shape (units, 28, 28): the paper's Fig. 7.

    Chapter: co_adaptation
    """
    encoder, _ = _check_autoencoder(model)
    return encoder.weight.detach().numpy().reshape(-1, *IMAGE_SHAPE).astype(np.float64)


def live_units(activations: np.ndarray) -> np.ndarray:
    """Which units (columns) are positive on at least one image; the others are dead: they never fire.

    Chapter: co_adaptation
    """
    activations = _as_activations(activations)
    return (activations > 0).any(axis=0)


def _as_activations(activations: np.ndarray) -> np.ndarray:
    """Return non-negative activations (images, units) as a float array, or raise."""
    activations = np.asarray(activations, dtype=np.float64)
    if activations.ndim != 2 or 0 in activations.shape:
        raise ValueError(f"activations must have shape (images, units), both >= 1, got {activations.shape}")
    if not np.isfinite(activations).all() or (activations < 0).any():
        raise ValueError("activations must be finite and non-negative, as ReLU outputs are")
    return activations


def sparsity(activations: np.ndarray) -> dict[str, float]:
    """How sparse the hidden activations are: mean activation, the share exactly zero, dead units.

    'zero share' is the fraction of exactly-zero activations (the mean over images of each image's share of silent
    units); 'dead units' is the fraction of units silent on every image; 'zero share, live units' is the zero share
    among the others, so that dead units cannot make a layer look sparse on their own.
    Chapter: co_adaptation
    """
    activations = _as_activations(activations)
    live = live_units(activations)
    return {
        "mean activation": float(activations.mean()),
        "zero share": float((activations == 0).mean()),
        "dead units": float(1.0 - live.mean()),
        "zero share, live units": float((activations[:, live] == 0).mean()) if live.any() else 1.0,
    }


# --- removing hidden units at test time --------------------------------------------------------------------------


def _masked(h: torch.Tensor, decoder: nn.Linear, x: torch.Tensor, keep: torch.Tensor, scale: float) -> np.ndarray:
    """Each image's error when the decoder sees only the kept hidden activations, multiplied by `scale`."""
    with torch.no_grad():
        return ((decoder(h * keep * scale) - x) ** 2).sum(dim=1).numpy().astype(np.float64)


def _best_scale(h: torch.Tensor, decoder: nn.Linear, x: torch.Tensor, keep: torch.Tensor) -> float:
    """The least-squares factor for the kept units' part of the reconstruction."""
    with torch.no_grad():
        signal = (h * keep) @ decoder.weight.T  # what the kept units add, unscaled
        target = x - decoder.bias
        power = (signal * signal).sum().item()
        return 1.0 if power == 0 else (signal * target).sum().item() / power


def masked_errors(model: nn.Module, x: np.ndarray | torch.Tensor, keep: np.ndarray, scale: float) -> np.ndarray:
    """Each image's reconstruction error with only the hidden units in `keep`, their outputs multiplied by `scale`.

    Chapter: co_adaptation
    """
    encoder, decoder = _check_autoencoder(model)
    keep_t = _check_keep(keep, encoder.out_features)
    if isinstance(scale, bool) or not isinstance(scale, Real) or not np.isfinite(scale):
        raise TypeError(f"scale must be a finite number, got {scale!r}")
    x = _as_images(x)
    with torch.no_grad():
        return _masked(torch.relu(encoder(x)), decoder, x, keep_t, float(scale))


def best_scale(model: nn.Module, x: np.ndarray | torch.Tensor, keep: np.ndarray) -> float:
    """The one factor for the kept units' outputs that minimises the mean masked error on `x` (least squares).

    Chapter: co_adaptation
    """
    encoder, decoder = _check_autoencoder(model)
    keep_t = _check_keep(keep, encoder.out_features)
    x = _as_images(x)
    with torch.no_grad():
        return _best_scale(torch.relu(encoder(x)), decoder, x, keep_t)


def removal_errors(model: nn.Module, x: np.ndarray | torch.Tensor, *, fraction: float = 0.5, n_masks: int = 20,
                   seed: int = 0) -> dict[str, float]:
    """The mean reconstruction error intact and with each hidden unit removed with probability `fraction`.

    Each of `n_masks` masks removes every unit independently, as dropout does. 'rescaled' multiplies the kept units
    by 1 / (1 - fraction), inverted dropout's factor, which leaves each unit's expected output unchanged; 'best
    rescaling' uses, mask by mask, the single factor that suits the network best (`best_scale`), the fairest chance a
    network trained without dropout can be given. Errors are means over images (and masks).
    Chapter: co_adaptation
    """
    encoder, decoder = _check_autoencoder(model)
    fraction = _check_fraction(fraction)
    n_masks = check_count(n_masks, "n_masks")
    rng = np.random.default_rng(check_seed(seed))
    x = _as_images(x)
    with torch.no_grad():
        h = torch.relu(encoder(x))
    rescaled, best = [], []
    for _ in range(n_masks):
        keep = rng.random(encoder.out_features) >= fraction
        if not keep.any():  # possible only for tiny layers; such a mask removes the whole code
            keep[rng.integers(encoder.out_features)] = True
        keep_t = torch.as_tensor(keep, dtype=torch.float32)
        rescaled.append(_masked(h, decoder, x, keep_t, 1.0 / (1.0 - fraction)).mean())
        best.append(_masked(h, decoder, x, keep_t, _best_scale(h, decoder, x, keep_t)).mean())
    intact = _masked(h, decoder, x, torch.ones(encoder.out_features), 1.0).mean()
    return {"intact": float(intact), "rescaled": float(np.mean(rescaled)), "best rescaling": float(np.mean(best))}


def unit_contributions(model: nn.Module, x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Each image's sum over hidden units of ‖h_j w_j‖², the squared size of what each unit adds on its own.

    h_j is unit j's activation and w_j its column of decoder weights, so h_j w_j is the unit's contribution to the
    reconstruction; the sum is over units, one value per image.
    Chapter: co_adaptation
    """
    _, decoder = _check_autoencoder(model)
    h = hidden_activations(model, x)
    column_power = (decoder.weight.detach().numpy().astype(np.float64) ** 2).sum(axis=0)  # ‖w_j‖² per unit
    return (h**2) @ column_power


def ablation_rises(model: nn.Module, x: np.ndarray | torch.Tensor) -> np.ndarray:
    """How much the mean error rises when each hidden unit alone is removed, the others untouched, one per unit.

    Removing unit j adds its contribution h_j w_j back to each image's residual x - x̂, so the rise is the mean over
    images of 2 (x - x̂)·(h_j w_j) + ‖h_j w_j‖², computed for every unit at once (exact, no masks drawn).
    Chapter: co_adaptation
    """
    _, decoder = _check_autoencoder(model)
    x_np = _as_images(x).numpy().astype(np.float64)
    h = hidden_activations(model, x)
    weights = decoder.weight.detach().numpy().astype(np.float64)  # (pixels, units)
    residual = x_np - (h @ weights.T + decoder.bias.detach().numpy().astype(np.float64))
    return (2 * h * (residual @ weights) + h**2 * (weights**2).sum(axis=0)).mean(axis=0)


def removal_penalty(model: nn.Module, x: np.ndarray | torch.Tensor, fraction: float = 0.5) -> float:
    """The exact expected rise of the mean error when each unit is removed with probability `fraction`, rescaled.

    With a linear decoder and squared error, removing unit j with probability f and scaling the kept units by
    1 / (1 - f) leaves the reconstruction's mean unchanged and adds variance f / (1 - f) ‖h_j w_j‖², independently
    for each unit, so the expected error is the intact error plus f / (1 - f) times `unit_contributions`, averaged
    over images. Dropout training at rate f minimises exactly this sum.
    Chapter: co_adaptation
    """
    fraction = _check_fraction(fraction)
    return float(fraction / (1.0 - fraction) * unit_contributions(model, x).mean())


def cancellation_ratio(model: nn.Module, x: np.ndarray | torch.Tensor) -> float:
    """Σ over images and units of ‖h_j w_j‖², over Σ over images of ‖Σ_j h_j w_j‖²: above 1, the units cancel.

    The denominator is the squared size of what the hidden layer adds to the reconstruction altogether, the
    numerator the same for its units taken one at a time. Units whose contributions point in unrelated directions
    give about 1; units that build the image together give less; units that each add large pieces that mostly cancel
    each other, so that each is only right together with its partners, give more.
    Chapter: co_adaptation
    """
    _, decoder = _check_autoencoder(model)
    h = hidden_activations(model, x)
    together = h @ decoder.weight.detach().numpy().astype(np.float64).T
    return float(unit_contributions(model, x).sum() / (together**2).sum())


# --- figures -----------------------------------------------------------------------------------------------------


def plot_features(models: Mapping[str, nn.Module], x: np.ndarray, *, n_units: int = 20, ncols: int = 4,
                  tile: float = 1.05) -> Figure:
    """The first `n_units` live hidden units' features of each model, one grid per model side by side (paper's Fig. 7).

    A unit is live if it fires on at least one image of `x`. Each image has its own symmetric grey scale: white for
    negative weights, black for positive, mid-grey for zero. `tile` is each image's size in inches.
    Chapter: co_adaptation
    """
    import matplotlib.pyplot as plt

    if not isinstance(models, Mapping) or not models:
        raise ValueError("models must be a non-empty mapping from a title to an autoencoder")
    n_units, ncols = check_count(n_units, "n_units"), check_count(ncols, "ncols")
    tile = check_positive(tile, "tile")
    nrows = -(-n_units // ncols)
    fig = plt.figure(figsize=((tile * ncols + 0.3) * len(models), tile * nrows + 0.45))
    for panel, (title, model) in zip(fig.subfigures(1, len(models), squeeze=False)[0], models.items(),
                                     strict=True):
        live = np.flatnonzero(live_units(hidden_activations(model, x)))[:n_units]
        images = features(model)[live]
        panel.suptitle(title, fontsize=11)
        for i, ax in enumerate(panel.subplots(nrows, ncols, squeeze=False).flat):
            ax.set_axis_off()
            if i < len(images):
                limit = np.abs(images[i]).max() or 1.0
                ax.imshow(images[i], cmap="gray_r", vmin=-limit, vmax=limit)
    return fig


def plot_activations(activations: Mapping[str, np.ndarray], *, bins: int = 40) -> Figure:
    """Histograms of the hidden activations and of each live unit's mean activation, one row per model (Fig. 8).

    Each column shares its axes across rows, and bar heights are shares (of all activations; of live units), so the
    rows compare directly. The left column draws only the positive activations, as shares of all of them, and states
    the share that is exactly zero in the panel. Its axis stops at the larger of the models' 99th percentiles of the
    positive activations; everything above it is drawn as one hatched bar beyond the axis's end, labelled with '>'.
    Chapter: co_adaptation
    """
    import matplotlib.pyplot as plt

    if not isinstance(activations, Mapping) or not activations:
        raise ValueError("activations must be a non-empty mapping from a title to an (images, units) array")
    arrays = {title: _as_activations(a) for title, a in activations.items()}
    bins = check_count(bins, "bins", minimum=2)
    top = max(np.quantile(a[a > 0], 0.99) if (a > 0).any() else 1.0 for a in arrays.values())
    unit_means = {title: a[:, live_units(a)].mean(axis=0) for title, a in arrays.items()}
    top_mean = max((m.max() for m in unit_means.values() if m.size), default=1.0)
    edges, mean_edges = np.linspace(0, top, bins + 1), np.linspace(0, top_mean, bins + 1)
    fig, axes = plt.subplots(len(arrays), 2, figsize=(9.6, 2.3 * len(arrays) + 0.7), sharex="col", sharey="col",
                             squeeze=False, layout="constrained")
    for row, colour, (title, a) in zip(axes, PALETTE, arrays.items(), strict=False):
        values = a.ravel()
        positive = values[values > 0]
        row[0].hist(positive[positive <= top], bins=edges, weights=np.full((positive <= top).sum(), 1 / len(values)),
                    color=colour)
        width = edges[1] - edges[0]
        row[0].bar(top + 2.5 * width, (positive > top).sum() / len(values), width=2 * width, color="white",
                   edgecolor=colour, hatch="////", linewidth=1.0)  # the clipped tail, apart from the rest
        row[0].text(0.97, 0.92, f"exactly 0: {(values == 0).mean():.0%} (not drawn)", transform=row[0].transAxes,
                    ha="right", va="top")
        means = unit_means[title]
        row[1].hist(means, bins=mean_edges, weights=np.full(len(means), 1 / max(len(means), 1)), color=colour)
        row[0].set_ylabel(f"{title}\nshare of activations")
        row[1].set_ylabel("share of live units")
    ticks = [t for t in np.arange(0.0, top, 0.5) if t <= top - 4 * (edges[1] - edges[0])]
    axes[-1, 0].set_xticks([*ticks, top + 2.5 * (edges[1] - edges[0])], [*(f"{t:g}" for t in ticks), f">{top:.1f}"])
    axes[-1, 0].set_xlabel("non-zero activation of a unit on a test digit")
    axes[-1, 1].set_xlabel("mean activation of a live unit over the test digits")
    return fig


def expected_removal_errors(model: nn.Module, x: np.ndarray | torch.Tensor, fractions: Sequence[float]) -> np.ndarray:
    """The exact expected mean error when each unit is removed with probability f and the rest rescaled, per f.

    The intact error plus `removal_penalty` at each fraction; a fraction of 0 gives the intact error.
    Chapter: co_adaptation
    """
    intact = float(reconstruction_errors(model, x).mean())
    contributions = float(unit_contributions(model, x).mean())
    values = []
    for fraction in fractions:
        if isinstance(fraction, Real) and not isinstance(fraction, bool) and fraction == 0:
            values.append(intact)
        else:
            fraction = _check_fraction(fraction)
            values.append(intact + fraction / (1.0 - fraction) * contributions)
    return np.array(values)


def best_factor_errors(model: nn.Module, x: np.ndarray | torch.Tensor, fractions: Sequence[float]) -> np.ndarray:
    """The exact expected mean error per f when each unit is removed with probability f, the rest rescaled at best.

    The kept units are multiplied by the single factor that makes this expectation smallest on `x`: an oracle,
    fitted on the very digits it scores.
    With S = Σ_j c_j the hidden layer's whole contribution and t = x - b2, the kept units add s (q S + noise) for
    q = 1 - f, so the expected error summed over digits is Σ‖t‖² - 2 s q Σ t·S + s² (q² Σ‖S‖² + q f Σ_j‖c_j‖²), a
    parabola in s; this returns its minimum per f, divided by the number of digits. At f = 0 it is the intact
    network with its output layer's hidden part rescaled at best, at most the intact error.
    Chapter: co_adaptation
    """
    encoder, decoder = _check_autoencoder(model)
    x = _as_images(x).double()
    with torch.no_grad():
        h = torch.relu(encoder(x.float())).double()
        weights, bias = decoder.weight.double(), decoder.bias.double()
        whole, target = h @ weights.T, x - bias
        parts = ((h**2) @ (weights**2).sum(dim=0)).sum().item()  # Σ over digits and units of ‖c_j‖²
        cross, power, total = ((target * whole).sum().item(), (whole * whole).sum().item(),
                               (target * target).sum().item())
    values = []
    for fraction in fractions:
        if isinstance(fraction, Real) and not isinstance(fraction, bool) and fraction == 0:
            fraction = 0.0
        else:
            fraction = _check_fraction(fraction)
        q = 1.0 - fraction
        curvature, slope = q * q * power + q * fraction * parts, q * cross
        values.append(total - (slope * slope / curvature if curvature > 0 else 0.0))
    return np.array(values) / len(x)


def first_crossing(fractions: Sequence[float], rising: Sequence[float], other: Sequence[float]) -> float:
    """The first fraction at which curve `rising`, below `other` at the start, reaches it (linear interpolation).

    Both curves are sampled at the increasing `fractions`; raises if `rising` does not start below or never reaches
    `other`.
    Chapter: co_adaptation
    """
    f, a, b = (np.asarray(v, dtype=np.float64) for v in (fractions, rising, other))
    if not (f.ndim == 1 and f.shape == a.shape == b.shape and len(f) >= 2 and (np.diff(f) > 0).all()):
        raise ValueError("fractions must increase, and both curves must have one value per fraction")
    gap = a - b
    if gap[0] >= 0 or (gap < 0).all():
        raise ValueError("no crossing: the first curve must start below the other and then reach it")
    i = int(np.argmax(gap >= 0))  # the first sample at or above
    return float(f[i - 1] + (f[i] - f[i - 1]) * -gap[i - 1] / (gap[i] - gap[i - 1]))


def crossover_fraction(intact_a: float, contributions_a: float, intact_b: float, contributions_b: float) -> float:
    """The removed fraction f at which two networks' expected errors (intact + f/(1-f) × contributions) are equal.

    Network a is the one better intact (lower `intact_a`) and worse under removal (larger `contributions_a`, the
    mean of `unit_contributions`); anything else has no crossing and raises.
    Chapter: co_adaptation
    """
    values = [intact_a, contributions_a, intact_b, contributions_b]
    if any(isinstance(v, bool) or not isinstance(v, Real) or not np.isfinite(v) or v < 0 for v in values):
        raise ValueError(f"errors and contributions must be finite and non-negative, got {values}")
    if not (intact_a < intact_b and contributions_a > contributions_b):
        raise ValueError("no crossing: network a must be better intact and have the larger contributions")
    odds = (intact_b - intact_a) / (contributions_a - contributions_b)  # f / (1 - f) at the crossing
    return float(odds / (1.0 + odds))


def plot_removal_curves(curves: Mapping[str, np.ndarray], fractions: Sequence[float],
                        measured: Mapping[str, np.ndarray] | None = None, *, at: float = 0.5,
                        best: Mapping[str, np.ndarray] | None = None) -> Figure:
    """Expected test error against the fraction of hidden units removed, one line per seed, one colour per model.

    `curves` maps a title to an array (seeds, fractions) from `expected_removal_errors`; `measured` may add, per
    title, the errors measured with random masks at the fraction `at`, drawn as white circles; `best` may add, per
    title, the same shape from `best_factor_errors`, drawn dashed. Log y-axis.
    Chapter: co_adaptation
    """
    import matplotlib.pyplot as plt

    fractions = np.asarray(fractions, dtype=np.float64)
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must be a non-empty mapping from a title to a (seeds, fractions) array")
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for colour, (title, values) in zip(PALETTE, curves.items(), strict=False):
        values = np.atleast_2d(np.asarray(values, dtype=np.float64))
        if values.shape[1] != len(fractions):
            raise ValueError(f"{title}: {values.shape[1]} values per seed for {len(fractions)} fractions")
        suffix = ", rescaled by 1/(1 − f)" if best is not None else ""
        for i, row in enumerate(values):
            ax.plot(fractions, row, color=colour, linewidth=1.2, alpha=0.8,
                    label=title + suffix if i == 0 else None)
        if best is not None and title in best:
            for i, row in enumerate(np.atleast_2d(np.asarray(best[title], dtype=np.float64))):
                ax.plot(fractions, row, color=colour, linewidth=1.2, alpha=0.8, linestyle="--",
                        label=f"{title}, best factor" if i == 0 else None)
        if measured is not None and title in measured:
            points = np.asarray(measured[title], dtype=np.float64)
            ax.scatter(np.full(len(points), at), points, s=45, facecolors="white", edgecolors=colour,
                       linewidths=1.5, zorder=3)
    ax.set(yscale="log", xlabel="fraction of hidden units removed at test time",
           ylabel="test error (squared, summed over pixels)")
    ax.legend(loc="upper left")
    return fig


def differences(plain: Mapping[str, np.ndarray], dropout: Mapping[str, np.ndarray]) -> dict[str, PairedDifference]:
    """Every score's paired difference, dropout minus plain, over the seeds both were trained on.

    Chapter: co_adaptation
    """
    if set(plain) != set(dropout):
        raise ValueError(f"the two networks have different scores: {sorted(set(plain) ^ set(dropout))}")
    return {key: paired_difference(dropout[key], plain[key]) for key in plain}


def difference_table(plain: Mapping[str, np.ndarray], dropout: Mapping[str, np.ndarray],
                     diffs: Mapping[str, PairedDifference], *, digits: int = 3,
                     percent: Sequence[str] = ()) -> pd.DataFrame:
    """A table: each score's mean without and with dropout, the 95 % interval of the difference and its verdict.

    Scores named in `percent` are shares: shown in per cent, their differences in percentage points (whole numbers).
    Chapter: co_adaptation
    """
    digits = check_count(digits, "digits", minimum=0)
    rows = {}
    for key in diffs:
        if key in percent:
            cells = [f"{100 * np.mean(plain[key]):.0f} %", f"{100 * np.mean(dropout[key]):.0f} %",
                     diffs[key].describe(scale=100, unit="points", digits=0)]
        else:
            cells = [f"{np.mean(plain[key]):.{digits}f}", f"{np.mean(dropout[key]):.{digits}f}",
                     diffs[key].describe(scale=1, unit="", digits=digits)]
        rows[key] = dict(zip(("without dropout", "with dropout", "with − without"), cells, strict=True))
        rows[key]["verdict"] = diffs[key].verdict()
    return pd.DataFrame(rows).T


def summarise_runs(runs: Sequence[Mapping[str, float]]) -> dict[str, np.ndarray]:
    """Turn one dict of scores per seed into one array per score, in seed order (for paired comparisons).

    Chapter: co_adaptation
    """
    if not runs:
        raise ValueError("runs must hold at least one dict of scores")
    keys = list(runs[0])
    if any(list(run) != keys for run in runs):
        raise ValueError("every run must have the same scores in the same order")
    return {key: np.array([run[key] for run in runs], dtype=np.float64) for key in keys}
