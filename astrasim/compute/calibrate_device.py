"""`astrasim calibrate-device NAME`: the microbenchmarks behind a catalog entry's sustained figures,
run on the machine at hand, written into profiles/devices.yaml (or --catalog) as entry NAME.

* memory read bandwidth: a one-row F.linear over a `mem_mb` MB fp32 matrix right after the caches
  were flushed (a 64 MB buffer read), as a decode step reads a layer's weights once; median of
  `repeats`;
* matmul per precision torch runs here: fp32 `torch.mm` of size^3 (2 size^3 FLOP); int8
  `torch._int_mm` (int8 x int8 -> int32, the dot products quantized CPU kernels use) where available;
  best of `repeats`;
* dispatch: a tiny F.linear (1 x 16 by 16 x 16) right after the same flush, median of 60: the fixed
  cost a kernel pays through the framework when the weights streaming through the caches between
  kernels have evicted its state (warm, back to back, it is several times cheaper);
* message: a 64-byte TCP ping-pong over loopback with a child process (TCP_NODELAY), median round
  trip; one round trip is two messages, each costing a send on one side and a receive on the other,
  so message_us = round trip / 4.

Best, not median, for throughput: other processes only slow a call down. Existing entries keep their
datasheet peaks, memory, power and price; a new entry takes peak_flops / mem_bandwidth_gbs from the
measured figures (lower bounds) and needs --price-usd, --idle-power-w and --active-power-w.
"""

from __future__ import annotations

import datetime
import multiprocessing
import os
import re
import socket
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from astrasim.compute.catalog import FIGURES
from astrasim.errors import UserError

MESSAGE_BYTES = 64


