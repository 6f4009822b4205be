"""Engine speed: CPU time of simulate() on representative op graphs (prints figures; not a test).

    python bench/bench_engine.py            # targets and tables (a few minutes)
    python bench/bench_engine.py --quick    # targets and the compiled-program figures only

The graphs are built here (no profile, no strategy module) with the shapes of the real ones:
* astra-like: per layer each device runs vq_encode, local_attn, remote_kv, remote_attn, merge,
  mlp, and joins one all-gather of its codes (T/N tokens x G=32 groups x 10 bits);
* sp-like: per layer one all-gather of T/N x D x 32 bits, then attn and mlp.
T = 1024 tokens, D = 768, 100 Mbps; Wi-Fi (infrastructure mode, direct all-gather) unless a
table names the topology.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from astrasim.engine import compile, simulate  # noqa: E402
from astrasim.network.topology import build_topology  # noqa: E402
from astrasim.opgraph import Comm, Compute, OpGraph  # noqa: E402

T, D = 1024, 768
TOPOLOGIES = ("wifi", "wifi-adhoc", "switch", "mesh", "ideal")  # wifi first: the reference


def astra_graph(n: int, layers: int) -> OpGraph:
    g = OpGraph(n)
    bits = (T // n) * 32 * 10
    prev = [None] * n
    for layer in range(layers):
        for d in range(n):
            g.add(
                Compute(
                    f"L{layer}.vq.{d}", d, 0.4e-3, deps=(prev[d],) if prev[d] else (), name="vq_encode", layer=layer
                )
            )
        ag = g.add(
            Comm(
                f"L{layer}.ag",
                "all_gather",
                tuple(range(n)),
                bits,
                deps=tuple(f"L{layer}.vq.{d}" for d in range(n)),
                name="codes",
                layer=layer,
            )
        )
        for d in range(n):
            p = f"L{layer}.{{}}.{d}"
            g.add(Compute(p.format("local"), d, 2e-3, deps=(p.format("vq"),), name="local_attn", layer=layer))
            g.add(Compute(p.format("rkv"), d, 3e-3, deps=(ag,), name="remote_kv", layer=layer))
            g.add(Compute(p.format("rattn"), d, 2e-3, deps=(p.format("rkv"),), name="remote_attn", layer=layer))
            g.add(
                Compute(
                    p.format("merge"), d, 1e-3, deps=(p.format("local"), p.format("rattn")), name="merge", layer=layer
                )
            )
            prev[d] = g.add(Compute(p.format("mlp"), d, 5e-3, deps=(p.format("merge"),), name="mlp", layer=layer))
    return g


def sp_graph(n: int, layers: int) -> OpGraph:
    g = OpGraph(n)
    bits = (T // n) * D * 32
    prev = [None] * n
    for layer in range(layers):
        ag = g.add(
            Comm(
                f"L{layer}.ag",
                "all_gather",
                tuple(range(n)),
                bits,
                deps=tuple(p for p in prev if p),
                name="hidden",
                layer=layer,
            )
        )
        for d in range(n):
            a = g.add(Compute(f"L{layer}.attn.{d}", d, 8e-3, deps=(ag,), name="attn", layer=layer))
            prev[d] = g.add(Compute(f"L{layer}.mlp.{d}", d, 6e-3, deps=(a,), name="mlp", layer=layer))
    return g


def cpu_time(fn, min_total: float = 0.3, max_reps: int = 200) -> float:
    """Median CPU seconds of fn() over repeats (at least 3, about min_total seconds in all), each
    after a full garbage collection (the engine runs with the cyclic collector off: without the
    collect, the garbage of earlier runs is scanned inside a timed run at random)."""
    times = []
    spent = 0.0
    while len(times) < 3 or (spent < min_total and len(times) < max_reps):
        gc.collect()
        t0 = time.process_time()
        fn()
        dt = time.process_time() - t0
        times.append(dt)
        spent += dt
    return statistics.median(times)


def run(builder, n: int, layers: int, mbps: float = 100.0, kind: str = "wifi", speeds=None):
    graph = builder(n, layers)
    topo = build_topology(kind, n, mbps)
    res = simulate(graph, topo, speeds=speeds)
    return graph, res, cpu_time(lambda: simulate(graph, topo, speeds=speeds))


def hetero(n: int) -> list[float]:
    return [1 + 0.01 * i for i in range(n)]  # no two devices act at the same instant


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only the targets")
    args = ap.parse_args()
    print("engine benchmark: CPU time of astrasim.engine.simulate (median of repeats)\n")
    for name, builder in (("astra", astra_graph), ("sp", sp_graph)):
        graph, res, t = run(builder, 4, 12)
        print(
            f"{name:5s} 4 devices x 12 layers, wifi: {t * 1e3:7.2f} ms CPU  (target < 5 ms)  ops={len(graph.ops)} "
            f"messages={res.n_messages} simulated latency={res.latency_s * 1e3:.1f} ms"
        )
    print(
        "\nastra-like graph, 64 devices x 32 layers, 100 Mbps, auto algorithm (ring on switch, direct elsewhere): "
        "targets < 0.25 s CPU and per-message cost within 2x of wifi's"
    )
    print(f"{'network':>10} {'speeds':>7} {'messages':>9} {'CPU s':>8} {'us/msg':>7} {'x wifi':>7}")
    base: dict[str, float] = {}
    for label, speeds in (("homo", None), ("hetero", hetero(64))):
        for kind in TOPOLOGIES:
            graph, res, t = run(astra_graph, 64, 32, kind=kind, speeds=speeds)
            per = t / res.n_messages * 1e6
            base.setdefault(label, per)
            print(f"{kind:>10} {label:>7} {res.n_messages:9d} {t:8.3f} {per:7.2f} {per / base[label]:7.2f}")
    print("\nrepeated runs of one point (speed_jitter's 31 draws): 31 x simulate vs compile once + 31 x Program.run")
    print(f"{'graph':>22} {'network':>8} {'simulate s':>11} {'compiled s':>11} {'compile s':>10}")
    for label, builder, n, layers, kind in (
        ("astra 4 x 12", astra_graph, 4, 12, "wifi"),
        ("astra 16 x 32", astra_graph, 16, 32, "switch"),
        ("sp 64 x 32", sp_graph, 64, 32, "mesh"),
    ):
        graph, topo = builder(n, layers), build_topology(kind, n, 100.0)
        draws = [hetero(n)[::-1] if k % 2 else hetero(n) for k in range(31)]
        fresh = cpu_time(
            lambda graph=graph, topo=topo, draws=draws: [simulate(graph, topo, speeds=s) for s in draws], min_total=0.0
        )
        program = compile(graph, topo)
        once = cpu_time(lambda graph=graph, topo=topo: compile(graph, topo), min_total=0.0)
        reused = cpu_time(lambda program=program, draws=draws: [program.run(speeds=s) for s in draws], min_total=0.0)
        print(f"{label:>22} {kind:>8} {fresh:11.3f} {reused + once:11.3f} {once:10.4f}")
    if args.quick:
        return
    graph, res, t = run(sp_graph, 64, 32)
    print(f"\nsp    64 devices x 32 layers, wifi: {t:7.3f} s CPU  ops={len(graph.ops)} messages={res.n_messages}")
    print(
        "\nastra-like graph on Wi-Fi: CPU time vs devices N and layers L; messages = flows "
        "(us/item = CPU time per op + message: flat = time proportional to the work)"
    )
    print(f"{'N':>4} {'L':>4} {'ops':>8} {'messages':>9} {'CPU ms':>9} {'us/item':>8}")
    for n in (2, 4, 8, 16, 32, 64):
        for layers in (12, 24, 48, 96):
            graph, res, t = run(astra_graph, n, layers)
            print(
                f"{n:4d} {layers:4d} {len(graph.ops):8d} {res.n_messages:9d} {t * 1e3:9.2f} "
                f"{t / (len(graph.ops) + res.n_messages) * 1e6:8.2f}"
            )
    print("\nastra-like graph, 16 devices x 32 layers, every topology")
    print(f"{'network':>10} {'speeds':>7} {'messages':>9} {'recomputes':>10} {'CPU ms':>9} {'us/msg':>7}")
    for kind in TOPOLOGIES:
        for label, speeds in (("homo", None), ("hetero", hetero(16))):
            graph, res, t = run(astra_graph, 16, 32, kind=kind, speeds=speeds)
            print(
                f"{kind:>10} {label:>7} {res.n_messages:9d} {res.meta['network_recomputes']:10d} "
                f"{t * 1e3:9.1f} {t / res.n_messages * 1e6:7.2f}"
            )


if __name__ == "__main__":
    main()
