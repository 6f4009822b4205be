"""Measuring a validation campaign: the kernels timed alone (`microbenchmark_profile`), each
testbed's message CPU cost (`message_cpu`), and every point's real passes over shaped links
(`measure`), with the co-run rounds its in-situ costs come from (`point_rounds`) and its measured
row (`measured_row`: median latency, noise, the passes the hypervisor did not take from)."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd

from astrasim.validation.calibrate import SIM_KIND, Calibration, calibrate
from astrasim.validation.corun import cost_rounds
from astrasim.validation.graphs import graph_to_json
from astrasim.validation.idle import IDLE_MAX, measure_others, wait_idle
from astrasim.validation.launch import run_job
from astrasim.validation.netns import testbed
from astrasim.validation.points import (
    alone_costs,
    calibrated_network,
    core_shares,
    machine_cores,
    point_costs,
    point_for,
    point_key,
)
from astrasim.validation.protocol import PROTOCOL, Settings
from astrasim.validation.steal import RETAKES, clean, least_stolen


def microbenchmark_profile(settings: Settings, log=print) -> pd.DataFrame:
    """Every (strategy, N) of the grid timed alone by the shipped profiler (one thread, ops in
    program order), with the share other processes took meanwhile: the kernel costs of the prediction from profiles
    (`from_profiles`), and the base table whose rows each point's co-run rounds replace for the
    in-situ one (`point_costs`)."""
    from astrasim.profiling import profile_ops
    from astrasim.strategies import parse_label

    tables, seen = [], set()
    for label in settings.strategies:
        strategy, knobs = parse_label(label)
        pkey = strategy.profile_key(knobs)
        for name, n in sorted({strategy.profile_rows(n) for n in settings.hosts}):
            key = (name, n, pkey)
            if key in seen:
                continue
            seen.add(key)
            best, best_share = None, float("inf")
            for attempt in range(1 + RETAKES):  # alone means alone: others' load is timed too (idle.py)
                wait_idle(log, f"profiling {name} N={n}")
                rows, share = measure_others(
                    lambda name=name, n=n, pkey=pkey: profile_ops(
                        settings.model,
                        [name],
                        [n],
                        None,
                        settings.model.tokens,
                        threads=1,
                        knobs={k: [v] for k, v in pkey},
                        repeats=settings.profile_repeats,
                        warmup=2,
                        progress=False,
                    )
                )
                if share < best_share:
                    best, best_share = rows, share
                if share <= IDLE_MAX:
                    break
                log(
                    f"  profiling {name} N={n}: other processes used {share:.0%} of the CPUs"
                    + (", taking it again" if attempt < RETAKES else "; keeping the least disturbed try")
                )
            tables.append(best.assign(others_share=best_share))
    table = pd.concat(tables, ignore_index=True)
    table["alone_s"] = table["median_s"]
    log(
        f"  profiled {len(seen)} (strategy, N) configurations alone: {len(table)} op rows; other processes "
        f"used at most {table['others_share'].max():.0%} of the CPUs meanwhile"
    )
    return table


def _latencies(records: list[list[dict]]) -> list[float]:
    """records[rank][repeat] -> per repeat, the slowest rank's end minus the common start."""
    return [max(r[k]["end"] for r in records) - records[0][k]["start"] for k in range(len(records[0]))]


def _pass_shares(records: list[list[dict]]) -> list[float]:
    """records[rank][repeat] -> per repeat, the largest share stolen as a rank saw it (0 if unrecorded)."""
    return [max(r[k].get("stolen", 0.0) for r in records) for k in range(len(records[0]))]


def clean_passes(records: list[list[dict]]) -> list[list[dict]]:
    """records[rank][repeat] without the repeats the hypervisor visibly took from (steal.clean)."""
    keep = clean(_pass_shares(records))
    return [[r[k] for k in keep] for r in records]


def _loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


