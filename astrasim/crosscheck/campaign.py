"""The ns-3 cross-check campaign: the same collectives in ns-3 (packet level) and in astrasim.

For every point (network, collective, algorithm, N, message size) ns-3 runs the plan of
astrasim.network.collectives.plan over TCP with several seeds (runner.py); astrasim predicts it
with its engine on the matching preset (`wifi` with the same standard, width and MCS; `switch`
at the same line rate), no parameter fitted to any of these points. Writes results.csv (one row
per point), runs.csv (one per ns-3 run), summary.csv / summary.md and a predicted-vs-measured
plot. error = predicted / measured - 1; points whose seed-to-seed spread (max / min - 1) is at
least report.SPREAD_LIMIT are reported apart (ns-3 itself is erratic there: TCP timeouts).
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from astrasim.crosscheck.build import build
from astrasim.crosscheck.report import SPREAD_LIMIT, plot, summary_markdown, verdict
from astrasim.crosscheck.runner import ReferenceNetwork, run_point, schedule_text
from astrasim.engine import simulate
from astrasim.errors import UserError
from astrasim.fileio import write_csv_atomic, write_text_atomic
from astrasim.network.topology import Fabric, build_topology
from astrasim.network.wifi80211 import WifiPhy
from astrasim.network.wifi_config import WifiConfig
from astrasim.opgraph import Comm, OpGraph

KIB = 1024
# (label, standard, width MHz, MCS): 65, 135 and 390 Mbps PHY rates, one spatial stream, 800 ns GI
WIFI_CONFIGS = (("n-20MHz-MCS7", "n", 20, 7), ("n-40MHz-MCS7", "n", 40, 7), ("ac-80MHz-MCS9", "ac", 80, 9))
PATTERNS = (
    ("p2p", "direct"),
    ("all_gather", "ring"),
    ("all_gather", "direct"),
    ("all_reduce", "ring"),
    ("all_reduce", "direct"),
)


def air_bytes(collective: str, n: int, size: int) -> int:
    """Payload bytes a collective's messages carry in all (each counted once): what an ns-3 run costs."""
    return {"p2p": size, "all_gather": n * (n - 1) * size, "all_reduce": 2 * (n - 1) * size}[collective]


@dataclass
class Grid:
    """Which points to run (defaults: the published grid, docs/network.md)."""

    wifi: tuple = WIFI_CONFIGS
    hosts: tuple[int, ...] = (2, 4, 8)
    sizes: tuple[int, ...] = (1 * KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, 4096 * KIB)
    p2p_sizes: tuple[int, ...] = (1 * KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, 1024 * KIB, 4096 * KIB)
    max_bytes: int = 16 * 1024 * KIB  # skip collectives moving more than this over the air in all (ns-3 time)
    switch_mbps: float = 100.0
    switch_hosts: tuple[int, ...] = (4, 8)
    switch_sizes: tuple[int, ...] = (16 * KIB, 256 * KIB, 4096 * KIB)
    seeds: tuple[int, ...] = (1, 2, 3)
    workers: int = 2

    def points(self) -> list[dict]:
        out = []
        for label, std, width, mcs in self.wifi:
            net = {"network": label, "kind": "wifi", "standard": std, "width_mhz": width, "mcs": mcs}
            for coll, alg in PATTERNS:
                for n in (2,) if coll == "p2p" else self.hosts:
                    if alg == "direct" and coll != "p2p" and n == 2:
                        continue  # the same messages as the ring at N = 2
                    for size in self.p2p_sizes if coll == "p2p" else self.sizes:
                        if air_bytes(coll, n, size) > self.max_bytes:
                            continue
                        out.append({**net, "collective": coll, "algorithm": alg, "hosts": n, "size_bytes": size})
        label = f"switch-{self.switch_mbps:g}Mbps"
        for coll, alg in PATTERNS[:4]:
            for n in (2,) if coll == "p2p" else self.switch_hosts:
                for size in self.switch_sizes:
                    out.append(
                        {
                            "network": label,
                            "kind": "switch",
                            "standard": "",
                            "width_mhz": 0,
                            "mcs": -1,
                            "collective": coll,
                            "algorithm": alg,
                            "hosts": n,
                            "size_bytes": size,
                        }
                    )
        return out


