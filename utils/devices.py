"""PyTorch device checks: which CPU or CUDA device a timing, a training run or the paper scale may use."""

from __future__ import annotations

import torch


def check_device(device: str | torch.device) -> torch.device:
    """Return `device` as a torch.device if it is a CPU or CUDA device this machine has; raise a clear error if not.

    Chapters: costs, paper_mnist
    """
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
