"""Devices and dtypes: "cpu", "cuda", "cuda:N" or None/"auto"; float32 or float64.

Asking for a GPU that is not there is refused here, with the device named, instead of a
CUDA error from the first tensor that lands on it.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import BackendError
from ..params import check_dtype

TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def resolve_device(device=None) -> torch.device:
    """None / "auto": the current CUDA device if there is one, else the CPU."""
    if device is None or (isinstance(device, str) and device == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise BackendError(
            f"unknown device {device!r}; expected 'cpu', 'cuda', 'cuda:N' or 'auto'"
        ) from None
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type != "cuda":
        raise BackendError(
            f"device {device!r} is not supported by the torch backend; "
            "expected 'cpu', 'cuda', 'cuda:N' or 'auto'"
        )
    if not torch.cuda.is_available():
        raise BackendError(
            f"device {device!r} was asked for, but CUDA is not available to this PyTorch "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); use device='cpu'"
        )
    count = torch.cuda.device_count()
    index = torch.cuda.current_device() if dev.index is None else dev.index
    if index >= count:
        raise BackendError(f"device {device!r} does not exist: this machine has {count} CUDA device(s)")
    return torch.device("cuda", index)


def resolve_dtype(dtype) -> torch.dtype:
    """"float32" / "float64", a NumPy dtype or a torch dtype -> the torch dtype."""
    if isinstance(dtype, torch.dtype):
        for np_dt, t_dt in TORCH_DTYPES.items():
            if t_dt == dtype:
                return t_dt
        check_dtype(str(dtype).replace("torch.", ""))  # raises the shared ConfigError
    return TORCH_DTYPES[check_dtype(dtype)]


def numpy_dtype(dtype: torch.dtype) -> np.dtype:
    return {t: n for n, t in TORCH_DTYPES.items()}[dtype]
