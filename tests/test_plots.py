"""Sweep plots and the shared style: registry colour and marker per strategy, distinct variants,
plain tick labels, a readable latency axis with the one-device line, the legend outside, and a
heat map on one colour scale that says 'single' and the accuracy in its cells.

Frames are built from the registry (every registered strategy, two variants where it has a label
knob), so a new strategy is covered without editing this file."""

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

import astrasim.analysis.plots as plots
from astrasim.analysis import style
from astrasim.strategies import STRATEGIES
from astrasim.strategies.registry import knob_columns, parse_label, single_device_strategy

BWS = [10.0, 20.0, 50.0, 100.0]
SINGLE = single_device_strategy()


def _variants():
    """(strategy, knobs) for every strategy, plus a second variant (first label knob doubled)."""
    out = []
    for s in STRATEGIES.values():
        out.append((s, s.Knobs()))
        for knob in s.label_knobs:
            value = s.knob_defaults()[knob]
            if isinstance(value, int):
                try:
                    out.append((s, s.Knobs(**{knob: value * 2})))
                except ValidationError:
                    continue
                break
    return out


def results_frame(models=("m1",), single_latency=1.0) -> pd.DataFrame:
    """A fake sweep frame: one device at `single_latency`; variant k of the multi-device list is
    (k + 1) / 4 as fast at 4 devices, bandwidth-independent, the last ones far slower."""
    rows = []
    multi = [(s, k) for s, k in _variants() if not s.single_device]
    for model in models:
        for bw in BWS:
            for idx, (s, knobs) in enumerate([(SINGLE, SINGLE.Knobs())] + multi):
                n = 1 if s.single_device else 4
                lat = single_latency if s.single_device else single_latency * (0.5 + 0.3 * idx) * (1 + 10 / bw)
                if idx == len(multi):  # the last variant: hopeless (four decades slower)
                    lat = single_latency * 1e4
                rows.append(
                    {
                        "model": model,
                        "tokens": 128,
                        "hardware": "cpu",
                        "network": "wifi",
                        "strategy": s.name,
                        **knob_columns(s.name, knobs),
                        "devices": n,
                        "bandwidth_mbps": bw,
                        "latency_s": lat,
                        "single_latency_s": single_latency,
                        "speedup_vs_single": single_latency / lat,
                    }
                )
    return pd.DataFrame(rows)


@pytest.fixture
def figures(capture_figures):
    """Capture the figures instead of only writing them (PNG still written, then inspected)."""
    return capture_figures(plots)


def _same_hue_lighter(color, base) -> bool:
    """color == base mixed with a fraction t in [0, MAX_LIGHTEN] of white."""
    c, b = np.array(mcolors.to_rgb(color)), np.array(mcolors.to_rgb(base))
    free = b < 0.999
    if not free.any():
        return np.allclose(c, 1)
    t = (c[free] - b[free]) / (1 - b[free])
    return bool(
        np.allclose(t, t[0], atol=0.01)
        and -0.01 <= t[0] <= style.MAX_LIGHTEN + 0.01
        and np.allclose(c[~free], 1, atol=0.01)
    )


def _data_lines(fig):
    return [ln for ax in fig.axes for ln in ax.get_lines() if not ln.get_label().startswith("_")]


def test_latency_lines_carry_their_strategy_colour_and_marker(figures, tmp_path):
    plots.plot_latency_vs_bandwidth(results_frame(), tmp_path / "lat.png")
    lines = _data_lines(figures[0])
    drawn = {parse_label(ln.get_label())[0].name for ln in lines}
    assert drawn == set(STRATEGIES), "every strategy of the frame is drawn"
    for ln in lines:
        s, _ = parse_label(ln.get_label())
        assert ln.get_marker() == s.marker, ln.get_label()
        assert _same_hue_lighter(ln.get_color(), s.color), (ln.get_label(), ln.get_color(), s.color)
    firsts = [ln for ln in lines if ln.get_label() == parse_label(ln.get_label())[0].label()]
    for ln in firsts:  # the default variant gets exactly the registry colour
        assert mcolors.to_hex(ln.get_color()) == mcolors.to_hex(parse_label(ln.get_label())[0].color)


