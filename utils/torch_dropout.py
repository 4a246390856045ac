"""Inverted dropout for PyTorch written as an autograd Function: a mask can be injected, and backward reuses it.

The function `dropout` and the module `TorchDropout` compute what ``F.dropout`` and ``nn.Dropout`` compute (on the CPU
they even draw the same mask from the same random state), with three differences that the PyTorch chapter explains:
the mode must be passed by name (``training=...``), a boolean keep mask can be given instead of a random draw, and
only that boolean mask (one byte per element) is saved for the backward pass. Rates are DROP probabilities.

Checking a dropout layer's backward pass with `torch.autograd.gradcheck` needs two things: float64 inputs (its
finite-difference step of 1e-6 is lost in float32 rounding, so the check fails although backward is exact) and a
deterministic function, so pass a fixed `keep_mask` (with a fresh mask on every call the finite differences compare
different functions, and the check fails). `saved_for_backward` lists what autograd keeps. A `generator` makes the
masks depend on its own seed only, not on every other draw from PyTorch's global stream (an extra `torch.rand` call
anywhere shifts every later `nn.Dropout` mask); neither `F.dropout` nor `nn.Dropout` accepts one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from utils.checks import check_rate


class DropoutFunction(torch.autograd.Function):
    """Inverted dropout with a given keep mask: y = mask ⊙ x / (1 - rate).

    Backward applies the same mask and scale. Call it through `dropout`, which checks
    its arguments. The boolean mask must broadcast to x's shape; the output has x's
    shape and dtype. Only the mask is saved for backward (one byte per element).
    Chapter: pytorch_dropout
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, rate: float,
                keep_mask: torch.Tensor) -> torch.Tensor:
        """Zero x where `keep_mask` is False; divide the rest by 1 - rate."""
        ctx.save_for_backward(keep_mask)  # the boolean mask, nothing else
        ctx.rate = rate
        return x * _scaled_mask(keep_mask, rate, x.dtype)

    @staticmethod
    def backward(ctx: Any,
                 grad_output: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        """The gradient with respect to x: the forward mask and scale, again."""
        (keep_mask,) = ctx.saved_tensors  # no new draw
        scaled = _scaled_mask(keep_mask, ctx.rate, grad_output.dtype)
        return grad_output * scaled, None, None  # no gradient for rate, mask


def _scaled_mask(keep_mask: torch.Tensor, rate: float,
                 dtype: torch.dtype) -> torch.Tensor:
    """Return the mask as 0 or 1/(1 - rate) in `dtype`.

    The scale is rounded once, to `dtype`, as NumPy does.
    """
    scale = torch.tensor(1.0 / (1.0 - rate), dtype=dtype,
                         device=keep_mask.device)
    return keep_mask.to(dtype) * scale


def saved_for_backward(fn: Callable[[], Any]) -> list[tuple[torch.dtype, int]]:
    """Run `fn()` and return (dtype, bytes) of every tensor autograd saved for the backward pass.

    Uses `torch.autograd.graph.saved_tensors_hooks`; the saved tensors themselves are left as they were. On the
    CPU, `nn.Dropout` saves a float tensor of zeros and scales (the input's element size); `dropout` here saves
    only its boolean mask.
    Chapter: pytorch_dropout
    """
    if not callable(fn):
        raise TypeError(f"fn must be a callable without arguments, got {type(fn).__name__}")
    saved: list[tuple[torch.dtype, int]] = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved.append((tensor.dtype, tensor.numel() * tensor.element_size()))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return saved


def draw_keep_mask(x: torch.Tensor, rate: float, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw a boolean keep mask of x's shape on x's device: True (keep) with probability 1 - rate.

    The draw is the one F.dropout makes on the CPU, so the same random state gives the same mask.
    Chapter: pytorch_dropout
    """
    _check_tensor(x)
    rate = check_rate(rate)
    _check_generator(generator, x)
    return _draw(x, rate, generator)


def _draw(x: torch.Tensor, rate: float, generator: torch.Generator | None) -> torch.Tensor:
    """The boolean keep mask of `draw_keep_mask`, for arguments already checked."""
    return torch.empty_like(x).bernoulli_(1.0 - rate, generator=generator).bool()


def dropout(x: torch.Tensor, rate: float, *, training: bool = True, keep_mask: torch.Tensor | None = None,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Inverted dropout of `x` at drop rate `rate`; returns `x` itself when not training or when rate is 0.

    `training` must be passed by name. `keep_mask` (boolean, True = keep) replaces the random draw; it must be
    broadcastable to x's shape, so a mask of shape (N, C, 1) drops whole channels of an (N, C, L) input. Without a
    mask, one is drawn from `generator` (PyTorch's global generator when None). A given mask is checked even when it
    is not used (eval mode, or rate 0).
    Chapters: pytorch_dropout, three_frameworks
    """
    _check_tensor(x)
    rate = check_rate(rate)
    if not isinstance(training, bool):
        raise TypeError(f"training must be True or False, got {type(training).__name__}: {training!r}")
    if keep_mask is not None:
        _check_mask(keep_mask, x)
    _check_generator(generator, x)
    if not training or rate == 0.0:
        return x
    if keep_mask is None:
        keep_mask = _draw(x, rate, generator)
    return DropoutFunction.apply(x, rate, keep_mask)


class TorchDropout(nn.Module):
    """Inverted dropout as a module: drops in training mode (`self.training`), the identity after `eval()`.

    `rate` is the drop probability; `generator` (optional) makes the masks independent of the global seed.
    `forward(x, keep_mask=None)` accepts a boolean mask as `dropout` does.
    Chapter: pytorch_dropout
    """

    def __init__(self, rate: float = 0.5, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.rate = check_rate(rate)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        self.generator = generator

    def extra_repr(self) -> str:
        return f"rate={self.rate}"

    def forward(self, x: torch.Tensor, keep_mask: torch.Tensor | None = None) -> torch.Tensor:
        return dropout(x, self.rate, training=self.training, keep_mask=keep_mask, generator=self.generator)


def _check_tensor(x: torch.Tensor) -> None:
    """Raise TypeError unless `x` is a floating-point tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must have a floating-point dtype (float16, bfloat16, float32, float64), got {x.dtype}")


def _check_mask(keep_mask: torch.Tensor, x: torch.Tensor) -> None:
    """Raise unless `keep_mask` is a boolean tensor on x's device that broadcasts to x's shape."""
    if not isinstance(keep_mask, torch.Tensor):
        raise TypeError(f"keep_mask must be a boolean torch.Tensor, got {type(keep_mask).__name__}")
    if keep_mask.dtype != torch.bool:
        raise TypeError(f"keep_mask must have dtype torch.bool (True = keep), got {keep_mask.dtype}")
    if keep_mask.device != x.device:
        raise ValueError(f"keep_mask is on {keep_mask.device} but x is on {x.device}")
    try:
        broadcast = torch.broadcast_shapes(keep_mask.shape, x.shape)
    except RuntimeError:
        broadcast = None
    if broadcast != x.shape:
        raise ValueError(f"keep_mask of shape {tuple(keep_mask.shape)} does not broadcast to x's shape "
                         f"{tuple(x.shape)}; give a mask of x's shape, or with size-1 dimensions to share a draw")


def _check_generator(generator: torch.Generator | None, x: torch.Tensor) -> None:
    """Raise unless `generator` is None or a torch.Generator on x's device type."""
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if generator.device.type != x.device.type:
        raise ValueError(f"generator is on {generator.device} but x is on {x.device}; "
                         f"create it with torch.Generator(device=x.device)")
