"""Argument checks shared by the utils modules."""

from __future__ import annotations

from numbers import Integral

import torch


def check_count(value: int, name: str, *, minimum: int = 1) -> int:
    """Return `value` as an int if it is an integer >= `minimum`; raise a clear error otherwise."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {type(value).__name__}: {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_device(device: str | torch.device) -> torch.device:
    """Return `device` as a torch.device if it is a CPU or CUDA device this machine has; raise a clear error if not."""
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a string or a torch.device, got {type(device).__name__}: {device!r}")
    try:
        device = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"{device!r} is not a valid device string (try 'cpu' or 'cuda'): {error}") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"only 'cpu' and 'cuda' devices are supported, got {str(device)!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} asked for, but PyTorch sees no CUDA GPU on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(device)!r} asked for, but this machine has only "
                             f"{torch.cuda.device_count()} CUDA GPU(s)")
    return device
