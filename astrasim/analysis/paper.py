"""astrasim's numbers on the paper's setting next to the paper's headline claims.

    python -m astrasim.analysis.paper                       # runs scenarios/paper.yaml if needed
    python -m astrasim.analysis.paper --results results/paper.csv --markdown

The paper (ASTRA, arXiv 2505.19342) claims, for its setting (4 devices, 1024 tokens, 10 to 500
Mbps, latency computed as data size / bandwidth):

* ASTRA is up to 2.64x faster than one device;
* up to 15.25x faster than BP+AG with Nb = 1;
* the baselines spend 58.6 to 93.5 % of their latency communicating (10 to 100 Mbps);
* large factors over SP at 20 Mbps, and ASTRA still speeds inference up at 10 Mbps.

`compare_with_paper(df)` computes the same quantities from sweep rows (scenarios/paper.yaml:
ideal links, fp32 messages) and returns one row per claim with where the maximum is reached.
Why the numbers differ is discussed in docs/strategies.md (compute profile, network model).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from astrasim.errors import UserError
from astrasim.strategies import STRATEGIES, label_of
from astrasim.sweep import run_sweep

BASELINES = tuple(name for name, s in STRATEGIES.items() if s.paper_role == "baseline")
METHOD = next(name for name, s in STRATEGIES.items() if s.paper_role == "method")


def _where(row: pd.Series) -> str:
    return f"{label_of(row)}, {row['bandwidth_mbps']:g} Mbps"


def _default_variant(rows: pd.DataFrame, strategy: str) -> pd.DataFrame:
    """`rows` restricted to the strategy's default value of every knob the claim does not name
    (BP+AG's decoupled layer shape: the paper's BP is DeTransformer's)."""
    for knob, value in STRATEGIES[strategy].knob_defaults().items():
        if knob != "nb" and knob in rows.columns:
            rows = rows[rows[knob].astype(str) == str(value)]
    return rows


def compare_with_paper(df: pd.DataFrame) -> pd.DataFrame:
    """One row per claim and hardware: claim, paper, hardware, astrasim, where (the setting of
    astrasim's figure)."""
    rows = []
    for hw, sub in df.groupby("hardware", sort=False):
        rows += [(claim, paper, hw, ours, where) for claim, paper, ours, where in _claims(sub)]
    return pd.DataFrame(rows, columns=["claim", "paper", "hardware", "astrasim", "where"])


def _claims(df: pd.DataFrame) -> list[tuple[str, str, str, str]]:
    astra = df[df["strategy"] == METHOD]
    base = df[df["strategy"].isin(BASELINES)]
    rows = []
    if astra.empty:
        return rows
    best = astra.loc[astra["speedup_vs_single"].idxmax()]
    rows.append(("ASTRA speedup over one device (max)", "2.64x", f"{best['speedup_vs_single']:.2f}x", _where(best)))

    bp = _default_variant(df[(df["strategy"] == "bp-ag") & (df["nb"] == 1)], "bp-ag")
    bp = bp.set_index("bandwidth_mbps")["latency_s"]
    fastest = {bw: g.loc[g["latency_s"].idxmin()] for bw, g in astra.groupby("bandwidth_mbps")}
    ratios = {bw: bp[bw] / a["latency_s"] for bw, a in fastest.items() if bw in bp.index}
    if ratios:
        bw = max(ratios, key=ratios.get)
        rows.append(("ASTRA speedup over BP+AG Nb=1 (max)", "15.25x", f"{ratios[bw]:.2f}x", _where(fastest[bw])))

    slow = base[base["bandwidth_mbps"] <= 100]
    if not slow.empty:
        lo, hi = slow.loc[slow["comm_fraction"].idxmin()], slow.loc[slow["comm_fraction"].idxmax()]
        rows.append(
            (
                "baselines' share of latency communicating, 10-100 Mbps",
                "58.6-93.5 %",
                f"{100 * lo['comm_fraction']:.1f}-{100 * hi['comm_fraction']:.1f} %",
                f"min {_where(lo)}; max {_where(hi)}",
            )
        )

    sp20 = df[(df["strategy"] == "sp") & (df["bandwidth_mbps"] == 20)]
    if not sp20.empty and 20 in fastest:
        r = sp20["latency_s"].iloc[0] / fastest[20]["latency_s"]
        rows.append(("ASTRA speedup over SP at 20 Mbps", "large", f"{r:.2f}x", _where(fastest[20])))

    low = astra[astra["bandwidth_mbps"] == astra["bandwidth_mbps"].min()]
    b = low.loc[low["speedup_vs_single"].idxmax()]
    rows.append(
        (
            f"ASTRA speedup over one device at {b['bandwidth_mbps']:g} Mbps",
            "> 1 (still useful)",
            f"{b['speedup_vs_single']:.2f}x",
            _where(b),
        )
    )
    return rows


def to_markdown(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


NEEDED_COLUMNS = ("hardware", "strategy", "nb", "bandwidth_mbps", "latency_s", "speedup_vs_single", "comm_fraction")


def _results(args) -> pd.DataFrame:
    """The sweep rows to compare: --results if it exists (checked to be an astrasim results file),
    else a sweep of --scenario. UserError on a missing or foreign file."""
    if args.results and Path(args.results).exists():
        path = Path(args.results)
        try:
            df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable file: one line
            raise UserError(
                f"cannot read '{path}' ({type(exc).__name__}); give a results file of `astrasim sweep`",
                field="--results",
            ) from None
        missing = [c for c in NEEDED_COLUMNS if c not in df.columns]
        if missing:
            raise UserError(
                f"'{path}' is not an astrasim results file (no column(s) {', '.join(missing)}); give "
                "the output of `astrasim sweep scenarios/paper.yaml`",
                field="--results",
            )
        return df
    if not Path(args.scenario).is_file():
        raise UserError(
            f"scenario '{args.scenario}' not found; give an existing scenario YAML such as scenarios/paper.yaml",
            field="--scenario",
        )
    out = args.results or f"results/{Path(args.scenario).stem}.csv"
    return run_sweep(args.scenario, out=out, progress=False)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Compare astrasim with the ASTRA paper's claims.")
    ap.add_argument("--scenario", default="scenarios/paper.yaml", help="scenario to sweep when results are missing")
    ap.add_argument(
        "--results",
        default=None,
        help="existing sweep results (default: results/<scenario>.csv, swept first if absent)",
    )
    ap.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = ap.parse_args(argv)
    try:
        table = compare_with_paper(_results(args))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.markdown:
        print(to_markdown(table))
    else:
        from rich.console import Console
        from rich.table import Table

        t = Table(title="astrasim on the paper's setting vs the paper's claims")
        for c in table.columns:
            t.add_column(c)
        for row in table.itertuples(index=False):
            t.add_row(*map(str, row))
        Console().print(t)


if __name__ == "__main__":
    main()
