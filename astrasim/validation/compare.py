"""The validation campaign: measure real multi-process inference over shaped links, predict the
same points with the simulator, and compare.

Steps (`run_validation`):

1. microbenchmarks, before any point: every strategy's kernels timed alone by the shipped
   profiler (`astrasim.profiling.profile_ops`, one thread, one process) and the harness's per-op
   dispatch cost (`dispatch.py`); on each testbed, before its points, the CPU cost of a message
   (`interference.py`) and, at each bandwidth, the network's alpha and efficiency from a
   point-to-point exchange (`calibrate.py`);
2. build every point as the simulator does (`point_for` -> `astrasim.pointrun.engine_inputs`);
3. measure: for each topology and N, build N shaped hosts (`netns.py`), each a worker process
   pinned to a CPU (`worker.pin`), and at each bandwidth run the point's own OpGraph on every host
   (`worker.py`, `programs.py`: real kernels, the engine's collective plans); latency = the
   median over repeats of (last rank's end - common start), and its spread over repeats as the
   point's noise figure. Around the point's passes its workers also run co-run rounds
   (`corun.py`: every rank's kernels at once, no communication, one right before each pass);
4. predict each point twice (`predict`): **from profiles** (`from_profiles`: the kernels timed
   alone, the testbed's microbenchmarks, nothing measured during the point's passes: what a user
   with the shipped profiler gets) and **in-situ** (the kernel costs and speed jitter of the
   point's own co-run rounds: the engine and network model given the kernels' times as they ran);
5. write results.csv, summary.csv / summary.md, calibration.csv, profile.csv and the plot
   (`report.py`), each with the protocol number (`protocol.py`).

error = predicted / measured - 1 (positive: the simulator is slower than reality).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd

from astrasim.fileio import write_csv_atomic, write_text_atomic
from astrasim.models import ModelSpec
from astrasim.validation.calibrate import SIM_KIND, Calibration, calibrate
from astrasim.validation.dispatch import dispatch_overhead_s
from astrasim.validation.launch import run_job
from astrasim.validation.netns import TOPOLOGIES, machine_lock, testbed
from astrasim.validation.graphs import VALIDATION_MODEL, graph_to_json
from astrasim.validation.protocol import PROTOCOL, SETTINGS_KEYS, Settings
from astrasim.validation.report import TARGET_MAX, TARGET_MEDIAN, plot, summarize, summary_markdown, verdict
from astrasim.validation.idle import IDLE_MAX, IDLE_START_S, measure_others, wait_idle
from astrasim.validation.steal import RETAKES, clean, least_stolen

__all__ = ["Settings", "load_settings", "run_validation", "summarize", "verdict", "plot", "summary_markdown",
           "TARGET_MEDIAN", "TARGET_MAX"]


def load_settings(path: str | Path | None = None, **overrides) -> Settings:
    """Settings from an optional YAML file (under `validate:`; keys: SETTINGS_KEYS, `model` a
    mapping of ModelSpec fields), then the non-None keyword overrides (the CLI options); anything
    not given is the frozen protocol's default (`protocol.Settings`)."""
    from pydantic import ValidationError

    from astrasim.errors import UserError

    data: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"file '{p}' not found; give a validation YAML such as validation/validate.yaml",
                            field="scenario")
        from astrasim.fileio import read_yaml_file

        data = read_yaml_file(p, "scenario") or {}
        if not isinstance(data, dict):
            raise UserError("a validation scenario must be a mapping", field="scenario")
        data = data.get("validate", data)
        if not isinstance(data, dict):
            raise UserError("'validate' must be a mapping of settings", field="scenario")
        unknown = set(data) - set(SETTINGS_KEYS)
        if unknown:
            raise UserError(f"unknown key(s) {sorted(unknown)}; allowed: {', '.join(SETTINGS_KEYS)}", field="scenario")
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "scenario"
        raise UserError(f"{err['msg']} (got {err.get('input')!r})", field=where) from None
    settings.check()
    return settings