def _best(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


FLUSH_MB = 64


def _flusher():
    import torch

    buf = torch.ones(FLUSH_MB * 2**20 // 4)
    return lambda: float(buf.sum())


def _cold(fn, flush, repeats: int) -> float:
    """Median seconds of `fn` right after `flush()` (the caches hold other data)."""
    fn()
    times = []
    for _ in range(repeats):
        flush()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def mem_read_gbs(mem_mb: int = 64, repeats: int = 15) -> float:
    import torch
    import torch.nn.functional as F

    cols = 2048
    rows = mem_mb * 2**20 // (4 * cols)
    with torch.inference_mode():
        w, x = torch.randn(rows, cols), torch.randn(1, cols)
        t = _cold(lambda: F.linear(x, w), _flusher(), repeats)
    return rows * cols * 4 / t / 1e9


def matmul_gflops(size: int = 2048, repeats: int = 10) -> dict[str, float]:
    """GFLOP/s (int8: GOP/s) per precision torch runs on this machine."""
    import torch

    out: dict[str, float] = {}
    flop = 2.0 * size**3
    with torch.inference_mode():
        a, b = torch.randn(size, size), torch.randn(size, size)
        c = torch.empty(size, size)
        out["fp32"] = flop / _best(lambda: torch.mm(a, b, out=c), repeats) / 1e9
        if hasattr(torch, "_int_mm"):
            ai = torch.randint(-127, 127, (size, size), dtype=torch.int8)
            bi = torch.randint(-127, 127, (size, size), dtype=torch.int8)
            try:
                out["int8"] = flop / _best(lambda: torch._int_mm(ai, bi), max(3, repeats // 2)) / 1e9
            except RuntimeError:  # no int8 matmul kernel on this build
                pass
    return out


def dispatch_us(repeats: int = 60) -> float:
    import torch
    import torch.nn.functional as F

    with torch.inference_mode():
        x, w = torch.ones(1, 16), torch.ones(16, 16)
        return _cold(lambda: F.linear(x, w), _flusher(), repeats) * 1e6


def _echo(port_queue) -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port_queue.put(srv.getsockname()[1])
    conn, _ = srv.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with conn:
        while True:
            data = conn.recv(MESSAGE_BYTES)
            if not data:
                break
            conn.sendall(data)
    srv.close()


def message_us(round_trips: int = 2000) -> float:
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    child = ctx.Process(target=_echo, args=(q,), daemon=True)
    child.start()
    try:
        port = q.get(timeout=30)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            payload = b"x" * MESSAGE_BYTES
            rtts = []
            for i in range(round_trips + 100):
                t0 = time.perf_counter()
                s.sendall(payload)
                got = 0
                while got < MESSAGE_BYTES:
                    got += len(s.recv(MESSAGE_BYTES - got))
                if i >= 100:  # warm-up
                    rtts.append(time.perf_counter() - t0)
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.terminate()
    return statistics.median(rtts) / 4 * 1e6


def memory_gb() -> float:
    text = Path("/proc/meminfo").read_text()
    kb = int(re.search(r"MemTotal:\s+(\d+) kB", text).group(1))  # type: ignore[union-attr]  # Linux has the line
    return round(kb * 1024 / 1e9, 1)


def measure(log=print, repeats: int = 10) -> dict[str, Any]:
    """Every microbenchmark, at torch's current thread count."""
    import torch

    threads = torch.get_num_threads()
    log(f"calibrating with {threads} torch threads")
    bw = mem_read_gbs()
    log(f"  memory read (one-row F.linear over a 64 MB fp32 matrix, caches flushed): {bw:.2f} GB/s")
    mm = matmul_gflops(repeats=repeats)
    log("  matmul 2048^3: " + ", ".join(f"{p} {g:.1f} GFLOP/s" for p, g in mm.items()))
    disp = dispatch_us()
    log(f"  dispatch (F.linear 1 x 16 by 16 x 16, caches flushed): {disp:.2f} us per op")
    msg = message_us()
    log(f"  message (64-byte TCP loopback ping-pong, round trip / 4): {msg:.2f} us")
    return {"threads": threads, "mem_read_gbs": bw, "matmul_gflops": mm, "dispatch_us": disp, "message_us": msg}


def entry_for(
    name: str,
    m: dict[str, Any],
    old: dict | None,
    price_usd: float | None,
    idle_power_w: float | None,
    active_power_w: float | None,
) -> dict:
    """The catalog entry NAME with the measured figures (an existing entry keeps everything else)."""
    day = datetime.date.today().isoformat()
    how = f"measured: astrasim calibrate-device {name}, {m['threads']} torch threads, {day}"
    entry: dict[str, Any] = (
        dict(old)
        if old
        else {"name": name, "description": f"measured with astrasim calibrate-device ({day})", "kind": "cpu"}
    )
    sources = dict(entry.get("sources") or {})
    entry["mem_read_gbs"] = round(m["mem_read_gbs"], 2)
    sources["mem_read_gbs"] = f"{how} (one-row F.linear over a 64 MB fp32 matrix after a cache flush, median of 15)"
    mm = {p: round(g, 1) for p, g in m["matmul_gflops"].items()}
    entry["matmul_gflops"] = {**{p: g for p, g in (entry.get("matmul_gflops") or {}).items() if p not in mm}, **mm}
    for p in mm:
        sources[f"matmul_gflops.{p}"] = (
            f"{how} ({'torch._int_mm int8' if p == 'int8' else 'torch.mm fp32'} 2048^3, best)"
        )
    entry["dispatch_us"] = round(m["dispatch_us"], 2)
    sources["dispatch_us"] = f"{how} (F.linear 1 x 16 by 16 x 16 after a cache flush, median of 60)"
    entry["message_us"] = round(m["message_us"], 2)
    sources["message_us"] = f"{how} (64-byte TCP loopback ping-pong, median round trip / 4)"
    if not old:
        entry["peak_flops"] = float(max(mm.get("fp32", 0.0), 1e-9) * 1e9)
        sources["peak_flops"] = f"{how} (the fp32 matmul: a lower bound of the peak)"
        entry["mem_bandwidth_gbs"] = entry["mem_read_gbs"]
        sources["mem_bandwidth_gbs"] = f"{how} (the read bandwidth: a lower bound of the peak)"
        entry["memory_gb"] = memory_gb()
        sources["memory_gb"] = f"{how} (MemTotal in /proc/meminfo)"
        for key, value in (
            ("price_usd", price_usd),
            ("idle_power_w", idle_power_w),
            ("active_power_w", active_power_w),
        ):
            entry[key] = value
            sources[key] = f"estimate: given to astrasim calibrate-device {name} --{key.replace('_', '-')}"
    else:
        for key, value in (
            ("price_usd", price_usd),
            ("idle_power_w", idle_power_w),
            ("active_power_w", active_power_w),
        ):
            if value is not None:
                entry[key] = value
                sources[key] = f"estimate: given to astrasim calibrate-device {name} --{key.replace('_', '-')}"
    entry["sources"] = sources
    order = ["name", "description", "kind", *FIGURES, "profile", "sources"]  # the catalog's own field order
    return {k: entry[k] for k in order if k in entry}


def replace_entry(text: str, name: str, entry: dict) -> str:
    """The catalog text with entry NAME replaced (or appended), other entries and comments untouched."""
    block = yaml.safe_dump([entry], sort_keys=False, width=1000, allow_unicode=True)
    block = "".join("  " + line if line.strip() else line for line in block.splitlines(True))
    lines = text.splitlines(True)
    start = next(
        (i for i, ln in enumerate(lines) if re.match(rf"\s*-\s*name:\s*['\"]?{re.escape(name)}['\"]?\s*$", ln)), None
    )
    if start is None:
        return text + ("" if text.endswith("\n") else "\n") + block
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"\s*-\s*name:", lines[i])), len(lines))
    return "".join(lines[:start]) + block + "".join(lines[end:])


def check_new_entry(name: str, exists: bool, price_usd, idle_power_w, active_power_w) -> None:
    if exists:
        return
    for key, value in (("price_usd", price_usd), ("idle_power_w", idle_power_w), ("active_power_w", active_power_w)):
        if value is None:
            raise UserError(
                f"'{name}' is not in the catalog yet; a new entry needs --{key.replace('_', '-')} "
                f"(and the other figures nobody can measure here: --price-usd, --idle-power-w, "
                f"--active-power-w)",
                field=f"--{key.replace('_', '-')}",
            )


def writable_catalog(path: Path) -> None:
    """Refuse, before measuring, a catalog that cannot be rewritten (its folder must take the temporary file)."""
    from astrasim.fileio import check_output_path

    check_output_path(path, "--catalog")
    folder = path.parent if str(path.parent) else Path(".")
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"'{path}' is not writable; make it writable or give --catalog another path", field="--catalog")
    if folder.exists() and not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(
            f"cannot write in '{folder}' (permission denied); give --catalog a writable path", field="--catalog"
        )