QUICK = Grid(
    wifi=WIFI_CONFIGS[:1],
    hosts=(2, 4),
    sizes=(1 * KIB, 64 * KIB),
    p2p_sizes=(1 * KIB, 64 * KIB),
    switch_hosts=(4,),
    switch_sizes=(64 * KIB,),
    seeds=(1, 2),
)


def reference_network(point: dict, grid: Grid) -> ReferenceNetwork:
    if point["kind"] == "switch":
        return ReferenceNetwork("switch", point["hosts"], link_mbps=grid.switch_mbps)
    return ReferenceNetwork("wifi", point["hosts"], WifiPhy(point["standard"], point["width_mhz"], point["mcs"]))


def simulator_topology(point: dict, grid: Grid):
    """The astrasim preset that models the same network, with its defaults."""
    if point["kind"] == "switch":
        return build_topology("switch", point["hosts"], grid.switch_mbps)
    cfg = WifiConfig(standard=point["standard"], channel_width_mhz=point["width_mhz"], mcs=point["mcs"])
    return build_topology("wifi", point["hosts"], None, wifi=cfg)


def predict(point: dict, grid: Grid) -> float:
    """astrasim's time for the point's collective alone (one Comm, nothing else)."""
    g = OpGraph(point["hosts"])
    g.add(
        Comm(
            "c",
            point["collective"],
            tuple(range(point["hosts"])),
            8.0 * point["size_bytes"],
            algorithm=point["algorithm"],
        )
    )
    return simulate(g, simulator_topology(point, grid)).latency_s


def check_engine_charges_airtime() -> None:
    """UserError unless the engine adds each message's Wi-Fi airtime overhead (the per-message
    hook of the shared medium): without it the predictions would leave out every frame's cost."""
    fabric = Fabric(build_topology("wifi", 2, 65.0))
    medium = fabric.resources[0]
    g = OpGraph(2)
    g.add(Comm("c", "p2p", (0, 1), 8192.0))
    t = simulate(g, fabric).latency_s
    expected = 2 * (8192.0 / medium.capacity_bps + medium.overhead_s(8192.0))
    if abs(t / expected - 1) > 1e-6:
        raise UserError(
            "this engine does not charge the per-message airtime of a Wi-Fi medium "
            "(Resource.overhead_s); the cross-check needs it",
            field="crosscheck",
        )


