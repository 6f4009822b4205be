"""How well the calibrated device model predicts measured op times: every row of this VM's shipped
profiles (profiles/cpu*.csv, fp32, 2 threads) against the `cpu` catalog entry's sustained figures
(written by `astrasim calibrate-device cpu`) through the same analytic costs and roofline the
simulator uses for hardware it has no profile of (astrasim.compute.calibrated).

    PYTHONPATH=. python bench/calibrated_ops.py [--device cpu] [--catalog profiles/devices.yaml]

Prints, per op kind, the rows, median and max |error| (prediction / measured - 1), then all rows.
The profiles were measured before the catalog entry: nothing here is fitted to them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from astrasim.compute.calibrated import DeviceModel  # noqa: E402
from astrasim.compute.catalog import load_catalog  # noqa: E402
from astrasim.compute.formats import FORMATS  # noqa: E402
from astrasim.compute.profiles import profile_files, read_profile_table  # noqa: E402
from astrasim.models import get_model  # noqa: E402
from astrasim.strategies import get, registry  # noqa: E402


def op_cost(row):
    """The analytic cost of a profile row's op (None when the strategy has no analytic cost for it)."""
    s = get(row["strategy"])
    spec = get_model(row["model"])
    base = dict(s.profile_key(s.profile_knobs(row)))
    candidates = [s.knobs(**base)]
    for name, f in s.Knobs.model_fields.items():  # knob values that rename ops (bp-ag's decoupled_mlp)
        args = getattr(f.annotation, "__args__", ())
        candidates += [s.knobs(**base, **{name: v}) for v in args if isinstance(v, str)]
    n, t, op = int(row["devices"]), int(row["tokens"]), row["op"]
    for knobs in candidates:
        costs = s.decode_op_costs(spec, n, t, knobs) if op in s.decode_ops else s.op_costs(spec, n, t, knobs)
        if op in costs:
            return costs[op]
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--catalog", default=None)
    ap.add_argument("--profile", default="profiles/cpu.csv")
    args = ap.parse_args()
    model = DeviceModel.of(load_catalog(args.catalog)[args.device])
    knobs = registry.PROFILED_KNOBS
    table = pd.concat([read_profile_table(f, knobs=knobs) for f in profile_files(args.profile)], ignore_index=True)
    table = table.drop_duplicates(subset=["model", "strategy", "devices", *knobs, "op", "tokens"], keep="last")
    rows, skipped = [], 0
    for row in table.to_dict("records"):
        cost = op_cost(row)
        if cost is None:
            skipped += 1
            continue
        pred = model.seconds(cost, FORMATS["fp32"])
        rows.append(
            {
                **{k: row[k] for k in ("model", "strategy", "devices", *knobs, "tokens", "op")},
                "measured_s": row["median_s"],
                "predicted_s": pred,
                "error": pred / row["median_s"] - 1,
            }
        )
    df = pd.DataFrame(rows)
    print(
        f"calibrated model of '{args.device}' vs {len(df)} measured op times ({args.profile} and its extensions; "
        f"{skipped} rows without an analytic cost left out)"
    )
    print(f"{'op':28s} {'rows':>5s} {'median |err|':>13s} {'max |err|':>10s} {'median err':>11s}")
    for op, g in sorted(df.groupby("op"), key=lambda kv: -len(kv[1])):
        e = g["error"].abs()
        print(
            f"{op:28s} {len(g):5d} {100 * e.median():12.1f}% {100 * e.max():9.1f}% "
            f"{100 * statistics.median(g['error']):10.1f}%"
        )
    e = df["error"].abs()
    print(
        f"{'all':28s} {len(df):5d} {100 * e.median():12.1f}% {100 * e.max():9.1f}% "
        f"{100 * statistics.median(df['error']):10.1f}%"
    )


if __name__ == "__main__":
    main()
