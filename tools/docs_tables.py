"""The generated parts of the docs: every table of docs/results.md between `<!-- generated: NAME -->`
and `<!-- end generated -->`, and the README's picture (docs/img/wifi_speedup.png, the main job's
plot), written by this script from the shipped scenarios, profiles, catalog and campaign files, so
no figure there is typed by hand. tests/test_docs.py runs `--check` and draws the picture once.

    python tools/docs_tables.py            # rewrite the generated tables and the picture
    python tools/docs_tables.py --check    # exit 1 naming the tables that are out of date
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DOC = ROOT / "docs" / "results.md"
PICTURE = ROOT / "docs" / "img" / "wifi_speedup.png"
REGION = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def paper() -> str:
    """astrasim on scenarios/paper.yaml next to the paper's claims (astrasim.analysis.paper)."""
    from astrasim.analysis.paper import compare_with_paper, to_markdown
    from astrasim.sweep import run_sweep

    df = run_sweep(ROOT / "scenarios" / "paper.yaml", out=None, progress=False)
    return to_markdown(compare_with_paper(df)) + "\n"


def validation() -> str:
    """The published real-network campaign (validation/summary.csv): both errors per strategy."""
    import pandas as pd

    s = pd.read_csv(ROOT / "validation" / "summary.csv")
    s = s[s["group"].isin(["strategy", "all"])]

    def pct(x: float) -> str:
        return f"{100 * x:.1f} %"

    rows = [
        [
            str(r.value),
            str(int(r.points)),
            f"{pct(r.median_abs_error_profiles)} / {pct(r.max_abs_error_profiles)}",
            f"{pct(r.median_abs_error_in_situ)} / {pct(r.max_abs_error_in_situ)}",
        ]
        for r in s.itertuples()
    ]
    protocol = int(s["protocol"].iloc[0])
    return f"Protocol {protocol}; median / max |error|.\n\n" + _table(
        [
            "strategy",
            "points",
            "from profiles (what a user gets)",
            "in-situ (kernel costs from co-run rounds around the passes)",
        ],
        rows,
    )


def published() -> str:
    """validation/published/measurements.csv re-predicted with the shipped catalog (astrasim published)."""
    from astrasim.published import load_table, predict_all, summarize

    predictions = predict_all(load_table())
    rows = []
    for g in summarize(predictions).values():
        target = f"median <= {g.target.median:.0%}" + (f", every row <= {g.target.max:.0%}" if g.target.max else "")
        rows.append(
            [
                f"{g.group}-device",
                str(g.n),
                f"{g.median:.1%}" if g.median is not None else "-",
                f"{g.max:.1%}" if g.max is not None else "-",
                target,
                "met" if g.met else "missed",
            ]
        )
    return _table(["rows", "predicted", "median abs error", "max abs error", "target", "verdict"], rows)


def zoo() -> str:
    """`astrasim models`: parameters and weight bytes per format of every named model."""
    from astrasim.models.catalog import LISTED_FORMATS, model_rows

    rows = [
        [
            r["name"],
            f"{r['params'] / 1e9:.3f} B" + (f" ({r['active_params'] / 1e9:.2f} B active)" if r["experts"] else ""),
            str(r["layers"]),
            str(r["hidden"]),
            str(r["kv_heads"]),
            str(r["context"]),
            *(f"{r[f + '_gb']:.2f}" for f in LISTED_FORMATS),
        ]
        for r in model_rows()
    ]
    return _table(
        ["model", "parameters", "layers", "hidden", "KV heads", "context", *(f"{f} GB" for f in LISTED_FORMATS)], rows
    )


GENERATORS: dict[str, Callable[[], str]] = {
    "paper": paper,
    "validation": validation,
    "published": published,
    "zoo": zoo,
}


def draw_picture(dest: Path = PICTURE) -> Path:
    """The README's picture: the main job's speedup plot (`astrasim sweep scenarios/wifi.yaml`)."""
    from astrasim.analysis.plots import plot_speedup
    from astrasim.sweep import run_sweep

    df = run_sweep(ROOT / "scenarios" / "wifi.yaml", out=None, progress=False)
    dest.parent.mkdir(parents=True, exist_ok=True)
    plot_speedup(df, str(dest))
    return dest


def render(text: str) -> str:
    """`text` with every generated region rewritten (an unknown region name is an error)."""

    def body(m: re.Match) -> str:
        name = m.group("name")
        if name not in GENERATORS:
            raise SystemExit(f"error: {DOC}: unknown generated table '{name}'; use one of {', '.join(GENERATORS)}")
        return m.group(1) + GENERATORS[name]() + m.group(4)

    return REGION.sub(body, text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="report out-of-date tables, write nothing")
    args = ap.parse_args(argv)
    text = DOC.read_text()
    new = render(text)
    if args.check:
        stale = [
            m.group("name")
            for m, n in zip(REGION.finditer(text), REGION.finditer(new))
            if m.group("body") != n.group("body")
        ]
        if stale:
            print(f"out of date in {DOC.relative_to(ROOT)}: {', '.join(stale)} (run python tools/docs_tables.py)")
            return 1
        return 0
    if new != text:
        tmp = DOC.with_suffix(".md.tmp")
        tmp.write_text(new)
        tmp.replace(DOC)
    draw_picture()
    return 0


if __name__ == "__main__":
    sys.exit(main())