def measured_row(res: list[dict], label: str) -> dict:
    """Median latency, its spread (noise figure) and the op times inside one point's passes (those
    the hypervisor did not visibly take from: `clean_passes`), and the share stolen during them."""
    every = [r["result"][label]["passes"] for r in res]
    recs = clean_passes(every)
    lat = sorted(_latencies(recs))
    med = statistics.median(lat)
    q = statistics.quantiles(lat, n=10, method="inclusive") if len(lat) > 1 else [med] * 9
    compute = statistics.median(max(r[k]["compute_s"] for r in recs) for k in range(len(recs[0])))
    ops: dict[str, list[float]] = {}
    for r in recs:  # per rank: median over passes; then the mean over ranks
        for op in r[0]["ops"]:
            ops.setdefault(op, []).append(statistics.median(p["ops"].get(op, 0.0) for p in r))
    return {
        "measured_s": med,
        "measured_min_s": lat[0],
        "measured_max_s": lat[-1],
        "noise": (q[8] - q[0]) / (2 * med) if med > 0 else 0.0,
        "measured_compute_s": compute,
        "in_pass_ops": json.dumps({op: sum(v) / len(v) for op, v in ops.items()}, sort_keys=True),
        "repeats": len(lat),
        "passes_dropped": len(every[0]) - len(lat),
        "stolen": statistics.mean(_pass_shares(recs)),
        "late_start_s": max(r[k]["late_s"] for r in recs for k in range(len(r))),
        "loadavg_1m": _loadavg(),
    }


def measure(
    settings: Settings, host_setup, alone: pd.DataFrame, log=print, trace_dir: str | Path | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[tuple, Calibration], pd.DataFrame]:
    """Real latencies of every (topology, N, bandwidth, strategy) point (single once): each point's
    engine inputs are built first, and its OpGraph is what the hosts run; each row's `_point` is
    its in-situ prediction: costed by the co-run rounds its workers ran right before each pass
    (`cost_rounds`, `corun.py`) on top of the `alone` profile, with their speed jitter
    (`from_profiles` turns it into the prediction from profiles); its network is the calibration of
    its testbed at its bandwidth, taken right before its points (`calibrate.py`). With `trace_dir`,
    every job's raw per-rank records (each pass's op and message intervals and CPU time, the
    co-run rounds) go to trace_dir/<topology>-N<n>-<bw>Mbps.json.
    Returns (measured rows, the profiles used: alone rows and each
    point's, {(topology, N, bandwidth): Calibration}, the raw calibration rows)."""
    from astrasim.network.topology import DEFAULTS
    from astrasim.pointrun import engine_inputs
    from astrasim.strategies import parse_label
    from astrasim.validation.corun import ROUNDS, one_core_op_seconds, round_spread

    rows, profiles = [], [alone.assign(topology="alone", hosts=0, bandwidth_mbps=float("nan"), label="")]
    alone_cost = alone_costs(alone)  # what every point is built from, and the prediction from profiles
    job = {
        "mode": "graphs",
        "model": asdict(settings.model),
        "warmup": settings.warmup,
        "repeats": settings.repeats,
        "budget_s": settings.budget_s,
        "max_repeats": settings.max_repeats,
        "seed": settings.seed,
        "pin": True,
        "kernel_rounds": ROUNDS,
        "trace": trace_dir is not None,
    }
    singles = [s for s in settings.strategies if parse_label(s)[0].single_device]
    multi = [s for s in settings.strategies if s not in singles]
    cores = machine_cores()

    cals: dict[tuple, Calibration] = {}
    cal_tables: list[pd.DataFrame] = []

    def run(bed, labels, n, topo, bw, algorithm, setup, cal=None):
        points = {lb: point_for(settings, lb, n, topo, bw, cal, setup, costs=alone_cost) for lb in labels}
        graphs = [{"label": lb, "graph": graph_to_json(engine_inputs(p).graph)} for lb, p in points.items()]
        t0 = time.monotonic()

        def kept_stolen(res, job_share):  # a job counts as stolen as the samples its medians keep
            return max(max(measured_row(res, lb)["stolen"], kept_share_of_rounds(res, lb)) for lb in labels)

        busy = wait_idle(log, f"the points of {topo or 'none'} N={n} {bw:g} Mbps")
        res, stolen = least_stolen(
            lambda: run_job(bed, {**job, "points": graphs, "algorithm": algorithm}, timeout_s=900),
            log,
            f"{topo or 'none'} N={n} {bw:g} Mbps",
            share_of=kept_stolen,
        )
        if trace_dir is not None:
            write_trace(Path(trace_dir), f"{topo or 'none'}-N{n}-{bw:g}Mbps", res)
        parts = []
        for lb, p in points.items():
            key = point_key(topo, n, bw, lb)
            windows = point_rounds(res, lb)
            costs = one_core_op_seconds(windows, core_shares(p.devices, cores))
            retimed, timed = point_costs(alone, lb, p.devices, costs, key)
            profiles.append(timed.assign(topology=topo or "none", hosts=p.devices, bandwidth_mbps=bw, label=lb))
            rows.append(
                {
                    "topology": topo or "none",
                    "hosts": p.devices,
                    "bandwidth_mbps": bw if topo else float("nan"),
                    "strategy": lb,
                    "protocol": PROTOCOL,
                    **measured_row(res, lb),
                    "job_stolen": stolen,
                    "busy_before": busy,
                    "_alone": alone_cost,
                    "_point": replace(p, profile_path=key, costs=retimed, speed_jitter=round_spread(windows)),
                }
            )
            parts.append(f"{lb} {rows[-1]['measured_s'] * 1e3:.0f}")
        log(
            f"  measured {topo or 'none':6s} N={n} {bw:g} Mbps ({time.monotonic() - t0:.0f} s): "
            + ", ".join(parts)
            + " ms"
        )

    if singles:
        with testbed(1, settings.topologies[0], settings.bandwidths[0]) as bed:  # type: ignore[arg-type]
            run(bed, singles, 1, None, float("nan"), "direct", host_setup(1))
    for topo in settings.topologies if multi else []:
        algorithm = DEFAULTS[SIM_KIND[topo]]["default_algorithm"]  # what "auto" means in the simulator
        for n in settings.hosts:
            with testbed(n, topo, settings.bandwidths[0]) as bed:  # type: ignore[arg-type]
                setup = None
                for bw in settings.bandwidths:
                    bed.set_bandwidth(bw)
                    wait_idle(log, f"calibrating {topo} N={n} {bw:g} Mbps")
                    cal, table = calibrate(bed, repeats=settings.calibration_repeats, log=log)
                    cals[(topo, n, bw)] = cal
                    cal_tables.append(table)
                    if setup is None:  # once per testbed, on the network just calibrated
                        base = host_setup(n)
                        setup = {**base, "message_cpu_s": message_cpu(bed, n, topo, cal, base, log)}
                    run(bed, multi, n, topo, bw, algorithm, setup, cal)
    cal_table = pd.concat(cal_tables, ignore_index=True) if cal_tables else pd.DataFrame()
    return pd.DataFrame(rows), pd.concat(profiles, ignore_index=True), cals, cal_table