def run_key(point: dict, grid: Grid) -> str:
    """What an ns-3 run of the point depends on (the network's arguments and the message schedule,
    i.e. collectives.plan): runs.csv rows carry it, so a changed plan or network never reuses a
    stale run (the ring plan's dependencies changed once, and ns-3's ring times with it)."""
    import hashlib

    text = (
        " ".join(reference_network(point, grid).args())
        + "\n"
        + schedule_text(point["collective"], point["algorithm"], point["hosts"], point["size_bytes"])
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cost(point: dict) -> float:
    """Relative ns-3 cost of a point (bytes on the air), to run the cheap points first."""
    return air_bytes(point["collective"], point["hosts"], point["size_bytes"]) / (1 if point["kind"] == "wifi" else 8)


def measure(exe: Path, points: list[dict], grid: Grid, log=print, runs_path: Path | None = None) -> pd.DataFrame:
    """Every point with every seed in ns-3, `grid.workers` runs at a time, cheapest first. With
    `runs_path`, each finished run is appended there at once and runs already there are kept
    (an interrupted campaign resumes where it stopped)."""
    done = pd.DataFrame()
    if runs_path is not None and Path(runs_path).is_file():
        done = load_runs(runs_path, points, grid, log=log)
    have = set(zip(done.get("point", []), done.get("seed", [])))
    jobs = sorted(
        ((i, seed) for i in range(len(points)) for seed in grid.seeds if (i, seed) not in have),
        key=lambda j: (_cost(points[j[0]]), j),
    )
    t0 = time.monotonic()

    def one(job):
        i, seed = job
        p = points[i]
        start = time.monotonic()
        r = run_point(exe, reference_network(p, grid), p["collective"], p["algorithm"], p["size_bytes"], seed)
        return {
            "point": i,
            "key": run_key(p, grid),
            "seed": seed,
            "measured_s": r["elapsed_s"],
            "complete": r["complete"],
            "cpu_wall_s": time.monotonic() - start,
        }

    rows = []
    if have:
        log(f"  resuming: {len(have)} runs already in {runs_path}, {len(jobs)} to go")
    with ThreadPoolExecutor(max(1, grid.workers)) as pool:
        for k, row in enumerate(pool.map(one, jobs), 1):
            rows.append(row)
            if runs_path is not None:
                new = not Path(runs_path).is_file()
                pd.DataFrame([row]).to_csv(runs_path, mode="a", header=new, index=False, float_format="%.9g")
            if k % 25 == 0 or k == len(jobs):
                log(f"  ns-3 runs {k}/{len(jobs)} ({time.monotonic() - t0:.0f} s)")
    out = pd.concat([done, pd.DataFrame(rows)], ignore_index=True) if len(done) else pd.DataFrame(rows)
    return out.sort_values(["point", "seed"], ignore_index=True)


def combine(points: list[dict], runs: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """One row per point: the median over seeds, the spread, astrasim's prediction, the error."""
    out = []
    for i, p in enumerate(points):
        r = runs[(runs["point"] == i) & runs["complete"]]["measured_s"].tolist()
        row = {**p, "seeds": len(r)}
        if r:
            med = statistics.median(r)
            pred = predict(p, grid)
            row.update(
                measured_s=med,
                measured_min_s=min(r),
                measured_max_s=max(r),
                spread=max(r) / min(r) - 1,
                predicted_s=pred,
                error=pred / med - 1,
                abs_error=abs(pred / med - 1),
            )
        out.append(row)
    df = pd.DataFrame(out)
    for col in ("measured_s", "measured_min_s", "measured_max_s", "spread", "predicted_s", "error", "abs_error"):
        if col not in df:  # no point has a complete run
            df[col] = float("nan")
    df["steady"] = (df["seeds"] >= 2) & (df["spread"] < SPREAD_LIMIT)  # NaN spread (no runs): not steady
    df["role"] = ["calibration" if c == "p2p" else "prediction" for c in df["collective"]]
    return df


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """|error| statistics per group, over the steady points (and a count of the erratic ones)."""
    rows = []
    res = results.assign(pattern=results["collective"] + "/" + results["algorithm"])
    for by in ("kind", "network", "pattern", "hosts", "role"):
        for key, grp in res.groupby(by, sort=False):
            rows.append(_stats(by, str(key), grp))
    wifi = res[res["kind"] == "wifi"]
    for key, grp in wifi.groupby("pattern", sort=False):
        rows.append(_stats("wifi pattern", str(key), grp))
    rows.append(_stats("wifi", "all Wi-Fi points", res[res["kind"] == "wifi"]))
    return pd.DataFrame(rows)


def _stats(by: str, key: str, grp: pd.DataFrame) -> dict:
    steady = grp[grp["steady"] & grp["abs_error"].notna()]
    e = steady["abs_error"]
    erratic = (grp["seeds"] >= 2) & ~grp["steady"]
    return {
        "group": by,
        "value": key,
        "points": len(steady),
        "erratic_points": int(erratic.sum()),
        "not_run": int((grp["seeds"] < 2).sum()),
        "median_abs_error": e.median() if len(e) else float("nan"),
        "p90_abs_error": e.quantile(0.9) if len(e) else float("nan"),
        "max_abs_error": e.max() if len(e) else float("nan"),
        "mean_error": steady["error"].mean() if len(e) else float("nan"),
    }


def load_runs(path: Path, points: list[dict], grid: Grid, log=print) -> pd.DataFrame:
    """The ns-3 runs of an earlier campaign (its runs.csv) that still describe points of this grid:
    matched by run key (network and schedule), not by position; runs of another plan or network
    are dropped, and how many is said."""
    p = Path(path)
    if not p.is_file():
        raise UserError(
            f"'{p}' not found; give the runs.csv an earlier `astrasim crosscheck` wrote", field="reuse-runs"
        )
    try:
        runs = pd.read_csv(p)
    except (ValueError, OSError) as exc:
        raise UserError(
            f"'{p}' is not a runs.csv ({exc}); run `astrasim crosscheck` again", field="reuse-runs"
        ) from None
    missing = {"key", "seed", "measured_s", "complete"} - set(runs.columns)
    if missing:
        raise UserError(
            f"'{p}' has no column(s) {sorted(missing)} (written before runs carried their schedule's "
            "key); run `astrasim crosscheck` again",
            field="reuse-runs",
        )
    index = {run_key(pt, grid): i for i, pt in enumerate(points)}
    runs["point"] = runs["key"].map(index)
    stale = int(runs["point"].isna().sum())
    if not runs.loc[runs["point"].notna(), "complete"].astype(bool).any():
        raise UserError(
            f"'{p}' holds no complete run of this grid ({stale} of its {len(runs)} runs are of another "
            "schedule or network); give the runs.csv of a campaign with the same grid (--quick or not), "
            "or run without --reuse-runs",
            field="reuse-runs",
        )
    if stale:
        log(f"  {stale} of {len(runs)} runs in {p} are of another schedule or network: not reused")
    runs = runs.dropna(subset=["point"]).astype({"point": int})
    return runs.drop_duplicates(["point", "seed"], keep="last").reset_index(drop=True)


OUTPUT_FILES = (
    "results.csv",
    "runs.csv",
    "summary.csv",
    "summary.md",
    "predicted_vs_measured.png",
    "runs.partial.csv",
)  # what run_crosscheck writes in its folder


def run_crosscheck(
    grid: Grid, out_dir: Path | None, *, command: str = "", reuse_runs: Path | None = None, log=print
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The whole campaign: build, measure (or reuse earlier ns-3 runs), predict, compare, write."""
    check_engine_charges_airtime()
    points = grid.points()
    if not points or not grid.seeds:
        raise UserError("the grid has no points or no seeds", field="crosscheck")
    t0 = time.monotonic()
    if reuse_runs is not None:
        runs = load_runs(reuse_runs, points, grid, log=log)
        log(f"reusing {len(runs)} ns-3 runs from {reuse_runs}; predicting {len(points)} points")
    else:
        exe = build(log=log)
        log(f"running {len(points)} points x {len(grid.seeds)} seeds in ns-3")
        partial = None if out_dir is None else Path(out_dir) / "runs.partial.csv"
        if partial is not None:
            partial.parent.mkdir(parents=True, exist_ok=True)
        runs = measure(exe, points, grid, log=log, runs_path=partial)
    results = combine(points, runs, grid)
    summary = summarize(results)
    elapsed = time.monotonic() - t0
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, df in (("results.csv", results), ("runs.csv", runs), ("summary.csv", summary)):
            write_csv_atomic(out / name, df, "%.6g")
        write_text_atomic(out / "summary.md", summary_markdown(results, summary, grid, command, elapsed))
        plot(results, out / "predicted_vs_measured.png")
        (out / "runs.partial.csv").unlink(missing_ok=True)  # runs.csv now holds every run
    log(verdict(summary)[1] + f" ({elapsed:.0f} s)")
    return results, summary
