"""Porting a model with dropout between NumPy, Keras and PyTorch, and checking the port.

The chapter's helpers: `keras_to_torch` copies a Keras MLP's weights into a PyTorch one (with the transpose that
the two weight layouts need), `numpy_forward`, `keras_forward` and `torch_forward` run the same MLP in each
framework, in inference or in training mode with masks given by the caller, and `assert_agree` compares two
results at the chapter's float32 tolerance. `builtin_masks` runs `keras.layers.Dropout` and `torch.nn.Dropout`
once and reads each one's mask back from which outputs are zero.

The rest is the book's test tooling (tests/test_three_frameworks.py): the runners take an input `x`, a drop rate,
a boolean keep-mask (True = keep) and the gradient `grad_out` of a loss with respect to the layer's output, and
return the output and the gradient with respect to the input of the book's own NumPy, Keras and PyTorch layers,
as NumPy arrays of `x`'s dtype; `run_all` and `agreement_table` compare them, dtype by dtype, to `RTOL`.

Call `utils.setup()` before importing this module: it sets the Keras backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow as tf
import torch

from utils.checks import check_rate, check_seed
from utils.dropout import Dropout
from utils.keras_dropout import KerasDropout
from utils.torch_dropout import dropout

FRAMEWORKS = ("NumPy", "Keras", "PyTorch")
# Agreement is checked to a few units in the last place of the dtype: the frameworks may multiply by 1/(1-p) or
# divide by 1-p, which differ by one rounding.
RTOL = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-14}


class Result(NamedTuple):
    """A dropout layer's training-mode output and its input gradient, as NumPy arrays.

    Chapter: three_frameworks
    """

    output: np.ndarray
    grad: np.ndarray


Runner = Callable[[np.ndarray, float, np.ndarray, np.ndarray], Result]


def check_case(x: np.ndarray, keep_mask: np.ndarray, grad_out: np.ndarray) -> None:
    """Raise a clear error unless `x` is float32/float64 and `keep_mask` and `grad_out` match it.

    Chapter: three_frameworks
    """
    for name, array in (("x", x), ("keep_mask", keep_mask), ("grad_out", grad_out)):
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array, got {type(array).__name__}")
    if x.dtype not in RTOL:
        raise TypeError(f"x must be float32 or float64 (the dtypes all three frameworks support), got {x.dtype}")
    if keep_mask.dtype != np.bool_ or keep_mask.shape != x.shape:
        raise ValueError(f"keep_mask must be a boolean array of x's shape {x.shape}, "
                         f"got {keep_mask.dtype} of shape {keep_mask.shape}")
    if grad_out.dtype != x.dtype or grad_out.shape != x.shape:
        raise ValueError(f"grad_out must have x's dtype {x.dtype} and shape {x.shape}, "
                         f"got {grad_out.dtype} of shape {grad_out.shape}")


def run_numpy(x: np.ndarray, rate: float, keep_mask: np.ndarray, grad_out: np.ndarray) -> Result:
    """The book's NumPy reference layer, with the mask injected.

    Chapter: three_frameworks
    """
    layer = Dropout(rate)
    return Result(layer.forward(x, mask=keep_mask), layer.backward(grad_out))


def run_keras(x: np.ndarray, rate: float, keep_mask: np.ndarray, grad_out: np.ndarray) -> Result:
    """The book's custom Keras layer (TensorFlow backend), with the mask injected; the gradient from a GradientTape.

    Chapter: three_frameworks
    """
    layer = KerasDropout(rate, dtype=x.dtype.name)
    inputs = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        output = layer(inputs, training=True, keep_mask=tf.constant(keep_mask))
        loss = tf.reduce_sum(output * tf.constant(grad_out))
    return Result(output.numpy(), tape.gradient(loss, inputs).numpy())


def run_pytorch(x: np.ndarray, rate: float, keep_mask: np.ndarray, grad_out: np.ndarray) -> Result:
    """The book's custom PyTorch autograd function, with the mask injected; the gradient from autograd.

    Chapter: three_frameworks
    """
    inputs = torch.tensor(x, requires_grad=True)
    output = dropout(inputs, rate, training=True, keep_mask=torch.from_numpy(keep_mask))
    output.backward(torch.from_numpy(grad_out))
    return Result(output.detach().numpy(), inputs.grad.numpy())


RUNNERS: dict[str, Runner] = {"NumPy": run_numpy, "Keras": run_keras, "PyTorch": run_pytorch}


def run_all(x: np.ndarray, rate: float, keep_mask: np.ndarray, grad_out: np.ndarray) -> dict[str, Result]:
    """Run the same case through every framework's layer; return each framework's result.

    Chapter: three_frameworks
    """
    rate = check_rate(rate)
    check_case(x, keep_mask, grad_out)
    return {name: runner(x, rate, keep_mask, grad_out) for name, runner in RUNNERS.items()}


def builtin_masks(x: np.ndarray, rate: float, grad_out: np.ndarray, *,
                  seed: int = 0) -> dict[str, tuple[np.ndarray, Result]]:
    """Run `keras.layers.Dropout` and `torch.nn.Dropout` in training mode; return each one's mask and result.

    The mask is read back as the outputs that are not zero, so `x` must have no zeros.
    Chapter: three_frameworks
    """
    rate, seed = check_rate(rate), check_seed(seed)
    check_case(x, np.ones(x.shape, dtype=bool), grad_out)
    if not np.all(x != 0):
        raise ValueError("x must have no zeros: the mask is read back from the zeros")

    # Keras: the layer in training mode, the input gradient from a GradientTape
    keras_layer = keras.layers.Dropout(rate, seed=seed, dtype=x.dtype.name)
    inputs = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        output = keras_layer(inputs, training=True)
        loss = tf.reduce_sum(output * tf.constant(grad_out))
    keras_result = Result(output.numpy(), tape.gradient(loss, inputs).numpy())

    # PyTorch: the module in training mode, the input gradient from backward
    with torch.random.fork_rng(devices=[]):  # the global torch stream is left alone
        torch.manual_seed(seed)
        torch_inputs = torch.tensor(x, requires_grad=True)
        torch_output = torch.nn.Dropout(rate).train()(torch_inputs)
    torch_output.backward(torch.from_numpy(grad_out))
    torch_result = Result(torch_output.detach().numpy(), torch_inputs.grad.numpy())

    return {name: (result.output != 0, result) for name, result in
            (("Keras", keras_result), ("PyTorch", torch_result))}


def max_relative_gap(result: Result, reference: Result) -> float:
    """The largest difference between two results, output or gradient, relative to the reference's largest value.

    Chapter: three_frameworks
    """
    gaps = []
    for got, want in ((result.output, reference.output), (result.grad, reference.grad)):
        if got.shape != want.shape:
            raise ValueError(f"results of different shapes: {got.shape} and {want.shape}")
        scale = max(float(np.abs(want).max(initial=0.0)), np.finfo(want.dtype).tiny)
        gaps.append(float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max(initial=0.0)) / scale)
    return max(gaps)


def agreement_table(results: Mapping[str, Result], reference: str = "NumPy") -> dict[str, dict[str, object]]:
    """For each framework: its dtypes and its largest gap to the reference, relative to the reference's scale.

    Chapter: three_frameworks
    """
    if reference not in results:
        raise ValueError(f"reference {reference!r} is not among the results: {sorted(results)}")
    want = results[reference]
    return {name: {"output dtype": str(result.output.dtype), "grad dtype": str(result.grad.dtype),
                   "largest relative gap": max_relative_gap(result, want)}
            for name, result in results.items()}


# The port's tolerance in float32: the frameworks add a matrix product's terms in
# different orders, and may round the factor 1/(1 - p) differently.
PORT_RTOL, PORT_ATOL = 1e-5, 1e-6


def assert_agree(actual: Any, desired: Any, what: str = "outputs", *,
                 rtol: float = PORT_RTOL, atol: float = PORT_ATOL) -> None:
    """np.testing.assert_allclose at the port's tolerance, with a one-line message.

    Chapter: three_frameworks
    """
    actual, desired = np.asarray(actual), np.asarray(desired)
    try:
        np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol)
    except AssertionError:
        if actual.shape != desired.shape:
            shapes = f"{actual.shape} and {desired.shape}"
            raise AssertionError(f"{what}: shapes {shapes}") from None
        far = ~np.isclose(actual, desired, rtol=rtol, atol=atol)
        gap = float(np.abs(actual.astype(np.float64) - desired).max())
        raise AssertionError(
            f"{what} differ: {far.sum()} of {far.size} beyond rtol={rtol:g}, "
            f"atol={atol:g}; largest difference {gap:.3g}") from None


def largest_gap(actual: Any, desired: Any) -> float:
    """The largest difference of two results, relative to `desired`'s largest value.

    Chapter: three_frameworks
    """
    actual, desired = np.asarray(actual, np.float64), np.asarray(desired, np.float64)
    return float(np.abs(actual - desired).max() / np.abs(desired).max())


def keras_to_torch(keras_model: keras.Sequential, torch_model: torch.nn.Sequential,
                   *, transpose: bool = True) -> None:
    """Copy each Dense layer's kernel and bias into the matching nn.Linear, in order.

    `transpose=False` makes the common mistake, which a square layer accepts silently.
    Chapter: three_frameworks
    """
    dense = [layer for layer in keras_model.layers
             if isinstance(layer, keras.layers.Dense)]
    linear = [layer for layer in torch_model if isinstance(layer, torch.nn.Linear)]
    if len(dense) != len(linear):
        raise ValueError(f"{len(dense)} Dense but {len(linear)} nn.Linear layers")
    with torch.no_grad():
        for source, target in zip(dense, linear):
            kernel, bias = source.get_weights()  # kernel: (in, out)
            if transpose:
                kernel = kernel.T  # nn.Linear's weight: (out, in)
            target.weight.copy_(torch.from_numpy(kernel))
            target.bias.copy_(torch.from_numpy(bias))


def numpy_forward(weights: Sequence[np.ndarray], x: np.ndarray, rate: float,
                  masks: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """The MLP in NumPy, from Keras's weights: ReLU layers with dropout, then logits.

    Without `masks` it is the inference network; with a mask per hidden layer, training.
    Chapter: three_frameworks
    """
    *hidden, kernel_out, bias_out = weights
    h = x
    for i, (kernel, bias) in enumerate(zip(hidden[::2], hidden[1::2])):
        h = np.maximum(h @ kernel + bias, 0)
        if masks is not None:
            h = Dropout(rate).forward(h, mask=masks[i])
    return h @ kernel_out + bias_out


def keras_forward(model: keras.Sequential, x: np.ndarray,
                  masks: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """Run a Keras Sequential: in inference without `masks`; with them, in training.

    Each Dropout layer is then replaced by the book's KerasDropout, given the layer's
    rate and the next mask.
    Chapter: three_frameworks
    """
    if masks is None:
        return np.asarray(model(x, training=False))
    masks = iter(masks)
    h = x
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dropout):
            h = KerasDropout(layer.rate)(h, training=True, keep_mask=next(masks))
        else:
            h = layer(h)
    return np.asarray(h)


def torch_forward(model: torch.nn.Sequential, x: np.ndarray,
                  masks: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """Run a PyTorch Sequential: in eval mode without `masks`; with them, in training.

    Each nn.Dropout is then replaced by the book's autograd `dropout`, given the
    layer's p and the next mask.
    Chapter: three_frameworks
    """
    h = torch.from_numpy(x)
    with torch.no_grad():
        if masks is None:
            return model.eval()(h).numpy()
        masks = iter(masks)
        for layer in model:
            if isinstance(layer, torch.nn.Dropout):
                mask = torch.from_numpy(next(masks))
                h = dropout(h, layer.p, training=True, keep_mask=mask)
            else:
                h = layer(h)
    return h.numpy()


def lstm_input_masks(lstm: keras.layers.LSTM, sequence: np.ndarray) -> list[np.ndarray]:
    """Run a Keras LSTM once in training mode; return the input masks its cell used.

    One array per time step the cell asked for a mask, of shape (masks, batch, features):
    one mask, or one per gate when the cell splits its kernel into four.
    Chapter: three_frameworks
    """
    if not isinstance(lstm, keras.layers.LSTM) or not lstm.dropout:
        raise ValueError("expected a keras.layers.LSTM with dropout > 0")
    sequence = np.asarray(sequence)
    if sequence.ndim != 3:
        raise ValueError(f"expected a (batch, time, features) sequence, got {sequence.shape}")
    cell, seen = lstm.cell, []
    draw = cell.get_dropout_mask

    def recording(step_input: Any) -> Any:
        mask = draw(step_input)
        seen.append(np.stack([np.asarray(m) for m in
                              (mask if isinstance(mask, (list, tuple)) else [mask])]))
        return mask

    cell.get_dropout_mask = recording
    try:
        lstm(sequence, training=True)
    finally:
        del cell.get_dropout_mask  # back to the class's method
    return seen
