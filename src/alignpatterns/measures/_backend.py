"""Array backends for the measures (private): numpy, or torch on CPU / CUDA.

The heavy kernels (ridge, RDMs, CKA) are written once against the small set of
operations both libraries share (``@``, ``.T``, elementwise arithmetic, ``.sum(axis=)``,
integer indexing) plus the few calls collected here. Everything is computed in float64 on
every backend, so a result does not depend on where it ran beyond rounding.

``"auto"`` is torch on CUDA when a GPU is visible, else numpy. torch is imported only
when a torch backend is resolved, or by ``"auto"`` when an NVIDIA driver is present, so
importing :mod:`alignpatterns.measures` stays light and CPU-only jobs never pay for importing
torch (≈ 2.5 s).
"""

from __future__ import annotations

import numpy as np

__all__ = ["BACKENDS", "Backend", "get_backend"]

BACKENDS = ("auto", "numpy", "torch", "torch_cpu", "torch_cuda")


class Backend:
    """Minimal array namespace: numpy, or torch on one device.

    Parameters
    ----------
    name : {"numpy", "torch_cpu", "torch_cuda"}
        A resolved backend name (see :func:`get_backend`).
    """

    def __init__(self, name: str):
        self.name = name
        self.is_torch = name.startswith("torch")
        if self.is_torch:
            import torch

            self._torch = torch
            self.device = torch.device("cuda" if name == "torch_cuda" else "cpu")

    def __repr__(self) -> str:
        return f"Backend({self.name!r})"

    # ----------------------------------------------------------- conversion
    def asarray(self, x):
        """float64 array of this backend (no copy when already one)."""
        if self.is_torch:
            if isinstance(x, self._torch.Tensor):
                return x.to(device=self.device, dtype=self._torch.float64)
            return self._torch.as_tensor(
                np.asarray(x, dtype=np.float64), dtype=self._torch.float64, device=self.device
            )
        return np.asarray(x, dtype=np.float64)

    def index(self, idx):
        """Integer index array usable on this backend's arrays."""
        if self.is_torch:
            return self._torch.as_tensor(np.asarray(idx), dtype=self._torch.long, device=self.device)
        return np.asarray(idx)

    def to_numpy(self, x) -> np.ndarray:
        """Host numpy copy (float64 stays float64, integers stay integers)."""
        if self.is_torch:
            return x.detach().cpu().numpy()
        return np.asarray(x)

    # ------------------------------------------------------------- creation
    def empty(self, shape):
        if self.is_torch:
            return self._torch.empty(shape, dtype=self._torch.float64, device=self.device)
        return np.empty(shape)

    def zeros(self, shape):
        if self.is_torch:
            return self._torch.zeros(shape, dtype=self._torch.float64, device=self.device)
        return np.zeros(shape)

    # ------------------------------------------------------------ operations
    def einsum(self, spec: str, *operands):
        if self.is_torch:
            return self._torch.einsum(spec, *operands)
        return np.einsum(spec, *operands, optimize=False)

    def eigh(self, a):
        """Eigenvalues (ascending) and eigenvectors of a symmetric matrix."""
        if self.is_torch:
            return self._torch.linalg.eigh(a)
        return np.linalg.eigh(a)

    def svd(self, a):
        """Thin SVD ``(U, s, Vt)``."""
        if self.is_torch:
            return self._torch.linalg.svd(a, full_matrices=False)
        return np.linalg.svd(a, full_matrices=False)

    def clip_min(self, a, lo: float):
        return a.clip(min=lo)

    def sqrt(self, a):
        return self._torch.sqrt(a) if self.is_torch else np.sqrt(a)

    def triu_pairs(self, n: int):
        """Row and column indices of the strict upper triangle, in pdist order."""
        i, j = np.triu_indices(n, k=1)
        return self.index(i), self.index(j)


def _nvidia_driver_present() -> bool:
    """Cheap check (no torch import) for a loaded NVIDIA driver."""
    from pathlib import Path

    return Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidiactl").exists()


def get_backend(backend: str | Backend = "auto") -> Backend:
    """Resolve a backend name.

    Parameters
    ----------
    backend : {"auto", "numpy", "torch", "torch_cpu", "torch_cuda"} or Backend
        ``"auto"``: torch on CUDA if a GPU is visible, else numpy. ``"torch"``: torch on
        CUDA if available, else on CPU.

    Returns
    -------
    Backend

    Raises
    ------
    ValueError
        Unknown name, or ``"torch_cuda"`` without a visible GPU.
    """
    if isinstance(backend, Backend):
        return backend
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    if backend == "numpy":
        return Backend("numpy")
    if backend == "torch_cpu":
        return Backend("torch_cpu")
    import importlib.util
    import sys

    if backend == "auto" and "torch" not in sys.modules and not _nvidia_driver_present():
        return Backend("numpy")
    if importlib.util.find_spec("torch") is None:
        if backend == "auto":
            return Backend("numpy")
        raise ValueError(f"backend={backend!r} needs torch, which is not installed")
    import torch

    cuda = torch.cuda.is_available()
    if backend == "torch_cuda" and not cuda:
        raise ValueError("backend='torch_cuda' was requested but no CUDA device is visible")
    if backend == "auto":
        return Backend("torch_cuda" if cuda else "numpy")
    return Backend("torch_cuda" if cuda else "torch_cpu")
