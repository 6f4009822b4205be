"""Derive profile rows for a model that was not measured from a measured model of the same family
of ops: the target's analytic roofline time (astrasim.strategies.synthetic at the catalog device's
peak FLOP/s and memory bandwidth) times the measured / roofline ratio of the same (strategy,
devices, G, K, op) on the reference model (prefill rows: any measured token count; decode rows:
the same cache length). So the measured efficiency of every op carries over, as roofline scaling
to other hardware does (docs/strategies.md).

Why: a model too large to time on the machine at hand (llama3-8b's layer is ~0.9 GB and ~0.45
TFLOP at 1024 tokens) still gets rows of the measured machine's character. The rows are marked as
derived in their `hardware` column. The shipped profiles/cpu.llama3-8b.csv is measured, not
derived (docs/kernels.md); compare with it, do not overwrite it:

    python tools/derive_profile_rows.py --target llama3-8b --reference gpt2-m --tokens 1024 \
        --out /tmp/llama3-8b.derived.csv
"""

from __future__ import annotations

import argparse
import math

import pandas as pd

from astrasim.compute.catalog import load_catalog
from astrasim.compute.profiles import ProfileCosts, profile_columns, profile_files, read_profile_table
from astrasim.models import get_model
from astrasim.strategies.registry import PROFILED_KNOBS
from astrasim.strategies.synthetic import synthetic_profile

KEY = ["strategy", "devices", *PROFILED_KNOBS, "op"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="llama3-8b")
    ap.add_argument("--reference", default="gpt2-m")
    ap.add_argument("--profile", default="profiles/cpu.csv", help="measured profile (with its extension files)")
    ap.add_argument("--device", default="cpu", help="catalog entry of the measured hardware")
    ap.add_argument("--tokens", default="512")
    ap.add_argument("--devices", default="2,4,8")
    ap.add_argument("--cache", default="1,512,1024", help="decode cache lengths")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    dev = load_catalog()[a.device]
    measured = pd.concat(
        [read_profile_table(f, knobs=PROFILED_KNOBS) for f in profile_files(a.profile)], ignore_index=True
    )
    measured = measured[measured.model == a.reference].drop_duplicates(KEY + ["tokens"], keep="last")
    ref, target = get_model(a.reference), get_model(a.target)
    cache = [int(c) for c in a.cache.split(",")]
    kw = dict(
        devices=tuple(int(n) for n in a.devices.split(",")),
        peak_flops=dev.peak_flops,
        mem_bandwidth_gbs=dev.mem_bandwidth_gbs,
        overhead_s=0.0,
        decode_cache=cache,
    )
    prefill_tokens = sorted({int(t) for t, op in zip(measured.tokens, measured.op) if not op.endswith("_decode")})
    roof_ref = synthetic_profile([ref], tokens=prefill_tokens, **kw)  # with decode rows at `cache`
    decode_ops = {"attn_decode", "mlp_decode", "decoupled_decode"}
    ratio: dict[tuple, float] = {}
    for rec in measured.merge(
        roof_ref[KEY + ["tokens", "median_s"]], on=KEY + ["tokens"], suffixes=("", "_roof")
    ).to_dict("records"):
        if rec["median_s_roof"] > 0:
            k = tuple(rec[c] for c in KEY) + ((rec["tokens"],) if rec["op"] in decode_ops else ())
            ratio.setdefault(k, rec["median_s"] / rec["median_s_roof"])
    rows = synthetic_profile([target], tokens=[int(t) for t in a.tokens.split(",")], **kw)
    out = []
    for rec in rows.to_dict("records"):
        k = tuple(rec[c] for c in KEY) + ((rec["tokens"],) if rec["op"] in decode_ops else ())
        f = ratio.get(k)
        if f is None or not math.isfinite(f):
            continue  # nothing measured to carry over: leave the key missing (a UserError names it)
        rec.update(
            median_s=rec["median_s"] * f,
            p10_s=rec["p10_s"] * f,
            p90_s=rec["p90_s"] * f,
            repeats=0,
            hardware=f"derived: {a.target} roofline x measured/roofline of {a.reference} on {a.device}",
            threads=0,
            torch_version="derived",
        )
        out.append(rec)
    df = pd.DataFrame(out, columns=list(profile_columns(PROFILED_KNOBS)))
    df.to_csv(a.out, index=False)
    ProfileCosts(df)  # readable as a profile
    print(f"wrote {len(df)} rows to {a.out} ({len(rows) - len(df)} keys without a measured reference)")


if __name__ == "__main__":
    main()