def test_two_variants_of_a_strategy_look_different():
    df = results_frame()
    looks = style.Looks(df)
    by_strategy = {}
    for lab in looks:
        by_strategy.setdefault(looks.strategy[lab], []).append(looks[lab])
    pairs = [v for v in by_strategy.values() if len(v) > 1]
    assert pairs, "the frame has at least one strategy with two variants"
    for variants in pairs:
        keys = {(mcolors.to_hex(v.color), v.linestyle, v.filled) for v in variants}
        assert len(keys) == len(variants)
        assert all(len({v.linestyle for v in variants[i : i + 2]}) == 2 for i in range(len(variants) - 1))


def test_later_strategies_draw_thinner_and_on_top_so_coinciding_lines_both_show():
    looks = style.Looks(results_frame())
    firsts = {}
    for lab in looks:
        firsts.setdefault(looks.strategy[lab], looks[lab])
    ordered = [firsts[n] for n in STRATEGIES if n in firsts]
    assert all(a.linewidth > b.linewidth and a.zorder < b.zorder for a, b in zip(ordered, ordered[1:]))


def test_colours_and_markers_are_the_registry_ones_whatever_the_order_of_the_frame():
    df = results_frame()
    a = style.Looks(df)
    b = style.Looks(df.iloc[::-1].reset_index(drop=True))
    assert a.order == b.order and all(a[lab] == b[lab] for lab in a)


@pytest.mark.parametrize(
    "value, text",
    [
        (10, "10"),
        (20.0, "20"),
        (500, "500"),
        (2000, "2,000"),
        (0.1, "0.1"),
        (0.30000000000000004, "0.3"),
        (1e-5, "0.00001"),
        (0, "0"),
    ],
)
def test_plain_numbers(value, text):
    assert style.number(value) == text


def test_units_in_tick_labels():
    assert style.usd(2000) == "$2,000" and style.seconds(0.1) == "0.1 s" and style.seconds(1) == "1 s"
    assert style.bits(3e7) == "30 M" and style.bits(1e9) == "1 G"


def test_log_locator_gives_plain_steps():
    loc = style.NiceLogLocator()
    assert loc.tick_values(10, 500) == pytest.approx([10, 20, 50, 100, 200, 500])
    assert loc.tick_values(0.1, 1.05) == pytest.approx([0.1, 0.2, 0.5, 1.0])
    assert loc.tick_values(0.2, 0.9) == pytest.approx([0.2, 0.3, 0.5, 0.7])
    assert len(loc.tick_values(1e-3, 1e6)) <= 10


def _tick_texts(fig):
    return [t.get_text() for ax in fig.axes for t in (*ax.get_xticklabels(), *ax.get_yticklabels()) if t.get_text()]


