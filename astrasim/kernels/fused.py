"""The fused grouped-VQ encode (`vq_nearest.c`), compiled on first use and called through ctypes.

Why C and not torch: for narrow groups the batched matmul + argmin of `GroupedVQ.encode` writes
and re-reads a [G, M, K] score tensor (32 MB at G = 32, 256 tokens) and is bound by memory; the
fused kernel keeps scores in registers (docs/kernels.md has the figures).

The shared library is built once per source version and machine with the C compiler Python was
built with (`cc`, `-O3 -march=native`) into `$ASTRASIM_CACHE` (default ~/.cache/astrasim), and
loaded with ctypes, which releases the GIL during the call: groups are split over
`torch.get_num_threads()` threads (by tokens). When no compiler is there, or the build fails, `available()`
is False and `GroupedVQ.encode` keeps its torch path; `ASTRASIM_FUSED_VQ=0` forces that path.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sysconfig
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("vq_nearest.c")
FLAGS = ["-O3", "-march=native", "-shared", "-fPIC", "-std=c11"]
_lock = threading.Lock()
_state: dict = {}


def _cache_dir() -> Path:
    return Path(os.environ.get("ASTRASIM_CACHE", Path.home() / ".cache" / "astrasim"))


def _compiler() -> str | None:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) or shutil.which("cc") or shutil.which("gcc")


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def _build() -> ctypes.CDLL | None:
    cc = _compiler()
    if cc is None or not SOURCE.is_file():
        return None
    # -march=native code runs only on this CPU: the key holds its instruction-set flags
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join([cc, *FLAGS, platform.machine(), _cpu_flags()]).encode())
    lib = _cache_dir() / f"vq_nearest-{key.hexdigest()[:16]}.so"
    if not lib.is_file():
        try:
            lib.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=lib.parent) as tmp:  # build aside, then rename: atomic
                out = Path(tmp) / lib.name
                subprocess.run([cc, *FLAGS, str(SOURCE), "-o", str(out)], check=True, capture_output=True, timeout=120)
                os.replace(out, lib)
        except (OSError, subprocess.SubprocessError):
            return None
    try:
        dll = ctypes.CDLL(str(lib))
    except OSError:
        return None
    fn = dll.vq_nearest
    fn.restype = None
    fn.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int64] * 6
    dll.vq_tile.restype = ctypes.c_int64
    dll.vq_tile.argtypes = []
    return dll


def available() -> bool:
    """Whether the fused kernel can run here (built and loaded once per process)."""
    if os.environ.get("ASTRASIM_FUSED_VQ", "1") == "0":
        return False
    if "dll" not in _state:  # built once; later calls (every encode) skip the lock
        with _lock:
            if "dll" not in _state:
                dll = _build()
                _state["tile"] = int(dll.vq_tile()) if dll is not None else 0
                _state["dll"] = dll
    return _state["dll"] is not None


def tile() -> int:
    """Codes per register tile: the fused kernel needs K to be a multiple of it."""
    return _state["tile"]


def tiled_codebook(codebook: torch.Tensor) -> torch.Tensor:
    """[G, K, d] -> [G, K / KT, d, KT] contiguous: each tile of KT codes transposed."""
    g, k, d = codebook.shape
    kt = tile()
    return codebook.reshape(g, k // kt, kt, d).transpose(2, 3).contiguous()


def _pool(n: int) -> ThreadPoolExecutor:
    pool = _state.get("pool")
    if pool is None or _state.get("pool_size") != n:
        if pool is not None:
            pool.shutdown(wait=False)
        pool = _state["pool"] = ThreadPoolExecutor(max_workers=n, thread_name_prefix="vq")
        _state["pool_size"] = n
    return pool


def nearest_codes(x: torch.Tensor, codebook_t: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
    """x [M, G, d] float32, codebook_t = tiled_codebook(codebook), norms [G, K] (all contiguous,
    CPU) -> int64 [M, G]: the index of the nearest code of every (token, group)."""
    fn = _state["dll"].vq_nearest
    m, g, d = x.shape
    k = codebook_t.shape[1] * codebook_t.shape[3]
    out = torch.empty((m, g), dtype=torch.int64)
    xp, cp, np_, op = x.data_ptr(), codebook_t.data_ptr(), norms.data_ptr(), out.data_ptr()
    threads = max(1, min(torch.get_num_threads(), m // 4))
    if threads == 1 or m * g * k < 1 << 16:
        fn(xp, cp, np_, op, m, g, d, k, 0, g)
        return out
    # split the tokens (rows of x and out are contiguous), in multiples of the kernel's 4-token tile
    bounds = [min(m, (m * i // threads + 3) // 4 * 4) for i in range(threads)] + [m]
    row_x, row_o = g * d * x.element_size(), g * out.element_size()
    jobs = [
        _pool(threads).submit(fn, xp + a * row_x, cp, np_, op + a * row_o, b - a, g, d, k, 0, g)
        for a, b in zip(bounds, bounds[1:])
        if b > a
    ]
    for j in jobs:
        j.result()
    return out
