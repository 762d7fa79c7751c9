"""The few CUDA runtime calls the TensorRT backend needs, through ``ctypes``.

JetPack ships TensorRT's Python bindings but neither PyCUDA nor cuda-python; device buffers
and a stream are all the backend needs, and ``libcudart.so`` is always there (CUDA toolkit of
JetPack). Signatures: CUDA Runtime API (``cudaMalloc``, ``cudaMemcpy``, ``cudaStreamCreate``,
``cudaStreamSynchronize``, ``cudaFree``, ``cudaGetErrorString``); every call returns a
``cudaError_t``, 0 on success.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
from typing import Any

MEMCPY_HOST_TO_DEVICE = 1
_SEARCH = (
    "/usr/local/cuda/lib64/libcudart.so*",
    "/usr/local/cuda/targets/aarch64-linux/lib/libcudart.so*",
    "/usr/lib/aarch64-linux-gnu/libcudart.so*",
)


class CudaError(RuntimeError):
    pass


class CudaRuntime:
    def __init__(self, path: str | None = None) -> None:
        self.path = path or _find()
        self.lib = ctypes.CDLL(self.path)
        self.lib.cudaGetErrorString.restype = ctypes.c_char_p
        self.lib.cudaGetErrorString.argtypes = [ctypes.c_int]
        self.lib.cudaMalloc.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t]
        self.lib.cudaFree.argtypes = [ctypes.c_void_p]
        self.lib.cudaMemcpy.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_int,
        ]
        self.lib.cudaStreamCreate.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
        self.lib.cudaStreamSynchronize.argtypes = [ctypes.c_void_p]
        self.lib.cudaStreamDestroy.argtypes = [ctypes.c_void_p]
        self._allocations: list[int] = []

    def check(self, code: int, call: str) -> None:
        if code != 0:
            message = self.lib.cudaGetErrorString(code)
            text = message.decode() if message else "unknown error"
            raise CudaError(f"{call} failed: {text} (cudaError {code})")

    def malloc(self, size: int) -> int:
        pointer = ctypes.c_void_p()
        self.check(self.lib.cudaMalloc(ctypes.byref(pointer), max(1, size)), "cudaMalloc")
        self._allocations.append(pointer.value or 0)
        return pointer.value or 0

    def upload(self, device_pointer: int, array: Any) -> None:
        """Copy a C-contiguous NumPy array to the device."""
        self.check(
            self.lib.cudaMemcpy(
                ctypes.c_void_p(device_pointer),
                ctypes.c_void_p(array.ctypes.data),
                array.nbytes,
                MEMCPY_HOST_TO_DEVICE,
            ),
            "cudaMemcpy",
        )

    def stream(self) -> int:
        handle = ctypes.c_void_p()
        self.check(self.lib.cudaStreamCreate(ctypes.byref(handle)), "cudaStreamCreate")
        return handle.value or 0

    def synchronize(self, stream: int) -> None:
        self.check(self.lib.cudaStreamSynchronize(ctypes.c_void_p(stream)), "cudaStreamSynchronize")

    def free_all(self) -> None:
        for pointer in self._allocations:
            self.lib.cudaFree(ctypes.c_void_p(pointer))
        self._allocations = []


def _find() -> str:
    found = ctypes.util.find_library("cudart")
    if found:
        return found
    for pattern in _SEARCH:
        matches = sorted(glob.glob(pattern))
        if matches:
            return matches[0]
    raise OSError(
        "libcudart.so not found (looked in the linker path and "
        + ", ".join(os.path.dirname(p) for p in _SEARCH)
        + "); is the CUDA toolkit of JetPack installed?"
    )
