"""Dropout's relatives: DropConnect in NumPy with its inference rules, Gaussian dropout's moments, alpha dropout.

`DropConnectLinear` zeroes weights instead of activations; `DropConnectMLP` puts it in the book's NumPy MLP so that
`utils.numpy_mlp.train_numpy_mlp` trains it. `moment_matched_inference` is the inference rule of Wan et al. (2013),
`mask_average` the Monte Carlo average it approximates. The rest measures Gaussian and alpha dropout.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import numpy as np
import torch

from utils.checks import check_count, check_rate, check_seed
from utils.dropout import Dropout
from utils.gradcheck import numerical_gradient_array, relative_error
from utils.numpy_mlp import Linear, NumpyMLP

# SELU's constants (Klambauer et al. 2017, eq. 14), the values PyTorch and Keras use.
SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717
NOISES = ("none", "dropout", "alpha dropout")


def _check_batch(x: object, n_in: int) -> np.ndarray:
    """Return `x` if it is a 2-D float array with `n_in` columns; raise a clear error otherwise."""
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"x must be a floating-point NumPy array, got {type(x).__name__}")
    if x.ndim != 2 or x.shape[1] != n_in:
        raise ValueError(f"x must have shape (examples, {n_in}), got {x.shape}")
    return x


def _check_mask(mask: object, shape: tuple[int, ...]) -> np.ndarray:
    """Return `mask` if it is a boolean array of `shape`; raise a clear error otherwise."""
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != shape:
        got = f"{mask.dtype} array of shape {mask.shape}" if isinstance(mask, np.ndarray) else type(mask).__name__
        raise ValueError(f"mask must be a boolean array (True = keep) of shape {shape}, got {got}")
    return mask


def _check_grad(grad_out: object, shape: tuple[int, ...]) -> np.ndarray:
    """Return `grad_out` if it is an array of `shape`; raise a clear error otherwise."""
    if not isinstance(grad_out, np.ndarray) or grad_out.shape != shape:
        got = grad_out.shape if isinstance(grad_out, np.ndarray) else type(grad_out).__name__
        raise ValueError(f"grad_out must have shape {shape}, got {got}")
    return grad_out


class DropConnectLinear(Linear):
    """A Linear layer y = x (M ⊙ W) / (1 - rate) + b with a fresh weight mask M for every example in training.

    Each weight is kept with probability q = 1 - rate, independently for every example; the kept weights are
    scaled by 1/q (inverted DropConnect), so that in evaluation mode the layer is the plain x W + b with the mean
    weights. The bias is not masked. W has shape (n_in, n_out), as in `utils.numpy_mlp.Linear`.
    Chapter: relatives
    """

    def __init__(self, n_in: int, n_out: int, rate: float, rng: np.random.Generator, *,
                 seed: int | None = None, dtype: type | np.dtype = np.float64) -> None:
        super().__init__(n_in, n_out, rng, np.dtype(dtype))
        self.rate = check_rate(rate)
        self.mask_rng = np.random.default_rng(None if seed is None else check_seed(seed))
        self.training = True
        self._mask: np.ndarray | None = None  # the last training-mode masks M, one per example
        self._masked: np.ndarray | None = None  # and (M ⊙ W) / q

    def __repr__(self) -> str:
        return f"DropConnectLinear({self.W.shape[0]}, {self.W.shape[1]}, rate={self.rate})"

    def train(self, mode: bool = True) -> DropConnectLinear:
        """Switch to training mode (`mode=False`: evaluation mode); return the layer."""
        self.training = bool(mode)
        return self

    def eval(self) -> DropConnectLinear:
        """Switch to evaluation mode, where the layer uses its mean weights W; return it."""
        return self.train(False)

    @property
    def mask(self) -> np.ndarray | None:
        """The boolean masks (examples, n_in, n_out; True = kept) of the last training-mode forward, or None."""
        return self._mask

    def draws_per_example(self) -> int:
        """How many random numbers one example costs in training: one per weight."""
        return int(self.W.size)

    def forward(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Return x (M ⊙ W)/q + b in training, a mask M per example; x W + b in eval.

        `mask`, if given: boolean, shape (examples, n_in, n_out), True = keep.
        At rate 0 the layer is the plain x W + b in both modes.
        """
        x = _check_batch(x, self.W.shape[0])
        self._x = x
        if not self.training or self.rate == 0.0:
            self._mask = self._masked = None
            return x @ self.W + self.b
        shape = (len(x), *self.W.shape)  # one mask per example
        if mask is None:
            mask = self.mask_rng.random(shape) >= self.rate
        self._mask = _check_mask(mask, shape)
        scaled = self.W * self.W.dtype.type(1.0 / (1.0 - self.rate))
        self._masked = mask * scaled  # (examples, n_in, n_out)
        return (x[:, None, :] @ self._masked)[:, 0, :] + self.b

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Store grad_W and grad_b through the last forward's masks; return grad x."""
        if self._x is None:
            raise RuntimeError("backward() called before forward()")
        if self._masked is None:
            return super().backward(grad_out)
        grad_out = _check_grad(grad_out, (len(self._x), self.W.shape[1]))
        scale = self.W.dtype.type(1.0 / (1.0 - self.rate))
        outer = self._x[:, :, None] * grad_out[:, None, :]  # x_n^T g_n per example
        self.grad_W[...] = np.einsum("nij,nij->ij", outer, self._mask) * scale
        self.grad_b[...] = grad_out.sum(axis=0)
        return (self._masked @ grad_out[:, :, None])[:, :, 0]