# ------------------------------------------------------------------------- points, as simulated
PROFILE_KEY = "validation-microbenchmark-profile"


def point_for(settings: Settings, label: str, n: int, topology: str | None, bandwidth_mbps: float,
              cal: Calibration | None, host_setup: dict | None = None, profile_key: str = PROFILE_KEY,
              costs=None):
    """The scenario Point of one validation point (costs: `costs`, the microbenchmark profile
    named `profile_key`; network: the testbed's simulator kind with the calibrated alpha and
    efficiency; `host_setup`: the testbed machine's hosts and cores, see `machine_hosts`)."""
    from astrasim.scenario.grid import NetworkPoint, Point
    from astrasim.strategies import parse_label

    strategy, knobs = parse_label(label)
    net = NetworkPoint("ideal", 1.0) if topology is None else calibrated_network(topology, bandwidth_mbps, cal)
    return Point(scenario="validate", model=settings.model, tokens=settings.model.tokens, strategy=strategy.name,
                 knobs=knobs, devices=1 if strategy.single_device else n, hardware="validation host",
                 profile_path=profile_key, device=None, speed=1.0, speeds=None, network=net, costs=costs,
                 **(host_setup or {}))


def calibrated_network(topology: str, bandwidth_mbps: float, cal: Calibration):
    """The simulator's network of a testbed: its topology's kind with the calibrated alpha and
    efficiency (a NetworkPoint; `.build(n)` gives the topology)."""
    from astrasim.scenario.grid import NetworkPoint

    return NetworkPoint(SIM_KIND[topology], float(bandwidth_mbps), latency_s=cal.alpha_s, efficiency=cal.efficiency)


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
                rows, share = measure_others(lambda name=name, n=n, pkey=pkey: profile_ops(
                    settings.model, [name], [n], None, settings.model.tokens, threads=1,
                    knobs={k: [v] for k, v in pkey}, repeats=settings.profile_repeats, warmup=2,
                    progress=False))
                if share < best_share:
                    best, best_share = rows, share
                if share <= IDLE_MAX:
                    break
                log(f"  profiling {name} N={n}: other processes used {share:.0%} of the CPUs"
                    + (", taking it again" if attempt < RETAKES else "; keeping the least disturbed try"))
            tables.append(best.assign(others_share=best_share))
    table = pd.concat(tables, ignore_index=True)
    table["alone_s"] = table["median_s"]
    log(f"  profiled {len(seen)} (strategy, N) configurations alone: {len(table)} op rows; other processes "
        f"used at most {table['others_share'].max():.0%} of the CPUs meanwhile")
    return table


def point_key(topology: str | None, n: int, bandwidth_mbps: float, label: str) -> str:
    """The profile key of one point's costs (its own co-run windows)."""
    return f"{PROFILE_KEY}:{topology or 'none'}:{n}:{bandwidth_mbps:g}:{label}"


def alone_costs(alone: pd.DataFrame, source: str = "validation microbenchmark profile"):
    """The alone profile as per-op costs (what every point is built from before its own windows)."""
    from astrasim.compute.profiles import ProfileCosts

    return ProfileCosts(alone, source=source)


def point_costs(alone: pd.DataFrame, label: str, n: int, costs: dict[str, float], key: str):
    """(the alone profile with `label`'s N-device rows re-timed by its co-run windows, as per-op costs
    named `key`; the re-timed rows)."""
    from astrasim.compute.profiles import ProfileCosts
    from astrasim.strategies import parse_label

    strategy, knobs = parse_label(label)
    name, n_dev = strategy.profile_rows(n)  # pp's stages run the single device's ops
    table = alone.copy()
    rows = (table["strategy"] == name) & (table["devices"] == n_dev)
    for k, v in strategy.profile_key(knobs):
        rows &= table[k] == v
    if not rows.any():
        raise RuntimeError(f"no profile rows of {label} at N={n} to re-time: the alone profile lacks {name}, N={n_dev}")
    table.loc[rows, "median_s"] = [costs.get(op, s) for op, s in zip(table.loc[rows, "op"], table.loc[rows, "median_s"])]
    return ProfileCosts(table, source=f"validation co-run windows ({key})"), table[rows]


