"""What dropout costs: timings of a copy, dropout kernels and MLP training steps (CPU or CUDA), and saved bytes."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from numbers import Real

import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter
from torch import nn

from utils.checks import check_count, check_rate, check_sizes
from utils.devices import check_device
from utils.plotting import PALETTE
from utils.torch_models import make_mlp

MIN_SAMPLE_S = 1e-2  # one timed sample runs the callable often enough to last at least this long
MAX_CALLS_PER_SAMPLE = 10_000


def check_float_dtype(dtype: torch.dtype) -> torch.dtype:
    """Return `dtype` if it is a floating-point torch.dtype; raise a clear error otherwise.

    Chapter: costs
    """
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


def time_samples(fns: Mapping[str, Callable[[], object]], *, device: str | torch.device = "cpu",
                 repeats: int = 15, warmup: int = 3, settle: int = 0) -> dict[str, list[float]]:
    """Return every timed sample (seconds per call) of each named zero-argument callable, in round order.

    Sample i of every callable comes from round i, so ratios of samples of the same round pair them in time.

    Each callable gets `warmup` untimed calls; then each timed sample runs it back to back often enough to last at
    least MIN_SAMPLE_S, so that short kernels are not lost in launch latency or timer resolution. The `repeats`
    samples are taken in interleaved rounds (one sample of every callable per round), so that clock or load drift
    affects all of them alike, and the order within a round alternates (forward in even rounds, reversed in odd
    ones: A B, B A, A B, ... for two callables), so that no callable is always timed first. With `settle` > 0 each
    sample is preceded by that many untimed calls of the same callable, which bring its own data and code back into
    the caches after the other callables ran. On CUDA a sample is timed with CUDA events after a synchronisation; on
    the CPU with time.perf_counter.
    Chapter: costs
    """
    if not isinstance(fns, Mapping) or not fns or not all(callable(fn) for fn in fns.values()):
        raise TypeError("fns must be a non-empty mapping from names to zero-argument callables")
    repeats = check_count(repeats, "repeats")
    warmup = check_count(warmup, "warmup", minimum=0)
    settle = check_count(settle, "settle", minimum=0)
    device = check_device(device)
    numbers = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        numbers[name] = _calls_per_sample(fn, device)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for round_index in range(repeats):
        for name in names if round_index % 2 == 0 else names[::-1]:
            for _ in range(settle):
                fns[name]()
            samples[name].append(_sample(fns[name], numbers[name], device) / numbers[name])
    return samples


def time_ops(fns: Mapping[str, Callable[[], object]], *, device: str | torch.device = "cpu", repeats: int = 15,
             warmup: int = 3) -> dict[str, float]:
    """Return the median seconds per call of each named zero-argument callable (see time_samples).

    Chapter: costs
    """
    samples = time_samples(fns, device=device, repeats=repeats, warmup=warmup)
    return {name: statistics.median(values) for name, values in samples.items()}


def _ratio_samples(samples: Mapping[str, list[float]], name: str, unit: str) -> list[float]:
    """Per-round ratios of `name`'s samples to `unit`'s samples (the same round: taken close in time)."""
    return [a / b for a, b in zip(samples[name], samples[unit], strict=True)]


def _paired_step_times(samples: Mapping[str, list[float]]) -> dict:
    """Medians of the two steps' samples, and the overhead as the median of the rounds' paired ratios, minus one."""
    ratios = _ratio_samples(samples, "step_s_with_dropout", "step_s_without_dropout")
    return {**{name: statistics.median(values) for name, values in samples.items()},
            "overhead": statistics.median(ratios) - 1.0,
            "overhead_samples": [ratio - 1.0 for ratio in ratios],
            "added_s_samples": [a - b for a, b in zip(
                samples["step_s_with_dropout"], samples["step_s_without_dropout"], strict=True)]}


def time_op(fn: Callable[[], object], *, device: str | torch.device = "cpu", repeats: int = 15,
            warmup: int = 3) -> float:
    """Return the median seconds per call of the zero-argument callable `fn`, whose work runs on `device`.

    See time_ops for the method: warm-up calls, then `repeats` samples of enough back-to-back calls each.
    Chapter: costs
    """
    if not callable(fn):
        raise TypeError(f"fn must be a zero-argument callable, got {type(fn).__name__}")
    return time_ops({"fn": fn}, device=device, repeats=repeats, warmup=warmup)["fn"]


def kernel_costs(n_elements: int, dtype: torch.dtype, device: str | torch.device, *, drop_rate: float = 0.5,
                 repeats: int = 15, warmup: int = 3) -> dict:
    """Time a copy, F.dropout and a naive mask-and-multiply dropout on a 1-D tensor; return times and ratios.

    The copy writes into a preallocated tensor and reads + writes 2 * n_elements * itemsize bytes per call, which
    gives its effective bandwidth. Times are median seconds per call; the ratios divide by the copy's time.
    Chapter: costs
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
    already on `device`. Dropout with `drop_rate` follows each hidden layer. The two steps are timed in alternating
    order (see time_samples), each sample after one untimed step; `overhead_samples` holds with / without - 1 and
    `added_s_samples` the difference (seconds) for each round, whose spread is the timing noise, and `overhead` is
    the median of `overhead_samples`.
    Chapter: costs
    """
    batch_size = check_count(batch_size, "batch_size")
    device = check_device(device)
    drop_rate = check_rate(drop_rate)
    widths = _check_widths(widths)
    inputs = torch.randn(batch_size, widths[0], device=device)
    labels = torch.randint(0, widths[-1], (batch_size,), device=device)

    def model(rate: float) -> nn.Module:
        return make_mlp(widths[0], widths[1:-1], widths[-1], drop_rate=rate).to(device)

    steps = {key: _sgd_step(model(rate), inputs, labels)
             for key, rate in (("step_s_without_dropout", 0.0), ("step_s_with_dropout", drop_rate))}
    result: dict = {"batch_size": batch_size, "widths": widths, "drop_rate": drop_rate, "device": str(device)}
    result |= _paired_step_times(time_samples(steps, device=device, repeats=repeats, warmup=warmup, settle=1))
    return result


def _check_widths(widths: Sequence[int]) -> list[int]:
    """Return `widths` as a list of positive ints (inputs ... classes); raise a clear error otherwise."""
    widths = check_sizes(widths, "widths")
    if len(widths) < 2:
        raise ValueError(f"widths must hold at least two layer widths (inputs ... classes), got {widths!r}")
    return widths


def keras_step_overhead(batch_size: int, *, widths: Sequence[int] = (784, 1024, 1024, 1024, 10),
                        drop_rate: float = 0.5, repeats: int = 15, warmup: int = 3) -> dict:
    """Time one Keras `train_on_batch` step of a ReLU MLP with and without dropout, on the CPU; return the overhead.

    The Keras twin of `mlp_step_overhead`: the same widths, SGD with momentum 0.9, sparse cross-entropy on a random
    batch, and `keras.layers.Dropout(drop_rate)` after each hidden layer, timed in the same way: `overhead_samples`
    and `added_s_samples` hold with / without - 1 and the difference for each round, `overhead` their median ratio.
    Chapter: costs
    """
    import keras

    batch_size = check_count(batch_size, "batch_size")
    drop_rate = check_rate(drop_rate)
    widths = _check_widths(widths)
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(batch_size, widths[0], generator=generator).numpy()
    labels = torch.randint(0, widths[-1], (batch_size,), generator=generator).numpy()

    def model(rate: float) -> keras.Model:
        layers: list = [keras.Input((widths[0],))]
        for width in widths[1:-1]:
            layers.append(keras.layers.Dense(width, activation="relu"))
            if rate > 0:
                layers.append(keras.layers.Dropout(rate, seed=0))
        layers.append(keras.layers.Dense(widths[-1]))
        net = keras.Sequential(layers)
        net.compile(optimizer=keras.optimizers.SGD(1e-3, momentum=0.9),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return net

    steps = {}
    for key, rate in (("step_s_without_dropout", 0.0), ("step_s_with_dropout", drop_rate)):
        net = model(rate)
        steps[key] = lambda net=net: net.train_on_batch(inputs, labels)
    result: dict = {"framework": "keras", "batch_size": batch_size, "widths": widths, "drop_rate": drop_rate,
                    "device": "cpu"}
    result |= _paired_step_times(time_samples(steps, device="cpu", repeats=repeats, warmup=warmup, settle=1))
    return result


def step_dropout_costs(batch_size: int, *, widths: Sequence[int] = (784, 1024, 1024, 1024, 10),
                       drop_rate: float = 0.5, repeats: int = 15, warmup: int = 3) -> dict:
    """Time the dropout forward passes of one training step alone, in PyTorch and in Keras, on the CPU.

    The activations are those that the networks of `mlp_step_overhead` and `keras_step_overhead` drop: one float32
    array of batch_size x width per hidden layer. `torch_s` is PyTorch's eager `F.dropout` on each in turn;
    `keras_s` is a `keras.layers.Dropout(drop_rate)` on each inside one `tf.function`, a TensorFlow graph as in a
    Keras training step. Both are median seconds per call of all the layers together; `torch_s_samples` and
    `keras_s_samples` hold every round's sample, whose spread is the timing noise.
    Chapter: costs
    """
    import keras
    import tensorflow as tf

    batch_size = check_count(batch_size, "batch_size")
    drop_rate = check_rate(drop_rate)
    widths = _check_widths(widths)
    generator = torch.Generator().manual_seed(0)
    hidden = [torch.randn(batch_size, width, generator=generator) for width in widths[1:-1]]
    constants = [tf.constant(h.numpy()) for h in hidden]
    layers = [keras.layers.Dropout(drop_rate, seed=0) for _ in constants]

    @tf.function
    def keras_dropout() -> list:
        return [layer(h, training=True) for layer, h in zip(layers, constants)]

    ops = {"torch_s": lambda: [nn.functional.dropout(h, drop_rate, training=True) for h in hidden],
           "keras_s": keras_dropout}
    result: dict = {"batch_size": batch_size, "widths": widths, "drop_rate": drop_rate, "device": "cpu",
                    "n_dropped": batch_size * sum(widths[1:-1])}
    samples = time_samples(ops, device="cpu", repeats=repeats, warmup=warmup)
    result |= {name: statistics.median(values) for name, values in samples.items()}
    result |= {f"{name}_samples": values for name, values in samples.items()}
    return result


def saved_bytes_per_element(layer: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> float:
    """Bytes that autograd keeps for the backward pass of `layer(x)`, per element of `x`.

    Every tensor the graph saves is counted once by its storage (a saved input is counted too: it is memory the
    backward pass holds on to). `x` must be a floating-point tensor; it is used with requires_grad=True.
    Chapter: costs
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.numel() == 0:
        raise TypeError("x must be a non-empty floating-point torch.Tensor")
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    leaf = x.detach().requires_grad_(True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        layer(leaf)
    return sum(storages.values()) / x.numel()


def numpy_kernel_costs(n_elements: int, *, drop_rate: float = 0.5, repeats: int = 5, warmup: int = 1,
                       seed: int = 0) -> dict:
    """Time dropout's forward pass on the CPU in float32, NumPy against PyTorch, with a copy as the unit.

    Times (median seconds per call) of: a copy into a preallocated array (`np.copyto`); a copy into a new array
    (`x.copy()`, which also pays for the fresh memory that any layer returning a new array needs); naive NumPy
    dropout, `x * (rng.random(x.shape) >= p) / (1 - p)`; the book's fast layer `utils.fast_dropout.FastDropout`
    (the reference layer with a faster mask); PyTorch's `F.dropout` on the same memory; and three ingredients on
    their own, on one thread: generating 32 random bits per element and 8 per element (`random_raw(...,
    output=False)`: the generator's arithmetic alone, nothing written), and scaling by 1/(1 - p) into a preallocated
    array (the copy's memory traffic plus one multiply per element); and PyTorch's Bernoulli sampler alone,
    `noise.bernoulli_(1 - p)` into a preallocated tensor, the first step of PyTorch's CPU dropout. Each
    `*_over_copy` ratio divides by the preallocated copy's median time, and `*_over_copy_min` / `*_over_copy_max`
    give the range of the same ratio over the rounds of samples (each sample divided by the copy's sample of its
    round), `*_over_copy_rounds` every round's ratio, in round order, for paired comparisons (`rounds_below`).
    `copy_bytes_per_s` counts read + write, `random_bytes_per_s` the random bytes generated per second on
    one thread.
    Chapter: costs
    """
    from utils.fast_dropout import FastDropout, default_workers

    n_elements = check_count(n_elements, "n_elements")
    drop_rate = check_rate(drop_rate)
    seeds = np.random.SeedSequence(check_count(seed, "seed", minimum=0)).spawn(4)
    x = np.random.default_rng(seeds[0]).standard_normal(n_elements, dtype=np.float32)
    target = np.empty_like(x)
    naive_rng, layer = np.random.default_rng(seeds[1]), FastDropout(drop_rate, seed=np.random.default_rng(seeds[2]))
    bits = np.random.default_rng(seeds[3]).bit_generator
    x_torch = torch.from_numpy(x)
    scale = np.float32(1.0 / (1.0 - drop_rate))
    noise = torch.empty_like(x_torch)
    ops = {
        "copy_s": lambda: np.copyto(target, x),
        "fresh_copy_s": lambda: x.copy(),
        "naive_s": lambda: x * (naive_rng.random(x.shape) >= drop_rate) / (1.0 - drop_rate),
        "fast_s": lambda: layer(x),
        "torch_s": lambda: nn.functional.dropout(x_torch, drop_rate, training=True),
        "random_words_s": lambda: bits.random_raw(-(-n_elements // 2), output=False),  # 32 bits per element
        "random_bytes_s": lambda: bits.random_raw(-(-n_elements // 8), output=False),  # 8 bits per element
        "multiply_s": lambda: np.multiply(x, scale, out=target),
        "torch_bernoulli_s": lambda: noise.bernoulli_(1.0 - drop_rate),
    }
    result: dict = {"n_elements": n_elements, "dtype": "float32", "device": "cpu", "drop_rate": drop_rate,
                    "fast_threads": default_workers(), "torch_threads": torch.get_num_threads()}
    samples = time_samples(ops, device="cpu", repeats=repeats, warmup=warmup)
    result |= {name: statistics.median(values) for name, values in samples.items()}
    for name in ops:
        if name != "copy_s":
            key = name.removesuffix("_s") + "_over_copy"
            result[key] = result[name] / result["copy_s"]
            per_round = _ratio_samples(samples, name, "copy_s")
            result[key + "_min"], result[key + "_max"] = min(per_round), max(per_round)
            result[key + "_rounds"] = per_round
    result["copy_bytes_per_s"] = 2 * x.nbytes / result["copy_s"]
    result["random_bytes_per_s"] = 4 * n_elements / result["random_words_s"]
    return result


def signed_percent(value: float, digits: int = 0) -> str:
    """Write a share as a signed percentage, "+25 %" or "−3 %", and one that rounds to zero as "0 %", never "−0 %".

    Chapter: costs
    """
    rounded = round(100 * float(value), digits)
    if rounded == 0:
        return f"{0:.{digits}f} %"
    return f"{rounded:+.{digits}f} %".replace("-", "\u2212")


def percent_range(values: Sequence[float], digits: int = 0) -> str:
    """Write the lowest and highest of some shares as "−12 to +40 %", e.g. the overheads of the rounds of timing.

    Chapter: costs
    """
    low, high = (signed_percent(end, digits).removesuffix(" %") for end in (min(values), max(values)))
    return f"{low} to {high} %"


def rounds_below(a: Sequence[float], b: Sequence[float]) -> tuple[int, int]:
    """Count the rounds in which `a` was below `b`: a sign count of paired samples, returned as (count, rounds).

    Sample i of `a` and of `b` must come from round i of the same `time_samples` call (or be ratios to the same
    round's unit, which cancels), so that each comparison is between two timings taken close together in time.
    Chapter: costs
    """
    a, b = list(a), list(b)
    if not a or len(a) != len(b):
        raise ValueError(f"need two equally long, non-empty sequences of rounds, got {len(a)} and {len(b)}")
    return sum(x < y for x, y in zip(a, b, strict=True)), len(a)


def step_table(steps: Sequence[Mapping], *, gpu_name: str = "GPU") -> pd.DataFrame:
    """Show timed training steps as a narrow table: median ms without and with dropout, and the share added.

    One row per dict of `mlp_step_overhead` or `keras_step_overhead` that also has a "framework" key, named by
    device ("CPU", or `gpu_name` for a CUDA device), framework and batch size. The share added is the median of
    the rounds' paired ratios minus one, with their range, so it need not equal the ratio of the two median times;
    a stored record that keeps only the medians (no `overhead_samples`) shows its `overhead` (the ratio of the
    medians) and "not stored" as the range.
    Chapter: costs
    """
    rows = {}
    for step in steps:
        device = "CPU" if step["device"] == "cpu" else gpu_name if "cuda" in str(step["device"]) else step["device"]
        rounds = step.get("overhead_samples")
        rows[f"{device}, {step['framework']}, {step['batch_size']}"] = {
            ("median (ms)", "without"): round(1e3 * step["step_s_without_dropout"], 2),
            ("median (ms)", "with"): round(1e3 * step["step_s_with_dropout"], 2),
            ("added, per-round ratio", "median"): signed_percent(step["overhead"]),
            ("added, per-round ratio", "range"): percent_range(rounds) if rounds else "not stored"}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table


def bytes_floor_ratio(itemsize: float, mask_bytes: float = 1.0) -> float:
    """The least time / copy ratio of a memory-bound dropout: (read x + write y + write mask) / (read x + write y).

    `itemsize` is the bytes per element of x (4 for float32, 2 for bfloat16); `mask_bytes` the bytes per element
    of the mask that the forward pass writes for backward (1 for a boolean mask, 1/8 for packed bits, 0 for none).
    Chapter: costs
    """
    for value, name in ((itemsize, "itemsize"), (mask_bytes, "mask_bytes")):
        if isinstance(value, bool) or not isinstance(value, Real):
            raise TypeError(f"{name} must be a real number of bytes per element, got {type(value).__name__}")
    if not itemsize > 0 or not mask_bytes >= 0 or not math.isfinite(itemsize + mask_bytes):
        raise ValueError(f"need itemsize > 0 and mask_bytes >= 0 (finite), got {itemsize} and {mask_bytes}")
    return (2 * itemsize + mask_bytes) / (2 * itemsize)


def plot_time_ratios(ax: Axes, n_elements: Sequence[int], curves: Mapping[str, Sequence[float]], *,
                     floors: Mapping[str, float] | None = None, styles: Mapping[str, Mapping] | None = None,
                     title: str | None = None) -> Axes:
    """Plot time / copy against array size (log2 x, log y): one line per named curve, the copy as a line at 1.

    `floors` adds horizontal lines (label -> ratio), e.g. the bytes floor of a memory-bound kernel. `styles` maps a
    curve's label to matplotlib keyword arguments (color, linestyle, marker) that replace the default style.
    The legend goes below the axes.
    Chapter: costs
    """
    sizes = np.asarray(n_elements, dtype=float)
    if sizes.ndim != 1 or sizes.size == 0 or np.any(sizes <= 0):
        raise ValueError(f"n_elements must be a non-empty 1-D sequence of positive sizes, got {n_elements!r}")
    if not curves:
        raise ValueError("curves is empty: give at least one label -> ratios entry")
    for label, ratios in curves.items():
        if len(ratios) != sizes.size:
            raise ValueError(f"curve {label!r} has {len(ratios)} ratios for {sizes.size} sizes")
    unknown = set(styles or {}) - set(curves)
    if unknown:
        raise ValueError(f"styles name curves that are not plotted: {sorted(unknown)}")
    ax.axhline(1.0, color=PALETTE[7], linewidth=1.2, label="copy")
    markers = "osD^vP*X"
    for i, (label, ratios) in enumerate(curves.items()):
        style = {"marker": markers[i % len(markers)], "color": PALETTE[i % 7]} | dict((styles or {}).get(label, {}))
        ax.plot(sizes, ratios, label=label, **style)
    for j, (label, ratio) in enumerate((floors or {}).items()):
        ax.axhline(ratio, color=PALETTE[7], linestyle=(":", "-.", "--")[j % 3], linewidth=1.2, label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())  # plain labels at 1, 2, 5, 10, ... only
    ax.set_xlabel("array size (elements)")
    ax.set_ylabel("time / time of a copy")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, handlelength=3.5)
    return ax