def preactivation_moments(
    layer: DropConnectLinear, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The mean and variance over weight masks of each training pre-activation.

    With inverted scaling: mean x W + b, variance (p/q) (x ⊙ x)(W ⊙ W). (The paper,
    without the 1/q, writes q x W and q(1 - q)(x ⊙ x)(W ⊙ W).)
    Chapter: relatives
    """
    if not isinstance(layer, DropConnectLinear):
        raise TypeError(f"layer must be a DropConnectLinear, got {type(layer).__name__}")
    x = _check_batch(x, layer.W.shape[0])
    ratio = layer.rate / (1.0 - layer.rate)
    return x @ layer.W + layer.b, ratio * (x * x) @ (layer.W * layer.W)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, computed stably.

    Chapter: relatives
    """
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _check_inference(layer: object, x: object, activation: object, n: int, name: str) -> tuple[np.ndarray, int]:
    """Check the arguments shared by the two sampling inference rules; return x and n checked."""
    if not isinstance(layer, DropConnectLinear):
        raise TypeError(f"layer must be a DropConnectLinear, got {type(layer).__name__}")
    if not callable(activation):
        raise TypeError(f"activation must be a callable on arrays, got {type(activation).__name__}")
    return _check_batch(x, layer.W.shape[0]), check_count(n, name)


def moment_matched_inference(
    layer: DropConnectLinear,
    x: np.ndarray,
    activation: Callable[[np.ndarray], np.ndarray],
    *,
    n_samples: int,
    seed: int = 0,
) -> np.ndarray:
    """Wan et al.'s inference: average activation(u) over u from the matched Gaussian.

    The pre-activations of different output units are independent under DropConnect
    (their weights have separate masks), so the Gaussian has a diagonal covariance.
    Chapter: relatives
    """
    x, n_samples = _check_inference(layer, x, activation, n_samples, "n_samples")
    mean, variance = preactivation_moments(layer, x)  # two matrix products
    std = np.sqrt(variance)
    rng = np.random.default_rng(check_seed(seed))
    total = np.zeros_like(activation(mean), dtype=np.float64)
    for _ in range(n_samples):  # per draw: one multiply-add per output unit
        total += activation(mean + std * rng.standard_normal(mean.shape))
    return total / n_samples


def mask_average(layer: DropConnectLinear, x: np.ndarray, activation: Callable[[np.ndarray], np.ndarray], *,
                 n_masks: int, seed: int = 0) -> np.ndarray:
    """The Monte Carlo average of activation(training-mode output) over `n_masks` weight masks per example.

    The layer's own mask stream and mode are left untouched.
    Chapter: relatives
    """
    x, n_masks = _check_inference(layer, x, activation, n_masks, "n_masks")
    rng = np.random.default_rng(check_seed(seed))
    scaled = layer.W / (1.0 - layer.rate)
    total = np.zeros_like(activation(x @ layer.W + layer.b), dtype=np.float64)
    for _ in range(n_masks):
        keep = rng.random((len(x), *layer.W.shape)) >= layer.rate
        total += activation((x[:, None, :] @ (keep * scaled))[:, 0, :] + layer.b)
    return total / n_masks


class DropConnectMLP(NumpyMLP):
    """The book's NumPy ReLU MLP with DropConnect instead of dropout, in every Linear layer after the first.

    The weights are those of `NumpyMLP(sizes, seed=seed)`, so a dropout network and a DropConnect network of the
    same seed start from the same weights. The masks come from their own stream, spawned from `seed`.
    Chapter: relatives
    """

    def __init__(self, sizes: Sequence[int], *, rate: float, seed: int = 0,
                 dtype: type | np.dtype = np.float32) -> None:
        super().__init__(sizes, seed=seed, dtype=dtype)
        self.rate = check_rate(rate)
        streams = np.random.SeedSequence([check_seed(seed), 1]).generate_state(len(self.layers))
        for index, layer in enumerate(self.layers):
            if isinstance(layer, Linear) and index > 0:
                swapped = DropConnectLinear(*layer.W.shape, self.rate, np.random.default_rng(0),
                                            seed=int(streams[index]), dtype=self.dtype)
                swapped.W[...], swapped.b[...] = layer.W, layer.b
                self.layers[index] = swapped

    @property
    def dropconnect_layers(self) -> list[DropConnectLinear]:
        """The model's DropConnect layers, input to output."""
        return [layer for layer in self.layers if isinstance(layer, DropConnectLinear)]

    def train(self, mode: bool = True) -> DropConnectMLP:
        """Put every DropConnect layer in training mode (evaluation mode with `mode=False`); return the model."""
        super().train(mode)
        for layer in self.dropconnect_layers:
            layer.train(mode)
        return self


def make_mlp(sizes: Sequence[int], method: str, rate: float, *, seed: int = 0) -> NumpyMLP:
    """A NumPy MLP with dropout, Gaussian dropout, DropConnect or no noise at drop rate `rate`.

    `method` is "dropout", "gaussian" (Gaussian dropout, `GaussianDropout`, where dropout would be), "dropconnect"
    (on the weights of every Linear layer after the first) or "none" (the rate must then be 0). For one seed all
    methods start from the same weights.
    Chapter: relatives
    """
    rate = check_rate(rate)
    if method == "dropout":
        return NumpyMLP(sizes, drop_rate=rate, seed=seed)
    if method == "gaussian":
        model = NumpyMLP(sizes, drop_rate=rate, seed=seed)
        model.layers = [GaussianDropout(rate, seed=layer.rng) if isinstance(layer, Dropout) else layer
                        for layer in model.layers]
        return model
    if method == "dropconnect":
        return DropConnectMLP(sizes, rate=rate, seed=seed)
    if method == "none":
        if rate != 0.0:
            raise ValueError(f"method 'none' takes no noise, so its rate must be 0, got {rate}")
        return NumpyMLP(sizes, seed=seed)
    raise ValueError(f"method must be 'none', 'dropout', 'gaussian' or 'dropconnect', got {method!r}")


# --- Gaussian dropout --------------------------------------------------------------------------------------------


def gaussian_dropout_std(rate: float) -> float:
    """The standard deviation sqrt(p / (1 - p)) of the N(1, σ²) multiplier that matches inverted dropout at rate p.

    Chapter: relatives
    """
    rate = check_rate(rate)
    return math.sqrt(rate / (1.0 - rate))


class GaussianDropout(Dropout):
    """Gaussian dropout: multiply each element by a fresh N(1, p/(1 - p)) factor in training; identity in evaluation.

    A subclass of the book's `Dropout`, so the NumPy MLP trains it; it keeps the factors (not a boolean mask) for
    backward. It draws its own factors: a given `mask` is refused.
    Chapter: relatives
    """

    def forward(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Multiply `x` by fresh Gaussian factors in training mode; return `x` in evaluation mode."""
        if mask is not None:
            raise TypeError("GaussianDropout draws its own factors; it takes no mask")
        return super().forward(x)

    __call__ = forward

    def _draw_and_apply(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Draw the factors for `x` and apply them: (output, the factors)."""
        noise = self.rng.standard_normal(x.shape)
        factor = (1.0 + gaussian_dropout_std(self.rate) * noise).astype(x.dtype)
        return x * factor, factor

    def _apply_backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Return `grad_out` times the last forward call's factors."""
        return grad_out * self._mask


def multipliers(kind: str, rate: float, n: int, *, seed: int = 0) -> np.ndarray:
    """`n` random multipliers of inverted Bernoulli dropout (0 or 1/q) or Gaussian dropout (N(1, p/q)).

    Chapter: relatives
    """
    rate, n = check_rate(rate), check_count(n, "n")
    rng = np.random.default_rng(check_seed(seed))
    if kind == "bernoulli":
        return (rng.random(n) >= rate) / (1.0 - rate)
    if kind == "gaussian":
        return 1.0 + gaussian_dropout_std(rate) * rng.standard_normal(n)
    raise ValueError(f"kind must be 'bernoulli' or 'gaussian', got {kind!r}")


def sample_moments(values: np.ndarray) -> dict[str, float]:
    """The sample mean and variance of `values` with their standard errors, and the excess kurtosis.

    The variance's standard error is sqrt((m4 - var²) / n), m4 the fourth central moment.
    Chapter: relatives
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size < 2 or not np.all(np.isfinite(values)):
        raise ValueError(f"values must hold at least two finite numbers, got {values.size}")
    centred = values - values.mean()
    variance = float(np.mean(centred**2))
    m4 = float(np.mean(centred**4))
    return {"mean": float(values.mean()), "mean_se": math.sqrt(variance / values.size),
            "variance": variance, "variance_se": math.sqrt(max(m4 - variance**2, 0.0) / values.size),
            "excess kurtosis": m4 / variance**2 - 3.0 if variance > 0 else math.nan}


# --- alpha dropout -----------------------------------------------------------------------------------------------


def selu(x: np.ndarray) -> np.ndarray:
    """SELU: λ x for x > 0, λ α (exp(x) - 1) otherwise.

    Chapter: relatives
    """
    return SELU_LAMBDA * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0.0)))


def alpha_dropout_affine(rate: float) -> tuple[float, float, float]:
    """(α', a, b) of alpha dropout at drop rate p: dropped units are set to α' = -λα, then x -> a x + b.

    a = (q + α'² q p)^(-1/2) and b = -a p α' keep mean 0 and variance 1 for inputs of mean 0 and variance 1.
    Chapter: relatives
    """
    rate = check_rate(rate)
    keep, saturation = 1.0 - rate, -SELU_LAMBDA * SELU_ALPHA
    a = (keep + saturation**2 * keep * rate) ** -0.5
    return saturation, a, -a * rate * saturation


def selu_stack_moments(noise: str, rate: float, *, depth: int = 32, width: int = 128, n: int = 2000,
                       seed: int = 0) -> dict[str, np.ndarray]:
    """Mean and variance of the activations after each layer of a deep random SELU network, in training mode.

    Each layer is Linear (LeCun-normal weights, no bias) then SELU then the noise: "none", "dropout"
    (`torch.nn.Dropout`) or "alpha dropout" (`torch.nn.AlphaDropout`). The inputs are standard normal; the
    weights depend on `seed` only, so the three noises see the same network.
    Chapter: relatives
    """
    if noise not in NOISES:
        raise ValueError(f"noise must be one of {', '.join(map(repr, NOISES))}, got {noise!r}")
    rate = check_rate(rate)
    depth, width, n = check_count(depth, "depth"), check_count(width, "width"), check_count(n, "n")
    weights = torch.Generator().manual_seed(check_seed(seed))
    layer_noise = {"none": torch.nn.Identity(), "dropout": torch.nn.Dropout(rate),
                   "alpha dropout": torch.nn.AlphaDropout(rate)}[noise].train()
    x = torch.randn(n, width, generator=weights, dtype=torch.float64)
    means, variances = [], []
    # the noise layers draw from torch's global stream: seed a forked copy, restored afterwards
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(check_seed(seed) + 1)
        for _ in range(depth):
            w = torch.randn(width, width, generator=weights, dtype=torch.float64) / math.sqrt(width)
            x = layer_noise(torch.nn.functional.selu(x @ w))
            means.append(float(x.mean()))
            variances.append(float(x.var()))
    return {"mean": np.array(means), "variance": np.array(variances)}


def last_layer_inputs(model: NumpyMLP, x: np.ndarray) -> np.ndarray:
    """What the last Linear layer of `model` receives for inputs `x`, in evaluation mode; the mode is restored.

    Chapter: relatives
    """
    if not isinstance(model, NumpyMLP):
        raise TypeError(f"model must be a NumpyMLP, got {type(model).__name__}")
    x = _check_batch(np.asarray(x, dtype=model.dtype), model.sizes[0])
    was_training = model.training
    model.eval()
    for layer in model.layers[:-1]:
        x = layer.forward(x)
    model.train(was_training)
    return x


def dropconnect_gradient_errors(layer: DropConnectLinear, x: np.ndarray, grad_out: np.ndarray) -> dict[str, float]:
    """Relative errors of the layer's gradients wrt x, W and b against central differences, masks held fixed.

    Runs one training forward pass on `x` to draw the masks, then backward with `grad_out`; the layer's weights
    and bias are restored afterwards.
    Chapter: relatives
    """
    if not isinstance(layer, DropConnectLinear):
        raise TypeError(f"layer must be a DropConnectLinear, got {type(layer).__name__}")
    x = _check_batch(x, layer.W.shape[0])
    layer.forward(x)
    masks = layer.mask
    if masks is None:
        raise ValueError("the layer must be in training mode with a rate above 0 to draw masks")
    grad_out = _check_grad(grad_out, (len(x), layer.W.shape[1]))
    analytic = {"x": layer.backward(grad_out), "W": layer.grad_W.copy(), "b": layer.grad_b.copy()}
    values = {"x": x, "W": layer.W, "b": layer.b}

    def output_for(array: np.ndarray, name: str) -> np.ndarray:
        saved = layer.W, layer.b
        layer.W, layer.b = (array if name == "W" else saved[0]), (array if name == "b" else saved[1])
        try:
            return layer.forward(array if name == "x" else x, mask=masks)
        finally:
            layer.W, layer.b = saved

    return {name: relative_error(analytic[name], numerical_gradient_array(
        lambda a, name=name: output_for(a, name), values[name].copy(), grad_out)) for name in values}


class TorchGaussianDropout(torch.nn.Module):
    """Gaussian dropout in PyTorch: x (1 + σ ε) in training, the identity in evaluation.

    Here σ = √(p/(1 − p)) and ε ~ N(0, 1), drawn afresh for every element.
    Chapter: relatives
    """

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = check_rate(rate)
        self.sigma = gaussian_dropout_std(self.rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        return x * (1 + self.sigma * torch.randn_like(x))


class TorchDropConnectLinear(torch.nn.Linear):
    """A PyTorch linear layer with DropConnect, one weight mask per forward pass.

    In training the kept weights are divided by q = 1 - p; the mask is
    shared by the whole minibatch. In evaluation it is the plain linear
    layer (the mean-weight rule). The bias is not masked.
    Chapter: relatives
    """

    def __init__(self, in_features: int, out_features: int, rate: float,
                 bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.rate = check_rate(rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return super().forward(x)
        keep = torch.rand_like(self.weight) >= self.rate
        weight = self.weight * keep / (1 - self.rate)
        return torch.nn.functional.linear(x, weight, self.bias)


def true_minus(text: str) -> str:
    """`text` with each minus sign before a number, name or bracket typeset as − (U+2212), and no negative zero.

    Hyphens inside words ("cross-entropy") stay; "−0.00" (a rounded negative zero) becomes "0.00".
    Chapter: relatives
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    text = re.sub(r"(?<![A-Za-z])-(?=[\w.(])", "\u2212", text)
    return re.sub(r"\u2212(0(?:\.0+)?)(?![\d.])", r"\1", text)