def test_latency_ticks_are_plain(figures, tmp_path):
    png = plots.plot_latency_vs_bandwidth(results_frame(), tmp_path / "lat.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    texts = _tick_texts(figures[0])
    assert texts and not any("^" in t or "times" in t or "e+" in t or "e-" in t for t in texts), texts
    ax = figures[0].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["10", "20", "50", "100"]
    assert all(t.endswith(" s") for t in (t.get_text() for t in ax.get_yticklabels()) if t)


def test_latency_axis_keeps_contenders_readable_with_one_device_line_and_legend_outside(figures, tmp_path):
    df = results_frame()
    plots.plot_latency_vs_bandwidth(df, tmp_path / "lat.png")
    fig = figures[0]
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    assert lo < df["latency_s"].min() and hi == pytest.approx(plots.SLOWER_THAN_SINGLE * 1.0)
    assert np.log10(hi / lo) < 2, "not squashed under four decades"
    assert any(ln.get_label() == SINGLE.label() for ln in ax.get_lines()), "the one-device line"
    assert "off the scale" in ax.get_title()  # the hopeless variant is named, not silently dropped
    assert ax.get_legend() is None and fig.legends, "one figure legend, outside the panels"
    legend_box = fig.legends[0].get_window_extent()
    assert legend_box.x0 >= max(a.get_window_extent().x1 for a in fig.axes) - 1
    assert plots.ONE_DEVICE in [t.get_text() for t in fig.legends[0].get_texts()]


def test_single_bandwidth_bars_keep_the_registry_colours(figures, tmp_path):
    df = results_frame()
    plots.plot_latency_vs_bandwidth(df[df["bandwidth_mbps"] == 20.0], tmp_path / "bars.png")
    ax = figures[0].axes[0]
    names = [t.get_text() for t in ax.get_yticklabels()]
    colours = [p.get_edgecolor() for p in ax.patches]
    for name, colour in zip(names, colours):
        s = SINGLE if name == plots.ONE_DEVICE else parse_label(name)[0]
        assert _same_hue_lighter(colour[:3], s.color), name


def _accuracy_csv(tmp_path, models=("m1", "m2")):
    """Accuracy known for the single device (and so for the exact strategies) only."""
    p = tmp_path / "acc.csv"
    pd.DataFrame(
        [
            {
                "model": m,
                "task": "t",
                "strategy": SINGLE.name,
                "groups": 0,
                "metric": "top1_pct",
                "value": 81.5,
                "higher_is_better": True,
                "source": "test",
            }
            for m in models
        ]
    ).to_csv(p, index=False)
    from astrasim.analysis.accuracy_data import load_accuracy

    return load_accuracy([p])


def test_heat_map_shares_one_colour_scale_and_writes_single_and_accuracy(figures, tmp_path):
    df = results_frame(models=("m1", "m2"))
    slow = df["model"] == "m2"  # m2: nothing beats one device
    df.loc[slow & (df["strategy"] != SINGLE.name), "latency_s"] *= 10
    inexact = next(s.name for s in STRATEGIES.values() if not s.exact)  # m1: an inexact strategy wins
    df.loc[~slow & (df["strategy"] == inexact), "latency_s"] /= 10
    df["speedup_vs_single"] = df["single_latency_s"] / df["latency_s"]
    plots.plot_speedup(df, tmp_path / "speedup.png", accuracy=_accuracy_csv(tmp_path))
    fig = figures[0]
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 2
    assert images[0].norm is images[1].norm, "one colour scale across panels"
    assert images[0].norm.vmax >= df.loc[~slow, "speedup_vs_single"].max()
    assert images[0].norm.vmin <= df.loc[slow & (df["strategy"] != SINGLE.name), "speedup_vs_single"].max()
    texts = {ax.get_title(): [t.get_text() for t in ax.texts] for ax in fig.axes if ax.get_images()}
    m1 = next(v for k, v in texts.items() if k.startswith("m1"))
    m2 = next(v for k, v in texts.items() if k.startswith("m2"))
    assert all("accuracy unknown" in t for t in m1), m1  # the winner has no accuracy row
    assert all(t.startswith(SINGLE.name + "\n") and "top-1 81.5 %" in t for t in m2), m2
    assert len([ax for ax in fig.axes if not ax.get_images() and ax.get_visible() and ax.axison]) == 1, (
        "one colour bar for the figure"
    )


def test_heat_map_without_accuracy_data_for_the_model_writes_none(figures, tmp_path):
    df = results_frame()
    plots.plot_speedup(df, tmp_path / "speedup.png", accuracy=_accuracy_csv(tmp_path, models=("other",)))
    texts = [t.get_text() for ax in figures[0].axes for t in ax.texts]
    assert texts and not any("accuracy" in t or "top-1" in t for t in texts)


def test_speedup_text_never_rounds_to_zero():
    assert plots.speedup_text(0.005) == "0.005x" and plots.speedup_text(1.4) == "1.40x"


@pytest.mark.parametrize("keep", ["multi-device only", "one device only"])
def test_frames_without_one_side_still_plot(tmp_path, keep):
    df = results_frame()
    df = df[(df["strategy"] == SINGLE.name) == (keep == "one device only")]
    for fn in (plots.plot_latency_vs_bandwidth, plots.plot_speedup):
        assert fn(df, tmp_path / f"{fn.__name__}.png").stat().st_size > 1000