def core_shares(n: int, cores: int) -> list[float]:
    """Each pinned rank's share of its CPU when every rank computes (rank r on CPU r x cores // n)."""
    on = [r * cores // n for r in range(n)]
    return [min(1.0, 1.0 / on.count(c)) for c in on]


def machine_cores() -> int:
    """The CPUs the workers may run on (they are pinned among these: worker.pin)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def machine_hosts(op_overhead_s: float, cores: int | None = None):
    """n -> the Point fields of the testbed: its N hosts are processes pinned to this machine's
    cores (rank r on CPU r x cores // N, worker.pin), so the simulated devices sit in even groups on
    one-core hosts (hosts = min(N, cores), cores_per_host = 1; devices d x hosts // N), and every
    op pays the measured dispatch cost."""
    cores = cores or machine_cores()
    return lambda n: {"hosts": min(n, cores), "cores_per_host": 1, "op_overhead_s": op_overhead_s}


# --------------------------------------------------------------------------------- measuring
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
    return {"measured_s": med, "measured_min_s": lat[0], "measured_max_s": lat[-1],
            "noise": (q[8] - q[0]) / (2 * med) if med > 0 else 0.0, "measured_compute_s": compute,
            "in_pass_ops": json.dumps({op: sum(v) / len(v) for op, v in ops.items()}, sort_keys=True),
            "repeats": len(lat), "passes_dropped": len(every[0]) - len(lat),
            "stolen": statistics.mean(_pass_shares(recs)), "late_start_s": max(r[k]["late_s"] for r in recs for k in range(len(r))),
            "loadavg_1m": _loadavg()}


def measure(settings: Settings, host_setup, alone: pd.DataFrame,
            log=print, trace_dir: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict[tuple, Calibration], pd.DataFrame]:
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
    job = {"mode": "graphs", "model": asdict(settings.model), "warmup": settings.warmup,
           "repeats": settings.repeats, "budget_s": settings.budget_s, "max_repeats": settings.max_repeats,
           "seed": settings.seed, "pin": True, "kernel_rounds": ROUNDS, "trace": trace_dir is not None}
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
        res, stolen = least_stolen(lambda: run_job(bed, {**job, "points": graphs, "algorithm": algorithm},
                                                   timeout_s=900), log, f"{topo or 'none'} N={n} {bw:g} Mbps",
                                   share_of=kept_stolen)
        if trace_dir is not None:
            write_trace(Path(trace_dir), f"{topo or 'none'}-N{n}-{bw:g}Mbps", res)
        parts = []
        for lb, p in points.items():
            key = point_key(topo, n, bw, lb)
            windows = point_rounds(res, lb)
            costs = one_core_op_seconds(windows, core_shares(p.devices, cores))
            retimed, timed = point_costs(alone, lb, p.devices, costs, key)
            profiles.append(timed.assign(topology=topo or "none", hosts=p.devices, bandwidth_mbps=bw, label=lb))
            rows.append({"topology": topo or "none", "hosts": p.devices, "bandwidth_mbps": bw if topo else float("nan"),
                         "strategy": lb, "protocol": PROTOCOL, **measured_row(res, lb), "job_stolen": stolen,
                         "busy_before": busy, "_alone": alone_cost,
                         "_point": replace(p, profile_path=key, costs=retimed, speed_jitter=round_spread(windows))})
            parts.append(f"{lb} {rows[-1]['measured_s'] * 1e3:.0f}")
        log(f"  measured {topo or 'none':6s} N={n} {bw:g} Mbps ({time.monotonic() - t0:.0f} s): "
            + ", ".join(parts) + " ms")

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


PAIRED_MIN = 5  # co-run rounds paired with passes that suffice alone for a point's costs


def cost_rounds(per_rank: list[dict]) -> list[dict]:
    """The co-run rounds a point's costs come from, per rank (each rank's result of the point):
    the rounds run right before each pass when there are at least PAIRED_MIN of them (they saw the
    machine as the passes did: its speed drifts within seconds), otherwise those pooled with the
    windows before and after the passes."""
    from astrasim.validation.corun import pooled

    paired = [r.get("paired") for r in per_rank]
    if all(p and len(p["wall"]) >= PAIRED_MIN for p in paired):
        return paired
    return [pooled([r["kernels"], p]) if p else r["kernels"] for r, p in zip(per_rank, paired)]


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

    res, _ = least_stolen(lambda: run_job(bed, {"mode": "interference", "pin": True}, timeout_s=300), log,
                          f"message CPU microbenchmark {topology} N={n}",
                          share_of=lambda res, job_share: kept_pairs([r["result"] for r in res])[1])
    net = calibrated_network(topology, bed.bandwidth_mbps, cal).build(n)
    cost = fit_message_cpu([r["result"] for r in res], net, Placement.of(n, setup["hosts"], setup["cores_per_host"]),
                           core_shares(n, machine_cores()))
    log(f"  message CPU cost {topology} N={n}: {cost * 1e6:.0f} us per message sent or received")
    return cost


def from_profiles(point, alone):
    """The point as a user predicts it: kernel costs `alone` (`alone_costs`: the profile rows
    measured alone, the campaign's standalone kernel microbenchmark), the testbed's network
    calibration, placement, dispatch and message CPU costs (microbenchmarks taken before its
    points), and nothing measured during or around the point's passes: no co-run rounds and no
    speed jitter (a user has no per-point rounds to draw it from)."""
    return replace(point, profile_path=PROFILE_KEY, costs=alone, speed_jitter=0.0)


def predict(measured: pd.DataFrame) -> pd.DataFrame:
    """Add both predictions to every measured row (`report.PREDICTIONS`): from profiles
    (`from_profiles`) and in-situ (the row's `_point`: costs and jitter from its co-run rounds),
    and, as a diagnostic, the same graph with the op times measured inside the real passes."""
    from astrasim.engine import simulate
    from astrasim.pointrun import engine_inputs, run_point
    out = []
    for row in measured.to_dict("records"):
        point, alone = row.pop("_point"), row.pop("_alone")
        preds = {}
        for kind, p in (("profiles", from_profiles(point, alone)), ("in_situ", point)):
            res, _ = run_point(p)
            err = res.latency_s / row["measured_s"] - 1.0
            preds.update({f"predicted_{kind}_s": res.latency_s, f"error_{kind}": err, f"abs_error_{kind}": abs(err),
                          f"predicted_compute_{kind}_s": max(res.compute_s)})
        inputs = engine_inputs(point)
        in_pass = json.loads(row["in_pass_ops"])
        g2 = replace(inputs.graph, ops=[replace(op, seconds=in_pass.get(op.name, op.seconds))
                                        if hasattr(op, "seconds") and op.seconds > 0 else op
                                        for op in inputs.graph.ops])
        # (op times measured in the passes include the real core sharing and messages: neither here)
        pred2 = simulate(g2, inputs.topology, speeds=inputs.speeds, op_overhead_s=inputs.op_overhead_s).latency_s
        net = point.network
        out.append({**row, **preds, "predicted_in_pass_s": pred2, "error_in_pass": pred2 / row["measured_s"] - 1.0,
                    "comm_bits": res.comm_bits, "n_messages": res.n_messages, "alpha_s": net.latency_s or 0.0,
                    "efficiency": net.efficiency or 1.0, "hosts_on_machine": point.hosts,
                    "cores": point.cores_per_host, "op_overhead_s": point.op_overhead_s,
                    "message_cpu_s": point.message_cpu_s, "speed_jitter": point.speed_jitter})
    return pd.DataFrame(out)


def run_validation(settings: Settings, out_dir: str | Path | None = "validation", *, command: str = "",
                   log=print, trace_dir: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The whole campaign; writes the files into `out_dir` (None: write nothing), and with
    `trace_dir` every job's raw worker records there (`measure`). Returns (results, summary)."""
    settings.check()
    with machine_lock(log):
        t0 = time.monotonic()
        log("1/3 microbenchmarks: the kernels (each alone) and the harness's dispatch cost")
        wait_idle(log, "the campaign", limit_s=IDLE_START_S)
        profile = microbenchmark_profile(settings, log=log)
        overhead = dispatch_overhead_s()
        log(f"  dispatch cost per op (no-op chain walked by the harness): {overhead * 1e6:.1f} us")
        log("2/3 measuring real forward passes over shaped links (each point's own OpGraph): per testbed its "
            "message CPU cost, per bandwidth its network calibration, per point its kernels timed all ranks at "
            "once right before each pass and in windows before and after its passes")
        measured, profile, cals, cal_table = measure(settings, machine_hosts(overhead), profile, log=log,
                                                      trace_dir=trace_dir)
    log("3/3 simulating the same points")
    results = predict(measured)
    summary = summarize(results)
    elapsed = time.monotonic() - t0
    if out_dir is not None:
        write_outputs(Path(out_dir), results, summary, profile, cal_table, cals, settings.model,
                      summary_markdown(results, summary, cals, settings, command, elapsed))
    log(verdict(summary)[1] + f" ({elapsed:.0f} s)")
    return results, summary


def calibration_rows(cal_table: pd.DataFrame, cals: dict[tuple, Calibration]) -> pd.DataFrame:
    """calibration.csv: every raw transfer with its testbed's fit (only the columns when a campaign
    of single-device points calibrated nothing)."""
    fits = pd.DataFrame([c.to_dict() for c in cals.values()], columns=list(Calibration.__dataclass_fields__))
    return cal_table.merge(fits, on=["topology", "hosts", "bandwidth_mbps"]) if len(cal_table) else fits


def write_outputs(out: Path, results: pd.DataFrame, summary: pd.DataFrame, profile: pd.DataFrame,
                  cal_table: pd.DataFrame, cals: dict[tuple, Calibration], model: ModelSpec, markdown: str) -> None:
    """The campaign's files (each written whole or not at all): results, summary, profile and
    calibration CSVs, the model measured (model.json), summary.md and the plot."""
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "model.json", json.dumps(asdict(model), indent=1, sort_keys=True) + "\n")
    cal_rows = calibration_rows(cal_table, cals)
    for name, df in (("results.csv", results), ("summary.csv", summary), ("profile.csv", profile),
                     ("calibration.csv", cal_rows)):
        write_csv_atomic(out / name, df, "%.6g")
    write_text_atomic(out / "summary.md", markdown)
    plot(results, out / "predicted_vs_measured.png")


def repredict(settings: Settings, measurements: str | Path, out_dir: str | Path | None, *, command: str = "",
              log=print) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Today's simulator on an earlier campaign's measurements and microbenchmarks (`reuse.py`):
    nothing is measured or refitted. Writes the same files into `out_dir` (None: nothing)."""
    from astrasim.validation.reuse import load_measurements

    t0 = time.monotonic()
    measured, profile, cals, cal_table = load_measurements(settings, measurements)
    results = predict(measured)
    summary = summarize(results)
    if out_dir is not None:
        note = (f"Predicted again by today's simulator from the measurements and microbenchmarks stored in "
                f"`{measurements}` (nothing re-measured; the machine line is where it was re-predicted).")
        write_outputs(Path(out_dir), results, summary, profile, cal_table, cals, settings.model,
                      summary_markdown(results, summary, cals, settings, command, None, note))
    log(verdict(summary)[1] + f" (re-predicted {len(results)} stored points in {time.monotonic() - t0:.1f} s)")
    return results, summary
