"""Predicting measured validation points with the simulator: from profiles (what a user with the
shipped profiler gets) and in-situ (the costs of the point's own co-run rounds)."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd

from astrasim.validation.points import PROFILE_KEY


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
            preds.update(
                {
                    f"predicted_{kind}_s": res.latency_s,
                    f"error_{kind}": err,
                    f"abs_error_{kind}": abs(err),
                    f"predicted_compute_{kind}_s": max(res.compute_s),
                }
            )
        inputs = engine_inputs(point)
        in_pass = json.loads(row["in_pass_ops"])
        g2 = replace(
            inputs.graph,
            ops=[
                replace(op, seconds=in_pass.get(op.name, op.seconds))
                if hasattr(op, "seconds") and op.seconds > 0
                else op
                for op in inputs.graph.ops
            ],
        )
        # (op times measured in the passes include the real core sharing and messages: neither here)
        pred2 = simulate(g2, inputs.topology, speeds=inputs.speeds, op_overhead_s=inputs.op_overhead_s).latency_s
        net = point.network
        out.append(
            {
                **row,
                **preds,
                "predicted_in_pass_s": pred2,
                "error_in_pass": pred2 / row["measured_s"] - 1.0,
                "comm_bits": res.comm_bits,
                "n_messages": res.n_messages,
                "alpha_s": net.latency_s or 0.0,
                "efficiency": net.efficiency or 1.0,
                "hosts_on_machine": point.hosts,
                "cores": point.cores_per_host,
                "op_overhead_s": point.op_overhead_s,
                "message_cpu_s": point.message_cpu_s,
                "speed_jitter": point.speed_jitter,
            }
        )
    return pd.DataFrame(out)
