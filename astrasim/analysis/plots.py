"""Plots of sweep results (matplotlib, Agg backend; PNG). Colours, markers and tick labels:
astrasim.analysis.style (one look per strategy variant in every figure).

* plot_latency_vs_bandwidth(df, path): latency (s) against bandwidth (Mbps), one line per
  strategy variant, one panel per (model setting, device count). The latency axis of a row of
  panels runs from just under the fastest point to `slower_than_single` times one device's
  latency, so the contenders are readable; the region slower than one device is shaded, and
  variants that never enter the scale are named in the panel's title. Legend outside the data.
* plot_speedup(df, path, accuracy=...): per model setting, a heat map of devices x bandwidth whose
  cells hold the best multi-device strategy's speedup over one device and its name ("single"
  when nothing beats one device), with its accuracy (or "accuracy unknown") where the accuracy
  tables know the model; one colour scale for every panel.

A "model setting" is a distinct (model, tokens, hardware, network); other scenario columns that
vary in the frame (element bits, loss, speed, ...) are added to the line labels, and the heat map
takes the best over them.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from astrasim.analysis.accuracy_data import join_accuracy, load_accuracy, select_task  # noqa: E402
from astrasim.analysis.style import Looks, number, order_key, plain_axis, seconds, variant_labels  # noqa: E402
from astrasim.compute.profiles import profiles_dirs  # noqa: E402
from astrasim.fileio import atomic_path  # noqa: E402
from astrasim.strategies import label_of  # noqa: E402
from astrasim.strategies.registry import single_device_strategy  # noqa: E402

SETTING = ["model", "tokens", "hardware", "network"]
SLOWER_THAN_SINGLE = 4.0  # top of the latency axis, in units of one device's latency
MIN_GAIN = 1.01  # the heat map names a multi-device strategy only when it is at least 1 % faster than one device
ONE_DEVICE = "one device"


def _setting_title(key: tuple) -> str:
    model, tokens, hardware, network = key
    return f"{model}, T={int(tokens)}, {hardware}, {network}"


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _is_single(df: pd.DataFrame) -> pd.Series:
    return df["strategy"] == single_device_strategy().name


def one_device_name(label: str) -> str:
    """'single' -> 'one device' in legends (other labels unchanged)."""
    name = single_device_strategy().name
    return ONE_DEVICE + label[len(name) :] if label.split(" ")[0] == name else label


def _settings(df: pd.DataFrame) -> list[tuple]:
    return list(dict.fromkeys(map(tuple, df[SETTING].itertuples(index=False))))


def _of_setting(df: pd.DataFrame, key: tuple) -> pd.DataFrame:
    mask = [tuple(r) == key for r in df[SETTING].itertuples(index=False)]
    return df[pd.Series(mask, index=df.index, dtype=bool)]


def legend_outside(fig, looks: Looks, labels, extra: Sequence[tuple] = ()) -> None:
    """The strategy legend right of the axes (every sweep and Pareto plot), plus `extra` (handle, name) pairs."""
    handles, names = looks.handles(labels, rename=one_device_name)
    handles += [h for h, _ in extra]
    names += [n for _, n in extra]
    fig.legend(
        handles,
        names,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        frameon=False,
        fontsize=8,
        title="strategy",
        title_fontsize=9,
    )


def plot_latency_vs_bandwidth(
    df: pd.DataFrame, path: str | Path, *, slower_than_single: float = SLOWER_THAN_SINGLE
) -> Path:
    """Latency against bandwidth, one line per strategy variant (see module docstring). With a
    single bandwidth in the frame, a bar chart of the latency per strategy variant instead."""
    df = df.assign(label=variant_labels(df))
    if df["bandwidth_mbps"].nunique() <= 1:
        return _latency_bars(df, path, slower_than_single)
    looks = Looks(df, df["label"])
    single_rows = _is_single(df)
    settings = _settings(df)
    ns = sorted(int(n) for n in df.loc[~single_rows, "devices"].unique()) or [1]
    fig, axes = plt.subplots(
        len(settings), len(ns), figsize=(4.3 * len(ns), 3.9 * len(settings)), squeeze=False, sharex=True
    )
    bws = sorted(df["bandwidth_mbps"].unique())
    for r, key in enumerate(settings):
        sub = _of_setting(df, key)
        single = sub[_is_single(sub)].sort_values("bandwidth_mbps")
        multi = sub[~_is_single(sub)]
        reference = float(single["latency_s"].max()) if len(single) else float(multi["latency_s"].min()) * 2
        lo = 0.8 * float(sub["latency_s"].min())
        hi = max(slower_than_single * reference, lo * 4)
        for c, n in enumerate(ns):
            ax = axes[r][c]
            ax.set_xscale("log")
            ax.set_yscale("log")
            off = []
            for lab in looks:
                line = multi[(multi["label"] == lab) & (multi["devices"] == n)].sort_values("bandwidth_mbps")
                if line.empty:
                    continue
                ax.plot(line["bandwidth_mbps"], line["latency_s"], label=lab, **looks[lab].line())
                if line["latency_s"].min() > hi:
                    off.append(lab)
            for lab in single["label"].unique():
                s = single[single["label"] == lab]
                ax.plot(s["bandwidth_mbps"], s["latency_s"], label=lab, **looks[lab].line())
                ax.fill_between(s["bandwidth_mbps"], s["latency_s"], hi, color="0.93", zorder=0, lw=0)
            ax.set_ylim(lo, hi)
            plain_axis(ax, "x", values=bws)
            plain_axis(ax, "y", seconds)
            ax.grid(True, which="major", alpha=0.35)
            title = f"{_setting_title(key)}\nN = {n} devices"
            if off:
                title += "\n" + textwrap.fill("off the scale: " + ", ".join(off), 58)
            ax.set_title(title, fontsize=8.5)
            if r == len(settings) - 1:
                ax.set_xlabel("bandwidth (Mbps)")
            if c == 0:
                ax.set_ylabel("latency per forward pass")
    legend_outside(fig, looks, df["label"].unique())
    fig.suptitle(
        textwrap.fill(
            f"Latency vs bandwidth (lower is better; grey: slower than one device; the axis "
            f"stops at {slower_than_single:g}x one device's latency)",
            int(22 * len(ns)) + 30,
        ),
        fontsize=10,
    )
    fig.tight_layout()
    return _save(fig, path)


def _latency_bars(df: pd.DataFrame, path: str | Path, slower_than_single: float) -> Path:
    looks = Looks(df, df["label"])
    settings = _settings(df)
    ns = sorted(int(n) for n in df.loc[~_is_single(df), "devices"].unique()) or [1]
    n_labels = df["label"].nunique()
    fig, axes = plt.subplots(
        len(settings), len(ns), figsize=(5.2 * len(ns), 1.2 + 0.3 * n_labels * len(settings)), squeeze=False
    )
    bw = df["bandwidth_mbps"].iloc[0]
    for r, key in enumerate(settings):
        sub = _of_setting(df, key)
        single = sub[_is_single(sub)]
        reference = float(single["latency_s"].max()) if len(single) else float(sub["latency_s"].min()) * 2
        hi = slower_than_single * reference
        lo = 0.5 * float(sub["latency_s"].min())
        for c, n in enumerate(ns):
            ax = axes[r][c]
            bars = sub[(sub["devices"] == n) | _is_single(sub)]
            bars = bars.loc[sorted(bars.index, key=lambda i: (order_key(bars.loc[i]), bars.loc[i, "label"]))]
            for y, (_, b) in enumerate(bars.iterrows()):
                ax.barh(y, min(b["latency_s"], hi) - lo, left=lo, **looks[b["label"]].bar())
                ax.text(
                    min(b["latency_s"], hi),
                    y,
                    " " + seconds(b["latency_s"]) + (" (off the scale)" if b["latency_s"] > hi else ""),
                    va="center",
                    fontsize=7,
                )
            if len(single):
                ax.axvline(reference, color="black", ls="--", lw=1, label=ONE_DEVICE)
            ax.set_yticks(range(len(bars)), [one_device_name(lab) for lab in bars["label"]], fontsize=7)
            ax.invert_yaxis()  # registry order, top to bottom (the latency axis is horizontal)
            ax.set_xscale("log")
            ax.set_xlim(lo, hi * 1.6)
            plain_axis(ax, "x", seconds)
            ax.grid(True, axis="x", which="major", alpha=0.3)
            ax.set_xlabel("latency per forward pass (lower is better; dashed: one device)")
            ax.set_title(f"{_setting_title(key)}, {number(bw)} Mbps\nN = {n} devices", fontsize=9)
    fig.suptitle("Latency per strategy", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


# -- speedup heat map -------------------------------------------------------------------------


def published_accuracy() -> pd.DataFrame | None:
    """The shipped accuracy table (profiles/accuracy.csv), or None where it cannot be found."""
    for d in profiles_dirs():
        if (d / "accuracy.csv").is_file():
            return load_accuracy([d / "accuracy.csv"])
    return None


def accuracy_text(row, known_models: set[str]) -> str:
    """'top-1 81.1 %', 'perplexity 76.2', 'accuracy unknown', or '' when the tables lack the model."""
    if str(row["model"]) not in known_models:
        return ""
    v = row.get("accuracy")
    if v is None or not np.isfinite(v):
        return "accuracy unknown"
    metric = str(row.get("accuracy_metric", "accuracy"))
    return {"top1_pct": f"top-1 {v:.1f} %", "perplexity": f"perplexity {v:.1f}"}.get(metric, f"{metric} {v:.3g}")


def speedup_text(s: float) -> str:
    """'1.40x', '0.98x', '0.005x' (never 0.00x)."""
    return f"{s:.2f}x" if s >= 0.1 else f"{number(s)}x"


def _ink(rgba) -> str:
    r, g, b = rgba[:3]
    return "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.45 else "black"


def plot_speedup(df: pd.DataFrame, path: str | Path, accuracy: pd.DataFrame | None | str = "published") -> Path:
    """Heat map devices x bandwidth of the best strategy's speedup over one device, per model
    setting, all panels on one colour scale. ``accuracy``: an accuracy table (load_accuracy),
    "published" (profiles/accuracy.csv when found) or None (no accuracy line)."""

    acc = published_accuracy() if isinstance(accuracy, str) else accuracy
    known = set(select_task(acc)["model"].astype(str)) if acc is not None and not acc.empty else set()
    multi = df[~_is_single(df)]
    settings = _settings(multi) or [None]
    best = multi.loc[multi.groupby([*SETTING, "devices", "bandwidth_mbps"])["speedup_vs_single"].idxmax()]
    singles = df[_is_single(df)].drop_duplicates(SETTING)
    if acc is not None and not acc.empty:  # one join for every panel (the join is not cheap)
        both = join_accuracy(pd.concat([best, singles], ignore_index=True), acc)
        best, singles = both.iloc[: len(best)], both.iloc[len(best) :]
    panels = [
        (key, _of_setting(best, key), next(iter(_of_setting(singles, key).to_dict("records")), None))
        for key in settings
        if key is not None
    ]
    values = np.concatenate([p[1]["speedup_vs_single"].to_numpy(float) for p in panels]) if panels else np.array([1.0])
    norm = matplotlib.colors.TwoSlopeNorm(
        vmin=max(0.05, min(0.5, float(np.nanmin(values)))), vcenter=1.0, vmax=max(2.0, float(np.nanmax(values)))
    )
    cmap = plt.get_cmap("RdYlGn")
    cols = min(2, len(settings))
    rows = math.ceil(len(settings) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7.6 * cols, 4.4 * rows), squeeze=False, layout="constrained")
    for ax in axes.flat[len(settings) :]:
        ax.axis("off")
    if not panels:
        axes.flat[0].text(0.5, 0.5, "no multi-device points", ha="center", va="center")
        axes.flat[0].axis("off")
        return _save(fig, path)
    image = None
    for ax, (key, best, single) in zip(axes.flat, panels):
        ns = sorted(best["devices"].unique())
        bws = sorted(best["bandwidth_mbps"].unique())
        grid = np.full((len(ns), len(bws)), np.nan)
        for _, b in best.iterrows():
            grid[ns.index(b["devices"]), bws.index(b["bandwidth_mbps"])] = b["speedup_vs_single"]
        image = ax.imshow(grid, origin="lower", aspect="auto", cmap=cmap, norm=norm)
        for _, b in best.iterrows():
            i, j = ns.index(b["devices"]), bws.index(b["bandwidth_mbps"])
            s = float(b["speedup_vs_single"])
            if s >= MIN_GAIN:
                lines = [speedup_text(s), label_of(b), accuracy_text(b, known)]
            else:  # nothing beats one device: say so, with the closest contender
                lines = [
                    single_device_strategy().name,
                    f"(best: {label_of(b)} {speedup_text(s)})",
                    accuracy_text(single, known) if single is not None else "",
                ]
            ax.text(
                j,
                i,
                "\n".join(x for x in lines if x),
                ha="center",
                va="center",
                fontsize=6.5,
                color=_ink(cmap(norm(s))),
            )
        ax.set_xticks(range(len(bws)), [number(b) for b in bws])
        ax.set_yticks(range(len(ns)), [str(int(n)) for n in ns])
        ax.set_xlabel("bandwidth (Mbps)")
        ax.set_ylabel("devices N")
        ax.set_title(_setting_title(key), fontsize=9)
    bar = fig.colorbar(
        image,
        ax=list(axes.flat[: len(panels)]),
        shrink=0.9,
        pad=0.02,
        label="best multi-device speedup vs one device (x)",
    )
    bar.ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _p: f"{number(v)}x"))
    fig.suptitle(
        "Best strategy per devices and bandwidth (speedup over one device; 'single': none is 1 % faster)", fontsize=10
    )
    return _save(fig, path)
