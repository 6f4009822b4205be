"""What each test host runs: the real per-device kernels of every strategy
(`astrasim.kernels.parallel`) on a small model, exchanging the real tensors with torch.distributed.

Collectives are run AS THE SIMULATOR MODELS THEM. Each collective is executed message by message
following `astrasim.network.collectives.plan` (the engine's own decomposition, with the
topology's default algorithm for "auto": ring on the switch, direct on the shared medium):
every receive is posted (irecv) before any send, and a message leaves as soon as the messages it
forwards or reduces have arrived. gloo's built-in all_gather / all_to_all were measured at up to
2x the ideal over shaped links, because the two directions of an exchange take turns; the
simulator does not model that artefact of one backend, so the harness does not reproduce it.
`message_log` records (src, dst, bytes, deps) of every message, and tests check it against
`plan()`.

The communication of a collective runs on one background thread per process, so forwarding and
reducing in a ring progress while the main thread computes (the engine's "a NIC moves the
bytes": sending costs no device compute), e.g. ASTRA's codes travel during local_attn.

Per layer and device (the op graphs of `astrasim.strategies` use the same ops and order):

single  attn -> mlp                                     (rank 0 only; other ranks idle)
tp      attn -> all_reduce(T x D) -> mlp -> all_reduce(T x D)
sp      all_gather(own T/N x D) -> attn -> mlp
bp-ag   (layers/nb - 1) x decoupled_layer on the D/N slice -> all_gather(T x D/N) -> full_layer
astra   vq_encode -> all_gather(codes, packed to G*log2(K) bits per token) || local_attn
        -> remote_kv -> remote_attn -> merge -> mlp
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import torch
import torch.distributed as dist

from astrasim.kernels.codes import pack_codes, packed_bytes, unpack_codes
from astrasim.models import ModelSpec

Tensor = torch.Tensor

# The small model the validation runs (a ViT-like encoder block stack, no CLS, not causal).
VALIDATION_MODEL = ModelSpec(name="val-small", family="custom", layers=2, hidden=512, heads=8, kv_heads=8,
                             mlp_hidden=2048, activation="gelu", norm="layernorm", causal=False,
                             tokens=128, max_tokens=128)


@dataclass(frozen=True)
class Variant:
    """One strategy point: name as in astrasim.strategies, with ASTRA's G (K = codebook) or BP's Nb."""

    strategy: str
    groups: int = 0
    codebook: int = 1024
    nb: int = 0

    @property
    def label(self) -> str:
        if self.strategy == "astra":
            return f"astra-g{self.groups}"
        if self.strategy in ("bp-ag", "bp-sp") and self.nb != 1:
            return f"{self.strategy}-nb{self.nb}"
        return self.strategy

    @classmethod
    def parse(cls, text: str) -> "Variant":
        """'single', 'tp', 'sp', 'bp-ag' (Nb = 1), 'bp-ag-nb2', 'astra-g1', 'astra-g32'."""
        t = text.strip().lower()
        if t.startswith("astra-g") and t[7:].isdigit():
            return cls("astra", groups=int(t[7:]))
        if t.startswith("bp-ag"):
            rest = t[5:]
            if rest == "":
                return cls("bp-ag", nb=1)
            if rest.startswith("-nb") and rest[3:].isdigit():
                return cls("bp-ag", nb=int(rest[3:]))
        if t in ("single", "tp", "sp"):
            return cls(t)
        raise ValueError(f"unknown strategy {text!r}; use single, tp, sp, bp-ag, bp-ag-nbK, astra-gG")


DEFAULT_VARIANTS = ("single", "tp", "sp", "bp-ag", "astra-g1", "astra-g32")


# ------------------------------------------------------------------------------- collectives
class Collectives:
    """Collectives as point-to-point messages (the engine's plans), on a background thread.

    Each method returns a Future; call .result() where the data is needed. Tags are unique per
    collective call and step, so concurrent pairs never mix messages.
    """

    def __init__(self, rank: int, n: int, algorithm: str, *, log: bool = False):
        self.rank, self.n, self.algorithm = rank, n, algorithm
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="comm")
        self._seq = 0
        self._lock = threading.Lock()
        # (call, kind, src, dst, bytes, step, deps): what this rank sent, for tests against plan()
        self.message_log: list[tuple] | None = [] if log else None

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def start(self) -> None:
        """Create the communication thread now (so that it can be given its priority)."""
        self._pool.submit(lambda: None).result()

    def _base(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq * 1024

    def _log(self, call: int, kind: str, dst: int, nbytes: int, step: int, deps: tuple[int, ...] = ()) -> None:
        if self.message_log is not None:
            self.message_log.append((call, kind, self.rank, dst, nbytes, step, deps))

    # all_gather -----------------------------------------------------------------------------
    def all_gather(self, chunk: Tensor, shapes: list[tuple[int, ...]], algorithm: str | None = None) -> Future:
        """Every rank ends with the list of all ranks' chunks (rank order); shapes: each rank's chunk."""
        base = self._base()
        return self._pool.submit(self._all_gather, chunk.contiguous(), shapes, algorithm or self.algorithm, base)

    def _all_gather(self, chunk: Tensor, shapes, algorithm: str, base: int) -> list[Tensor]:
        r, n = self.rank, self.n
        out: list[Tensor | None] = [None] * n
        out[r] = chunk
        if n == 1:
            return out  # type: ignore[return-value]
        if algorithm == "direct":
            recvs = []
            for j in range(n):
                if j != r:
                    out[j] = torch.empty(shapes[j], dtype=chunk.dtype)
                    recvs.append(dist.irecv(out[j], src=j, tag=base + j))
            sends = []
            for j in range(n):
                if j != r:
                    self._log(base, "ag", j, chunk.numel() * chunk.element_size(), 0)
                    sends.append(dist.isend(chunk, dst=j, tag=base + r))
            for w in recvs + sends:
                w.wait()
            return out  # type: ignore[return-value]
        # ring: in step k rank r sends chunk (r-k) mod n to r+1 and receives chunk (r-1-k) mod n
        nxt, prv = (r + 1) % n, (r - 1) % n
        recvs = []
        for k in range(n - 1):
            c = (r - 1 - k) % n
            out[c] = torch.empty(shapes[c], dtype=chunk.dtype)
            recvs.append(dist.irecv(out[c], src=prv, tag=base + k))
        sends = []
        for k in range(n - 1):
            if k > 0:
                recvs[k - 1].wait()
            c = (r - k) % n
            self._log(base, "ag", nxt, out[c].numel() * out[c].element_size(), k, (k - 1,) if k else ())
            sends.append(dist.isend(out[c], dst=nxt, tag=base + k))
        # (gloo counts completions: every work is waited exactly once)
        for w in [recvs[-1]] + sends:
            w.wait()
        return out  # type: ignore[return-value]

    # all_reduce -----------------------------------------------------------------------------
    def all_reduce(self, tensor: Tensor, algorithm: str | None = None) -> Future:
        """Sum of `tensor` over ranks (a new tensor)."""
        base = self._base()
        return self._pool.submit(self._all_reduce, tensor.contiguous(), algorithm or self.algorithm, base)

    def _all_reduce(self, tensor: Tensor, algorithm: str, base: int) -> Tensor:
        r, n = self.rank, self.n
        if n == 1:
            return tensor.clone()
        flat = tensor.reshape(-1).clone()
        chunks = list(flat.tensor_split(n))  # views into flat
        if algorithm == "direct":
            # reduce-scatter: chunk j goes to rank j; then each rank multicasts its reduced chunk
            parts = {j: torch.empty_like(chunks[r]) for j in range(n) if j != r}
            recv1 = [dist.irecv(parts[j], src=j, tag=base + j) for j in parts]
            gathered = {j: chunks[j] for j in range(n) if j != r}
            recv2 = [dist.irecv(gathered[j], src=j, tag=base + n + j) for j in gathered]
            sends = []
            for j in range(n):
                if j != r:
                    self._log(base, "rs", j, chunks[j].numel() * 4, 0)
                    sends.append(dist.isend(chunks[j].clone(), dst=j, tag=base + r))
            for w in recv1:
                w.wait()
            for p in parts.values():
                chunks[r].add_(p)
            for j in range(n):
                if j != r:
                    self._log(base, "ag", j, chunks[r].numel() * 4, 1, tuple(parts))
                    sends.append(dist.isend(chunks[r], dst=j, tag=base + n + r))
            for w in recv2 + sends:
                w.wait()
            return flat.reshape(tensor.shape)
        nxt, prv = (r + 1) % n, (r - 1) % n
        steps = 2 * (n - 1)
        bufs = [torch.empty_like(chunks[(r - 1 - k) % n]) for k in range(steps)]
        recvs = [dist.irecv(bufs[k], src=prv, tag=base + k) for k in range(steps)]
        sends = []
        for k in range(steps):
            if k > 0:
                recvs[k - 1].wait()
                c_in = (r - k) % n  # the chunk received in step k-1 is (r-1-(k-1)) = (r-k)
                if k - 1 < n - 1:
                    chunks[c_in].add_(bufs[k - 1])  # reduce-scatter: accumulate
                else:
                    chunks[c_in].copy_(bufs[k - 1])  # all-gather: overwrite with the reduced chunk
            c = (r - k) % n
            payload = chunks[c].clone()
            self._log(base, "ring", nxt, payload.numel() * 4, k, (k - 1,) if k else ())
            sends.append(dist.isend(payload, dst=nxt, tag=base + k))
        recvs[-1].wait()
        chunks[(r - steps) % n].copy_(bufs[-1])
        for w in sends:
            w.wait()
        return flat.reshape(tensor.shape)


def prioritize_communication(nice: int = -10) -> int:
    """Give every thread of this process but the main one (the communication thread, gloo's I/O
    threads) a higher CPU priority than the compute on the main thread, so that forwarding and
    delivering messages does not wait for a compute time slice when hosts share cores (the
    simulator's NIC moves bytes without device compute). Returns how many threads were changed;
    needs root for negative nice values (silently does nothing otherwise)."""
    import os
    import threading

    main = threading.main_thread().native_id
    changed = 0
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return 0
    for tid in tids:
        if tid == main:
            continue
        try:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
            changed += 1
        except OSError:
            pass
    return changed


# ---------------------------------------------------------------------------------- programs
def build_layers(spec: ModelSpec, seed: int):
    from astrasim.kernels.block import ReferenceBlock

    torch.manual_seed(seed)
    blocks = [ReferenceBlock(spec).eval() for _ in range(spec.layers)]
    return blocks


class Program:
    """One strategy's forward pass on one rank (inputs prepared once; run() is timed)."""

    def __init__(self, variant: Variant, spec: ModelSpec, rank: int, n: int, coll: Collectives, seed: int = 0):
        from astrasim.kernels import parallel
        from astrasim.kernels.split import token_bounds
        from astrasim.kernels.vq import GroupedVQ

        self.v, self.spec, self.rank, self.n, self.coll = variant, spec, rank, n, coll
        blocks = build_layers(spec, seed)
        g = torch.Generator().manual_seed(seed + 1)
        x = torch.randn(1, spec.tokens, spec.hidden, generator=g)
        s = variant.strategy
        if s == "single":
            self.blocks = [parallel.SingleBlock(b) for b in blocks]
            self.x = x
        elif s == "tp":
            self.blocks = [parallel.TPBlock(b, n, rank) for b in blocks]
            self.x = x
        elif s == "sp":
            self.blocks = [parallel.SPBlock(b, n, rank) for b in blocks]
            self.bounds = token_bounds(spec.tokens, n)
            a, b_ = self.bounds[rank]
            self.x = x[:, a:b_].contiguous()
        elif s == "bp-ag":
            self.blocks = [parallel.BPAGBlock(b, n, rank) for b in blocks]
            self.per = spec.layers // variant.nb
            self.slices = parallel.decoupled_slices(blocks[0], n)
            a, b_ = self.slices[rank]
            self.x = x[..., a:b_].contiguous()
        elif s == "astra":
            vqs = []
            for _ in range(spec.layers):
                vq = GroupedVQ(spec.hidden, variant.groups, variant.codebook).eval()
                vq.init_from(x)  # data-dependent codebook (random codes would be as good for timing)
                vqs.append(vq)
            self.blocks = [parallel.AstraBlock(b, q, n, rank) for b, q in zip(blocks, vqs)]
            self.bounds = token_bounds(spec.tokens, n)
            a, b_ = self.bounds[rank]
            self.x = x[:, a:b_].contiguous()
            self.bits = vqs[0].index_bits
        else:
            raise ValueError(f"strategy {s!r} is not run by the validation harness")
        self.out: Tensor | None = None
        self.trace: list[tuple[str, float, float, float]] | None = []

    @torch.inference_mode()
    def run(self) -> None:
        s = self.v.strategy
        if self.trace is not None:
            self.trace.clear()
        getattr(self, f"_run_{s.replace('-', '_')}")()

    # helper steps of the harness folded into the profiled op they belong to (in-situ op times)
    FOLD = {"pack": "vq_encode", "unpack": "remote_kv"}

    def compute_s(self) -> float:
        """Seconds this rank spent in kernels (every traced op but the waits) in the last pass."""
        return sum(b - a for name, a, b, _ in self.trace or () if not name.startswith("wait"))

    def op_seconds(self) -> dict[str, float]:
        """In-situ seconds per profiled op in the last pass, averaged over layers (for the
        diagnostic prediction with the op times of the real passes, see compare.py)."""
        total: dict[str, float] = {}
        count: dict[str, int] = {}
        for name, a, b, _ in self.trace or ():
            if name.startswith("wait"):
                continue
            op = self.FOLD.get(name, name)
            total[op] = total.get(op, 0.0) + (b - a)
            if name not in self.FOLD:
                count[op] = count.get(op, 0) + 1
        return {op: t / max(count.get(op, 1), 1) for op, t in total.items()}

    def _op(self, name: str, fn, *args):
        """Run one op; with tracing on, record (name, start, end, thread CPU seconds); start and end on
        the monotonic clock that all hosts share."""
        if self.trace is None:
            return fn(*args)
        t0, c0 = time.monotonic(), time.thread_time()
        out = fn(*args)
        self.trace.append((name, t0, time.monotonic(), time.thread_time() - c0))
        return out

    def _wait(self, name: str, fut: Future):
        return self._op(name, fut.result)

    def _run_single(self) -> None:
        if self.rank != 0:
            return
        x = self.x
        for blk in self.blocks:
            x = self._op("mlp", blk.mlp, self._op("attn", blk.attn, x))
        self.out = x

    def _run_tp(self) -> None:
        x = self.x
        for blk in self.blocks:
            h = self._wait("wait_ar", self.coll.all_reduce(self._op("attn", blk.attn, x)))
            x = self._wait("wait_ar", self.coll.all_reduce(self._op("mlp", blk.mlp, h)))
        self.out = x

    def _run_sp(self) -> None:
        x = self.x
        shapes = [(1, b - a, self.spec.hidden) for a, b in self.bounds]
        for blk in self.blocks:
            parts = self._wait("wait_ag", self.coll.all_gather(x, shapes))
            x = self._op("mlp", blk.mlp, self._op("attn", blk.attn, torch.cat(parts, dim=1)))
        self.out = x

    def _run_bp_ag(self) -> None:
        s = self.x
        shapes = [(1, self.spec.tokens, b - a) for a, b in self.slices]
        layer = 0
        a, b = self.slices[self.rank]
        for _ in range(self.v.nb):
            for _ in range(self.per - 1):
                s = self._op("decoupled_layer", self.blocks[layer].decoupled_layer, s)
                layer += 1
            full = torch.cat(self._wait("wait_ag", self.coll.all_gather(s, shapes)), dim=-1)
            y = self._op("full_layer", self.blocks[layer].full_layer, full)
            layer += 1
            s = y[..., a:b].contiguous()
        self.out = y

    def _run_astra(self) -> None:
        x = self.x
        g, bits = self.v.groups, self.bits
        counts = [(b - a) * g for a, b in self.bounds]
        shapes = [(packed_bytes(c, bits),) for c in counts]
        for blk in self.blocks:
            codes = self._op("vq_encode", blk.vq_encode, x)
            fut = self.coll.all_gather(self._op("pack", pack_codes, codes, bits), shapes)
            local = self._op("local_attn", blk.local_attn, x)
            packed = self._wait("wait_ag", fut)
            remote = self._op("unpack", lambda: torch.cat(
                [unpack_codes(packed[j], counts[j], bits).reshape(1, -1, g) for j in range(self.n) if j != self.rank],
                dim=1))
            k_hat, v_hat = self._op("remote_kv", blk.remote_kv, remote)
            r = self._op("remote_attn", blk.remote_attn, local.q, k_hat, v_hat)
            x = self._op("mlp", blk.mlp, self._op("merge", blk.merge, x, local, r))
        self.out = x


def profile_variant(spec: ModelSpec, v: Variant, n: int, repeats: int, warmup: int) -> list[dict]:
    """The shipped profiler (`astrasim.profiling.profile_ops`, one thread) on this variant's ops for
    N devices, run here, inside the worker, while the other hosts profile too: the same machine,
    the same sharing of its cores, seconds away from the timed passes."""
    from astrasim.profiling import profile_ops

    n_dev = 1 if v.strategy == "single" else n
    table = profile_ops(spec, [v.strategy], [n_dev], [v.groups] if v.strategy == "astra" else [0], spec.tokens,
                        codebook=v.codebook, threads=1, repeats=repeats, warmup=warmup, progress=False)
    return table.to_dict("records")


def run_strategies(job: dict, timed) -> dict:
    """Worker entry for mode 'strategies': for every variant of the job, profile its ops on the spot
    (when job["profile"] asks for it), time its forward passes, and profile again; returns
    {label: {"passes": [records], "profile": [profile rows of this rank, before and after]}}."""
    spec = ModelSpec(**job["model"])
    rank, n = dist.get_rank(), dist.get_world_size()
    coll = Collectives(rank, n, job["algorithm"])
    coll.start()
    prioritize_communication()
    prof = job.get("profile")
    out = {}
    try:
        for label in job["variants"]:
            v = Variant.parse(label)
            rows: list[dict] = []
            if prof:
                dist.barrier()
                rows += profile_variant(spec, v, n, prof["repeats"], prof["warmup"])
            prog = Program(v, spec, rank, n, coll, seed=job.get("seed", 0))
            passes = timed(prog.run, job.get("warmup", 1), job.get("repeats", 3), job.get("budget_s", 0.0),
                           job.get("max_repeats", 0), extra=lambda: {"compute_s": prog.compute_s(), "ops": prog.op_seconds()})
            if job.get("trace"):
                passes[-1]["trace"] = list(prog.trace)
            if prof:
                dist.barrier()
                rows += profile_variant(spec, v, n, prof["repeats"], prof["warmup"])
            out[label] = {"passes": passes, "profile": rows}
    finally:
        coll.close()
    return out
