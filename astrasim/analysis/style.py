"""One look per strategy variant in every figure, and plain tick labels.

A variant's look is derived, never listed: the hue and marker are its strategy's registry
`color` / `marker`; the variant's position among that strategy's variants in the figure (ordered
by knob values: astra G=1, 16, 32) picks a lighter shade of the same hue, a line style and a
filled or hollow marker. Strategies later in the registry order draw thinner and on top, so two
curves that coincide (bp-ag and bp-sp at Nb=1) both stay visible.

Log axes get plain labels at 1-2-5 steps (10, 20, 50 Mbps; $2,000; 0.1 s), never 6x10^1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors as mcolors  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import ticker  # noqa: E402

from astrasim.scenario.grid import IDENTITY_COLUMNS, VARIANT_COLUMNS  # noqa: E402
from astrasim.strategies import STRATEGIES, label_of  # noqa: E402
from astrasim.strategies.registry import knobs_from_row  # noqa: E402

# The columns a figure draws itself: as panels (model, tokens, hardware, network), axes (devices,
# bandwidth, the offered rate of a stream) or the variant's look (strategy, knobs).
DRAWN_COLUMNS = (
    "scenario",
    "model",
    "tokens",
    *VARIANT_COLUMNS,
    "devices",
    "hardware",
    "network",
    "bandwidth_mbps",
    "arrival",
    "rate_per_s",
)
# every other identity column (scenario/grid.py IDENTITY), when it varies in a frame, makes separate
# lines (added to the label): two points differing in it are never drawn as one
EXTRA_KNOBS = [c for c in IDENTITY_COLUMNS if c not in DRAWN_COLUMNS]
LINESTYLES = ("-", "--", ":", "-.")
MAX_LIGHTEN = 0.5  # the last variant of a strategy mixes this much white into the strategy's colour


@dataclass(frozen=True)
class Look:
    """How one variant is drawn (line, scatter and bar keyword sets below)."""

    color: tuple[float, float, float]
    marker: str
    linestyle: str
    filled: bool
    linewidth: float
    markersize: float
    zorder: float

    @property
    def face(self):
        return self.color if self.filled else "white"

    def line(self) -> dict:
        return dict(
            color=self.color,
            marker=self.marker,
            ls=self.linestyle,
            lw=self.linewidth,
            ms=self.markersize,
            mfc=self.face,
            mec=self.color,
            mew=1.2,
            zorder=self.zorder,
        )

    def scatter(self, size: float = 1.0) -> dict:
        return dict(
            marker=self.marker,
            facecolors=[self.face],
            edgecolors=[self.color],
            linewidths=1.2,
            s=(self.markersize * 1.6 * size) ** 2,
            zorder=self.zorder + 1,
        )

    def bar(self) -> dict:
        return dict(
            color=self.color, edgecolor=self.color, hatch=None if self.filled else "//", fill=self.filled, linewidth=1.2
        )


def lighten(color, t: float) -> tuple[float, float, float]:
    """Mix a fraction t of white into a colour (keeps the hue)."""
    r, g, b = mcolors.to_rgb(color)
    return (r + (1 - r) * t, g + (1 - g) * t, b + (1 - b) * t)


def variant_labels(df: pd.DataFrame) -> pd.Series:
    """Each row's variant label: 'astra G=16', plus 'element_bits=16' etc. for the scenario
    columns that vary in this frame (each such combination is a line of its own)."""
    labels = pd.Series([label_of(r) for r in df.to_dict("records")], index=df.index, dtype=object)
    for k in EXTRA_KNOBS:
        if k in df.columns and df[k].astype(str).nunique() > 1:
            labels = labels + " " + k + "=" + df[k].astype(str)
    return labels


def _strategy_position(name: str) -> float:
    """0 for the first strategy of the registry order, 1 for the last."""
    names = list(STRATEGIES)
    return names.index(name) / max(1, len(names) - 1) if name in names else 1.0


def order_key(row) -> tuple:
    """Display order: registry rank, then knob values in declaration order."""
    s, knobs = knobs_from_row(row)
    return (s.rank, s.name, tuple(knobs.model_dump().values()))


class Looks:
    """Looks of every variant in a frame (rows need `strategy` and the knob columns)."""

    def __init__(self, df: pd.DataFrame, labels: pd.Series | None = None):
        labels = variant_labels(df) if labels is None else labels
        first = {}
        for (_, row), lab in zip(df.iterrows(), labels):
            first.setdefault(lab, row)
        self.order = sorted(first, key=lambda lab: (order_key(first[lab]), lab))
        self.strategy = {lab: str(first[lab]["strategy"]) for lab in self.order}
        self._looks: dict[str, Look] = {}
        for name in dict.fromkeys(self.strategy.values()):
            mine = [lab for lab in self.order if self.strategy[lab] == name]
            s = STRATEGIES.get(name)
            base, marker = (s.color, s.marker) if s else ("0.5", "o")
            pos = _strategy_position(name)
            for i, lab in enumerate(mine):
                t = MAX_LIGHTEN * i / (len(mine) - 1) if len(mine) > 1 else 0.0
                self._looks[lab] = Look(
                    color=lighten(base, t),
                    marker=marker,
                    linestyle=LINESTYLES[i % len(LINESTYLES)],
                    filled=i % 2 == 0,
                    linewidth=2.2 - 0.9 * pos,
                    markersize=7 - 1.5 * pos,
                    zorder=2 + pos,
                )

    def __getitem__(self, label: str) -> Look:
        return self._looks[label]

    def __iter__(self):
        return iter(self.order)

    def handles(self, labels: Iterable[str] | None = None, rename: Callable[[str], str] = str):
        """Legend handles and texts, in display order."""
        from matplotlib.lines import Line2D

        wanted = set(self.order if labels is None else labels)
        labs = [lab for lab in self.order if lab in wanted]
        return [Line2D([], [], **self[lab].line()) for lab in labs], [rename(lab) for lab in labs]


# -- plain tick labels ------------------------------------------------------------------------


def number(v: float) -> str:
    """10, 0.1, 2,000 (never 1e+03 or 6x10^1)."""
    if v == 0 or not math.isfinite(v):
        return "0" if v == 0 else str(v)
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    text = f"{v:.3g}"
    if "e" in text:  # below 1e-4: still a plain decimal
        text = f"{v:.{-int(math.floor(math.log10(abs(v)))) + 1}f}".rstrip("0").rstrip(".")
    return text


def seconds(v: float) -> str:
    return f"{number(v)} s"


def usd(v: float) -> str:
    return f"${v:,.0f}" if abs(v) >= 1 else f"${v:.2g}"


def bits(v: float) -> str:
    """10 M, 1 G (bits, SI prefixes)."""
    for power, prefix in ((12, "T"), (9, "G"), (6, "M"), (3, "k")):
        if abs(v) >= 10**power:
            return f"{number(v / 10**power)} {prefix}"
    return number(v)


class NiceLogLocator(ticker.Locator):
    """Major ticks of a log axis at 1-2-5 (or fewer) steps inside the view, at least two."""

    def __call__(self):
        lo, hi = self.axis.get_view_interval()
        return self.tick_values(lo, hi)

    def tick_values(self, vmin, vmax):
        lo, hi = sorted((float(vmin), float(vmax)))
        if hi <= 0:
            return []
        lo = max(lo, hi * 1e-12)
        decades = math.log10(hi / lo)
        if decades <= 1.2:
            steps = ((1, 2, 5), (1, 1.5, 2, 3, 5, 7))
        else:
            steps = ((1, 2, 5), (1, 3), (1,)) if decades <= 2.2 else ((1, 3), (1,)) if decades <= 4 else ((1,),)
        for mantissas in steps:
            ticks = [
                m * 10.0**k
                for k in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
                for m in mantissas
                if lo * (1 - 1e-9) <= m * 10.0**k <= hi * (1 + 1e-9)
            ]
            if decades <= 1.2 and len(ticks) < 3:
                continue
            if len(ticks) <= 9:
                return ticks
        step = max(1, math.ceil(decades / 8))
        return [10.0**k for k in range(math.ceil(math.log10(lo)), math.floor(math.log10(hi)) + 1, step)]


def plain_axis(ax, which: str, fmt: Callable[[float], str] = number, values: Iterable[float] | None = None) -> None:
    """Plain labels on one axis ('x' or 'y'); `values`: ticks exactly there (the swept bandwidths)."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    scale = ax.get_xscale() if which == "x" else ax.get_yscale()
    if values is not None:
        axis.set_major_locator(ticker.FixedLocator(sorted(set(float(v) for v in values))))
    elif scale == "log":
        axis.set_major_locator(NiceLogLocator())
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _pos: fmt(v)))
    axis.set_minor_formatter(ticker.NullFormatter())


def identity_axes(ax, measured, predicted, band: float, pad: float) -> None:
    """Log-log predicted-vs-measured axes (the validation and ns-3 plots): the diagonal, a dashed
    +-(band - 1) band labelled for the legend, equal limits `pad` beyond the data on both axes."""
    lo = min(min(measured), min(predicted)) / pad
    hi = max(max(measured), max(predicted)) * pad
    ax.plot([lo, hi], [lo, hi], color="black", lw=1)
    ax.plot([lo, hi], [lo * band, hi * band], color="grey", lw=0.8, ls="--", label=f"+-{round((band - 1) * 100)} %")
    ax.plot([lo, hi], [lo / band, hi / band], color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