def write_trace(folder: Path, name: str, res: list[dict]) -> None:
    """One job's raw worker records as JSON (diagnostics: `astrasim validate --trace FOLDER`)."""
    from astrasim.fileio import write_text_atomic

    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / f"{name}.json", json.dumps(res))


def point_rounds(res: list[dict], label: str) -> list[dict]:
    """Per rank, the co-run rounds a point's costs and jitter come from (`cost_rounds`), without
    those the hypervisor visibly took from (`corun.drop_stolen_rounds`)."""
    from astrasim.validation.corun import drop_stolen_rounds

    return drop_stolen_rounds(cost_rounds([r["result"][label] for r in res]))


def kept_share_of_rounds(res: list[dict], label: str) -> float:
    """Mean share stolen over the co-run rounds of a point that `drop_stolen_rounds` keeps."""
    if not all("kernels" in r["result"][label] for r in res):
        return 0.0
    kept = point_rounds(res, label)
    shares = [s for r in kept for s in r.get("stolen", [])]
    return statistics.mean(shares) if shares else 0.0


def message_cpu(bed, n: int, topology: str, cal: Calibration, setup: dict, log=print) -> float:
    """The testbed's CPU cost per message (`interference.py`), fitted with the simulator on its
    calibrated network and its hosts; re-taken like a point's job when the hypervisor steals."""
    from astrasim.engine.cores import Placement
    from astrasim.validation.interference import fit_message_cpu, kept_pairs

    wait_idle(log, f"the message CPU microbenchmark {topology} N={n}")

    res, _ = least_stolen(
        lambda: run_job(bed, {"mode": "interference", "pin": True}, timeout_s=300),
        log,
        f"message CPU microbenchmark {topology} N={n}",
        share_of=lambda res, job_share: kept_pairs([r["result"] for r in res])[1],
    )
    net = calibrated_network(topology, bed.bandwidth_mbps, cal).build(n)
    cost = fit_message_cpu(
        [r["result"] for r in res],
        net,
        Placement.of(n, setup["hosts"], setup["cores_per_host"]),
        core_shares(n, machine_cores()),
    )
    log(f"  message CPU cost {topology} N={n}: {cost * 1e6:.0f} us per message sent or received")
    return cost
