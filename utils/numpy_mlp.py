"""A small multilayer perceptron in plain NumPy, with the book's reference Dropout layer between its layers.

Layers: Linear, ReLU and utils.dropout.Dropout, each with forward(x) and backward(grad_out); the loss is softmax
cross-entropy; training is minibatch SGD with momentum. The history that `train_numpy_mlp` returns has the keys
of utils.training's histories ("loss", "accuracy", "val_loss", "val_accuracy"), so utils.plotting draws it.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
from threadpoolctl import threadpool_limits

from utils.checks import check_count, check_rate, check_seed
from utils.dropout import Dropout
from utils.progress import progress

History = dict[str, list[float]]

# Training runs BLAS on one thread. The matrix products of a small batch gain little from a second thread, and
# OpenBLAS's threads wait for each other by spinning: on a machine whose cores are busy with other work, a run with
# two BLAS threads was measured 10 to 20 times slower than with one.
TRAINING_BLAS_THREADS = 1


def _check_float_dtype(dtype: object) -> np.dtype:
    """Return `dtype` as a NumPy dtype if it is float32 or float64; raise a clear error otherwise."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a NumPy float dtype (float32 or float64), got {dtype!r}") from None
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


class Linear:
    """A fully connected layer y = x W + b, with He-initialised weights; backward stores grad_W and grad_b.

    Chapter: numpy_dropout
    """

    def __init__(self, n_in: int, n_out: int, rng: np.random.Generator, dtype: np.dtype = np.float32) -> None:
        n_in, n_out = check_count(n_in, "n_in"), check_count(n_out, "n_out")
        self.W = (rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(dtype)
        self.b = np.zeros(n_out, dtype=dtype)
        self.grad_W = np.zeros_like(self.W)
        self.grad_b = np.zeros_like(self.b)
        self._x: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"Linear({self.W.shape[0]}, {self.W.shape[1]})"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Return x W + b and remember x for backward."""
        self._x = x
        return x @ self.W + self.b

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Store the parameter gradients of the last forward call; return the gradient with respect to its input."""
        if self._x is None:
            raise RuntimeError("backward() called before forward()")
        self.grad_W[...] = self._x.T @ grad_out
        self.grad_b[...] = grad_out.sum(axis=0)
        return grad_out @ self.W.T


class ReLU:
    """max(x, 0), elementwise; backward passes the gradient where the input was positive.

    Chapter: numpy_dropout
    """

    def __init__(self) -> None:
        self._positive: np.ndarray | None = None

    def __repr__(self) -> str:
        return "ReLU()"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Return max(x, 0) in x's dtype and remember where x > 0."""
        self._positive = x > 0
        return np.maximum(x, x.dtype.type(0))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Return grad_out where the last forward input was positive, 0 elsewhere."""
        if self._positive is None:
            raise RuntimeError("backward() called before forward()")
        return grad_out * self._positive


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Return the mean cross-entropy of softmax(logits) against integer labels, and its gradient wrt the logits.

    Chapter: numpy_dropout
    """
    if not isinstance(logits, np.ndarray) or logits.ndim != 2 or not np.issubdtype(logits.dtype, np.floating):
        raise TypeError("logits must be a 2-D floating-point array (examples x classes)")
    labels = np.asarray(labels)
    if labels.shape != (len(logits),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {len(logits)} integers, one per row of logits, got shape {labels.shape}")
    if len(logits) == 0:
        raise ValueError("cannot compute a loss on zero examples")
    if labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError(f"labels must lie in 0..{logits.shape[1] - 1}, got {labels.min()}..{labels.max()}")
    shifted = logits - logits.max(axis=1, keepdims=True)  # exp cannot overflow
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(labels))
    loss = -float(log_probs[rows, labels].mean())
    grad = np.exp(log_probs)
    grad[rows, labels] -= 1.0
    return loss, grad / logits.dtype.type(len(labels))


class NumpyMLP:
    """A ReLU MLP: optional Dropout on the inputs, then Linear, ReLU and Dropout per hidden layer, then Linear.

    `sizes` is (inputs, hidden..., classes). Each Dropout layer gets its own random stream, spawned from `seed`;
    the weights come from the same seed. With a rate of 0 the matching Dropout layers are left out.
    Chapter: numpy_dropout
    """

    def __init__(self, sizes: Sequence[int], *, drop_rate: float = 0.0, input_drop_rate: float = 0.0, seed: int = 0,
                 dtype: type | np.dtype = np.float32) -> None:
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or len(sizes) < 2:
            raise ValueError("sizes must be a sequence of at least two layer sizes (inputs ... classes), "
                             f"got {sizes!r}")
        self.sizes = [check_count(size, "every layer size") for size in sizes]
        self.drop_rate, self.input_drop_rate = check_rate(drop_rate), check_rate(input_drop_rate)
        self.dtype = _check_float_dtype(dtype)
        rng = np.random.default_rng(check_seed(seed))
        self.layers: list = [Dropout(self.input_drop_rate, seed=rng.spawn(1)[0])] if self.input_drop_rate else []
        for n_in, n_out in zip(self.sizes[:-2], self.sizes[1:-1]):
            self.layers += [Linear(n_in, n_out, rng, self.dtype), ReLU()]
            if self.drop_rate:
                self.layers.append(Dropout(self.drop_rate, seed=rng.spawn(1)[0]))
        self.layers.append(Linear(self.sizes[-2], self.sizes[-1], rng, self.dtype))
        self.training = True

    def __repr__(self) -> str:
        return "NumpyMLP(\n" + "".join(f"  {layer!r}\n" for layer in self.layers) + ")"

    @property
    def dropout_layers(self) -> list[Dropout]:
        """The model's Dropout layers, input to output."""
        return [layer for layer in self.layers if isinstance(layer, Dropout)]

    @property
    def linear_layers(self) -> list[Linear]:
        """The model's Linear layers, input to output."""
        return [layer for layer in self.layers if isinstance(layer, Linear)]

    def train(self, mode: bool = True) -> NumpyMLP:
        """Put every Dropout layer in training mode (or evaluation mode with `mode=False`); return the model."""
        self.training = bool(mode)
        for layer in self.dropout_layers:
            layer.train(self.training)
        return self

    def eval(self) -> NumpyMLP:
        """Put the model in evaluation mode, where dropout is the identity; return the model."""
        return self.train(False)

    def forward(self, x: np.ndarray, masks: Sequence[np.ndarray] | None = None) -> np.ndarray:
        """Return the logits for a batch `x` (examples x inputs); `masks` fixes each Dropout layer's mask if given."""
        if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != self.sizes[0]:
            got = f"shape {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
            raise ValueError(f"x must be a 2-D array of shape (examples, {self.sizes[0]}), got {got}")
        if x.dtype != self.dtype:
            raise TypeError(f"x has dtype {x.dtype} but the model's weights are {self.dtype}; convert x first")
        dropouts = self.dropout_layers
        if masks is not None and len(masks) != len(dropouts):
            raise ValueError(f"masks must hold one mask per Dropout layer ({len(dropouts)}), got {len(masks)}")
        given = dict(zip(map(id, dropouts), masks)) if masks is not None else {}
        for layer in self.layers:
            x = layer.forward(x, mask=given[id(layer)]) if id(layer) in given else layer.forward(x)
        return x

    __call__ = forward

    def backward(self, grad_logits: np.ndarray) -> np.ndarray:
        """Backpropagate the loss gradient wrt the logits through every layer; return the gradient wrt the input."""
        for layer in reversed(self.layers):
            grad_logits = layer.backward(grad_logits)
        return grad_logits

    def parameters(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The (parameter, gradient) pairs of every Linear layer, updated in place by backward."""
        return [pair for layer in self.linear_layers for pair in ((layer.W, layer.grad_W), (layer.b, layer.grad_b))]


class SGD:
    """Minibatch SGD with momentum, as PyTorch writes it: v <- momentum v + g; p <- p - lr v.

    Chapter: numpy_dropout
    """

    def __init__(self, parameters: list[tuple[np.ndarray, np.ndarray]], *, lr: float, momentum: float = 0.0) -> None:
        if isinstance(lr, bool) or not isinstance(lr, Real) or not lr > 0:
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        if isinstance(momentum, bool) or not isinstance(momentum, Real) or not 0 <= momentum < 1:
            raise ValueError(f"momentum must be a number in [0, 1), got {momentum!r}")
        self.parameters, self.lr, self.momentum = parameters, float(lr), float(momentum)
        self.velocities = [np.zeros_like(param) for param, _ in parameters]

    def step(self) -> None:
        """Update every parameter in place from its current gradient."""
        for (param, grad), velocity in zip(self.parameters, self.velocities):
            velocity *= self.momentum
            velocity += grad
            param -= param.dtype.type(self.lr) * velocity


def _split(model: NumpyMLP, data: tuple[np.ndarray, np.ndarray], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Return a split's inputs in the model's dtype and its labels as int64, checking that they match."""
    if not isinstance(data, tuple) or len(data) != 2:
        raise TypeError(f"{name} must be a pair (x, y) of arrays")
    x, y = np.asarray(data[0], dtype=model.dtype), np.asarray(data[1])
    if len(x) != len(y):
        raise ValueError(f"{name}: got {len(x)} inputs but {len(y)} labels")
    return x, y.astype(np.int64)


def evaluate(model: NumpyMLP, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Return (mean cross-entropy, accuracy) of `model` in evaluation mode; the model's mode is restored.

    Chapter: numpy_dropout
    """
    x, y = _split(model, (x, y), "the evaluation data")
    was_training = model.training
    logits = model.eval().forward(x)
    model.train(was_training)
    loss, _ = softmax_cross_entropy(logits, y)
    return loss, float(np.mean(logits.argmax(axis=1) == y))


def train_numpy_mlp(model: NumpyMLP, train: tuple[np.ndarray, np.ndarray],
                    val: tuple[np.ndarray, np.ndarray] | None = None, *, epochs: int, batch_size: int = 64,
                    lr: float = 0.05, momentum: float = 0.9, seed: int = 0, label: str = "training") -> History:
    """Train with SGD on softmax cross-entropy; return per-epoch loss and accuracy on train (and val), in eval mode.

    The minibatch order comes from `seed`. The model is left in evaluation mode. BLAS runs on
    TRAINING_BLAS_THREADS threads meanwhile.
    Chapter: numpy_dropout
    """
    if not isinstance(model, NumpyMLP):
        raise TypeError(f"model must be a NumpyMLP, got {type(model).__name__}")
    epochs, batch_size = check_count(epochs, "epochs"), check_count(batch_size, "batch_size")
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise TypeError(f"seed must be an int, got {seed!r}")
    x_train, y_train = _split(model, train, "train")
    splits = {"": (x_train, y_train)} | ({"val_": _split(model, val, "val")} if val is not None else {})
    optimizer = SGD(model.parameters(), lr=lr, momentum=momentum)
    order_rng = np.random.default_rng(check_seed(seed))
    history: History = {f"{prefix}{metric}": [] for prefix in splits for metric in ("loss", "accuracy")}
    with threadpool_limits(limits=TRAINING_BLAS_THREADS, user_api="blas"):
        for _ in progress(range(epochs), desc=label, unit="epoch"):
            model.train()
            order = order_rng.permutation(len(x_train))
            for start in range(0, len(order), batch_size):
                batch = order[start:start + batch_size]
                _, grad = softmax_cross_entropy(model.forward(x_train[batch]), y_train[batch])
                model.backward(grad)
                optimizer.step()
            for prefix, (x, y) in splits.items():
                loss, accuracy = evaluate(model, x, y)
                history[f"{prefix}loss"].append(loss)
                history[f"{prefix}accuracy"].append(accuracy)
    model.eval()
    return history
