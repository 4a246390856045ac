"""What dropout costs in time: timings of a copy, dropout kernels and MLP training steps, on the CPU or CUDA."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from utils.checks import check_count
from utils.dropout import check_rate
from utils.training import make_mlp

MIN_SAMPLE_S = 1e-2  # one timed sample runs the callable often enough to last at least this long
MAX_CALLS_PER_SAMPLE = 10_000


def check_device(device: str | torch.device) -> torch.device:
    """Return `device` as a torch.device if it is a CPU or CUDA device this machine has; raise a clear error if not."""
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a string or a torch.device, got {type(device).__name__}: {device!r}")
    try:
        device = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"{device!r} is not a valid device string (try 'cpu' or 'cuda'): {error}") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"only 'cpu' and 'cuda' devices can be timed, got {str(device)!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} asked for, but PyTorch sees no CUDA GPU on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(device)!r} asked for, but this machine has only "
                             f"{torch.cuda.device_count()} CUDA GPU(s)")
    return device


def check_float_dtype(dtype: torch.dtype) -> torch.dtype:
    """Return `dtype` if it is a floating-point torch.dtype; raise a clear error otherwise."""
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype such as torch.float32, got {type(dtype).__name__}: {dtype!r}")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point dtype, got {dtype}")
    return dtype


def _sample(fn: Callable[[], object], number: int, device: torch.device) -> float:
    """Return the seconds that `number` back-to-back calls of `fn` take on `device`, queued work included."""
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(number):
                fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1000.0  # milliseconds to seconds
    start_s = time.perf_counter()
    for _ in range(number):
        fn()
    return time.perf_counter() - start_s


def _calls_per_sample(fn: Callable[[], object], device: torch.device) -> int:
    """The number of back-to-back calls of `fn` that last at least MIN_SAMPLE_S (at most MAX_CALLS_PER_SAMPLE)."""
    number = 1
    while (seconds := _sample(fn, number, device)) < MIN_SAMPLE_S and number < MAX_CALLS_PER_SAMPLE:
        enough = math.ceil(1.2 * number * MIN_SAMPLE_S / max(seconds, 1e-9))  # 20 % over the estimate
        number = min(MAX_CALLS_PER_SAMPLE, max(2 * number, enough))
    return number


def time_ops(fns: Mapping[str, Callable[[], object]], *, device: str | torch.device = "cpu", repeats: int = 15,
             warmup: int = 3) -> dict[str, float]:
    """Return the median seconds per call of each named zero-argument callable, whose work runs on `device`.

    Each callable gets `warmup` untimed calls; then each timed sample runs it back to back often enough to last at
    least MIN_SAMPLE_S, so that short kernels are not lost in launch latency or timer resolution. The `repeats`
    samples are taken in interleaved rounds (one sample of every callable per round), so that clock or load drift
    affects all of them alike. On CUDA a sample is timed with CUDA events after a synchronisation; on the CPU with
    time.perf_counter.
    """
    if not isinstance(fns, Mapping) or not fns or not all(callable(fn) for fn in fns.values()):
        raise TypeError("fns must be a non-empty mapping from names to zero-argument callables")
    repeats = check_count(repeats, "repeats")
    warmup = check_count(warmup, "warmup", minimum=0)
    device = check_device(device)
    numbers = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        numbers[name] = _calls_per_sample(fn, device)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            samples[name].append(_sample(fn, numbers[name], device) / numbers[name])
    return {name: statistics.median(values) for name, values in samples.items()}


def time_op(fn: Callable[[], object], *, device: str | torch.device = "cpu", repeats: int = 15,
            warmup: int = 3) -> float:
    """Return the median seconds per call of the zero-argument callable `fn`, whose work runs on `device`.

    See time_ops for the method: warm-up calls, then `repeats` samples of enough back-to-back calls each.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a zero-argument callable, got {type(fn).__name__}")
    return time_ops({"fn": fn}, device=device, repeats=repeats, warmup=warmup)["fn"]


def kernel_costs(n_elements: int, dtype: torch.dtype, device: str | torch.device, *, drop_rate: float = 0.5,
                 repeats: int = 15, warmup: int = 3) -> dict:
    """Time a copy, F.dropout and a naive mask-and-multiply dropout on a 1-D tensor; return times and ratios.

    The copy writes into a preallocated tensor and reads + writes 2 * n_elements * itemsize bytes per call, which
    gives its effective bandwidth. Times are median seconds per call; the ratios divide by the copy's time.
    """
    n_elements = check_count(n_elements, "n_elements")
    dtype = check_float_dtype(dtype)
    device = check_device(device)
    drop_rate = check_rate(drop_rate)
    x = torch.randn(n_elements, dtype=dtype, device=device)
    y = torch.empty_like(x)
    ops = {
        "copy_s": lambda: y.copy_(x),
        "dropout_s": lambda: nn.functional.dropout(x, drop_rate, training=True),
        "naive_s": lambda: x * (torch.rand_like(x) >= drop_rate) / (1.0 - drop_rate),
    }
    result: dict = {"n_elements": n_elements, "dtype": str(dtype).removeprefix("torch."), "device": str(device),
                    "drop_rate": drop_rate}
    result |= time_ops(ops, device=device, repeats=repeats, warmup=warmup)
    result["dropout_over_copy"] = result["dropout_s"] / result["copy_s"]
    result["naive_over_copy"] = result["naive_s"] / result["copy_s"]
    result["copy_bytes_per_s"] = 2 * n_elements * x.element_size() / result["copy_s"]
    return result


def _sgd_step(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> Callable[[], None]:
    """A zero-argument callable doing one training step of `model`: forward, cross-entropy, backward, SGD update."""
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(inputs), labels).backward()
        optimizer.step()

    return step


def mlp_step_overhead(batch_size: int, device: str | torch.device, *,
                      widths: Sequence[int] = (784, 1024, 1024, 1024, 10), drop_rate: float = 0.5,
                      repeats: int = 15, warmup: int = 3) -> dict:
    """Time one SGD training step of a float32 ReLU MLP with and without dropout; return both and the overhead.

    A step is forward, cross-entropy on random labels, backward and an SGD (momentum 0.9) update, on a random batch
    already on `device`. Dropout with `drop_rate` follows each hidden layer; the overhead is with / without - 1.
    """
    batch_size = check_count(batch_size, "batch_size")
    device = check_device(device)
    drop_rate = check_rate(drop_rate)
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or len(widths) < 2:
        raise ValueError(f"widths must be a sequence of at least two layer widths (inputs ... classes), got {widths!r}")
    widths = [check_count(width, "every layer width") for width in widths]
    inputs = torch.randn(batch_size, widths[0], device=device)
    labels = torch.randint(0, widths[-1], (batch_size,), device=device)

    def model(rate: float) -> nn.Module:
        return make_mlp(widths[0], widths[1:-1], widths[-1], drop_rate=rate).to(device)

    steps = {key: _sgd_step(model(rate), inputs, labels)
             for key, rate in (("step_s_without_dropout", 0.0), ("step_s_with_dropout", drop_rate))}
    result: dict = {"batch_size": batch_size, "widths": widths, "drop_rate": drop_rate, "device": str(device)}
    result |= time_ops(steps, device=device, repeats=repeats, warmup=warmup)
    result["overhead"] = result["step_s_with_dropout"] / result["step_s_without_dropout"] - 1.0
    return result
