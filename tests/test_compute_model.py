"""The calibrated device model: closed-form op times, weight formats, the LM head, decode that honours
them, compute_source, the catalog schema and calibrate-device's refusals."""

from dataclasses import replace

import pytest
import yaml
from typer.testing import CliRunner

from astrasim.cli import app
from astrasim.compute.analytic import Cost, lm_head
from astrasim.compute.calibrated import DeviceModel
from astrasim.compute.catalog import CatalogDevice, load_catalog
from astrasim.compute.formats import FORMATS, weight_format
from astrasim.errors import UserError
from astrasim.pointrun import simulate_point
from astrasim.scenario import load_scenario

FIGS = (
    "peak_flops",
    "mem_bandwidth_gbs",
    "mem_read_gbs",
    "dispatch_us",
    "message_us",
    "memory_gb",
    "idle_power_w",
    "active_power_w",
    "price_usd",
)


def _entry(**over):
    e = {
        "name": "box",
        "kind": "cpu",
        "peak_flops": 2e11,
        "mem_bandwidth_gbs": 20.0,
        "mem_read_gbs": 10.0,
        "matmul_gflops": {"fp32": 100.0, "int8": 400.0},
        "dispatch_us": 5.0,
        "message_us": 20.0,
        "memory_gb": 8.0,
        "idle_power_w": 2.0,
        "active_power_w": 10.0,
        "price_usd": 100.0,
        "sources": {
            **{f: "published: x" for f in FIGS},
            "matmul_gflops.fp32": "measured: y",
            "matmul_gflops.int8": "estimate: z",
        },
    }
    e.update(over)
    return e


def test_op_time_is_the_roofline_on_sustained_figures_plus_dispatch():
    m = DeviceModel.of(CatalogDevice(**_entry()))
    fp32, q4 = FORMATS["fp32"], FORMATS["q4_0"]
    # compute-bound: 1e10 FLOP at 100 GFLOP/s = 0.1 s, plus 3 kernels x 5 us
    assert m.seconds(Cost(1e10, 4e6, 4e6, 3), fp32) == pytest.approx(0.1 + 15e-6)
    # memory-bound: 1e9 bytes of fp32 weights at 10 GB/s = 0.1 s; q4_0 reads 4.5/32 of them, on int8 kernels
    assert m.seconds(Cost(1e6, 1e9, 1e9, 1), fp32) == pytest.approx(0.1 + 5e-6)
    assert m.seconds(Cost(1e6, 1e9, 1e9, 1), q4) == pytest.approx(0.1 * 4.5 / 32 + 5e-6)
    # activations at 2 bytes with quantized formats (counted at 4 by the analytic costs)
    assert m.seconds(Cost(0.0, 8e8, 0.0, 0), q4) == pytest.approx(0.04 + 5e-6)
    # the head keeps its own bits (q6_K for q4_0 files)
    assert m.seconds(Cost(0.0, 1e9, 1e9, 1), q4, head=True) == pytest.approx(0.1 * 6.5625 / 32 + 5e-6)
    # the datasheet model: peaks, no dispatch
    d = DeviceModel.of(CatalogDevice(**_entry()), datasheet=True)
    assert d.seconds(Cost(1e6, 1e9, 1e9, 1), fp32) == pytest.approx(1e9 / 20e9)


def test_source_follows_the_figures_used_and_unrunnable_formats_are_refused():
    m = DeviceModel.of(CatalogDevice(**_entry()))
    assert m.source(FORMATS["fp32"]) == "calibrated"  # published bandwidth, measured fp32 matmul
    assert m.source(FORMATS["q8_0"]) == "datasheet"  # its int8 figure is an estimate
    assert m.precision(FORMATS["fp16"]) == "fp32"  # no fp16 kernels: fp16 weights computed in fp32
    with pytest.raises(UserError, match="cannot run int4"):
        m.precision(FORMATS["int4"])


def test_format_bits_are_the_runtime_layouts():
    assert FORMATS["q4_0"].bits == 18 * 8 / 32 and FORMATS["q8_0"].bits == 34 * 8 / 32
    assert weight_format("Q4_K_M").bits == pytest.approx(4.85)
    # distributed-llama keeps its head in Q40 (llama.cpp's q4_0 files: q6_K); MLC's q4f16_ft: one fp16
    # scale per column of a 4096-wide input, the head group-quantized int4 in groups of 32
    assert FORMATS["q40"].head_bits == FORMATS["q40"].bits == 18 * 8 / 32 < FORMATS["q4_0"].head_bits
    assert FORMATS["q4f16_ft"].bits == pytest.approx(4 + 16 / 4096, abs=1e-3)
    assert FORMATS["q4f16_ft"].head_bits == 4 + 16 / 32 < FORMATS["int4"].head_bits
    with pytest.raises(UserError, match="unknown weight format"):
        weight_format("q3_x")


def test_llama_3_2_1b_head_is_a_fifth_of_its_weights():
    hidden, vocab, layers, mlp = 2048, 128256, 16, 8192
    layer = hidden * (32 + 2 * 8) * 64 + 32 * 64 * hidden + 3 * hidden * mlp + 2 * hidden
    head = lm_head(hidden, vocab, "rmsnorm", 4)
    share = head.weights / 4 / (layers * layer + vocab * hidden)
    assert 0.2 < share < 0.22
    assert head.flops >= 2 * hidden * vocab


def test_catalog_entry_without_a_source_or_figure_is_refused(tmp_path):
    for broken, field in (
        (_entry(sources={f: "published: x" for f in FIGS}), "matmul_gflops.fp32"),
        ({k: v for k, v in _entry().items() if k != "mem_read_gbs"}, "mem_read_gbs"),
        (_entry(sources={**_entry()["sources"], "dispatch_us": "somebody said so"}), "dispatch_us"),
    ):
        p = tmp_path / f"cat-{field}.yaml"
        p.write_text(yaml.safe_dump({"devices": [broken]}))
        with pytest.raises(UserError) as exc:
            load_catalog(p)
        assert "devices[box]" in str(exc.value) and field in str(exc.value)
        assert len(str(exc.value).splitlines()) == 1


def _sc(tmp_path, **fields):
    data = {
        "models": ["llama3-8b"],
        "tokens": 64,
        "output_tokens": 4,
        "devices": [1],
        "strategies": ["single"],
        "hardware": {"device": "raspberry-pi-5"},
        "network": {"topology": "switch", "bandwidth_mbps": 1000},
        **fields,
    }
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(data))
    return load_scenario(p)


def test_decode_time_follows_the_weight_format(tmp_path):
    rows = {
        r["weight_format"]: r
        for r in map(simulate_point, _sc(tmp_path, weight_format=["fp32", "q8_0", "q4_0"]).points())
    }
    assert {r["compute_source"] for r in rows.values()} == {"calibrated"}
    assert rows["q4_0"]["tpot_s"] < rows["q8_0"]["tpot_s"] < rows["fp32"]["tpot_s"]
    # memory-bound decode: about the ratio of bytes read per token
    assert rows["q8_0"]["tpot_s"] / rows["q4_0"]["tpot_s"] == pytest.approx(8.5 / 4.5, rel=0.1)
    # weight_bits is the shorthand
    short = next(iter(_sc(tmp_path, weight_bits=4).points()))
    assert short.weight_format == "q4_0" and simulate_point(short)["tpot_s"] == rows["q4_0"]["tpot_s"]


@pytest.mark.parametrize(
    "model,device", [("gpt2-s", "raspberry-pi-5"), ("llama3-8b", "raspberry-pi-4b"), ("llama3-8b", "jetson-agx-orin")]
)
def test_tp_decode_on_n_devices_is_never_faster_than_a_nth_of_one(tmp_path, model, device):
    sc = _sc(
        tmp_path,
        models=[model],
        devices=[1, 2, 4],
        strategies=["single", "tp"],
        weight_format="q4_0",
        hardware={"device": device},
        network={"topology": "ideal", "bandwidth_mbps": 1000000},
    )
    rows = list(map(simulate_point, sc.points()))
    one = next(r for r in rows if r["strategy"] == "single")
    for r in rows:
        if r["strategy"] == "tp":
            assert r["tpot_s"] >= one["tpot_s"] / r["devices"]
            if model == "llama3-8b" and r["devices"] > 1:  # big layers on an ideal link: tp still helps
                assert r["tpot_s"] < one["tpot_s"]


def test_measured_profile_rows_stay_first_class(tmp_path):
    sc = _sc(tmp_path, models=["gpt2-s"], output_tokens=0, tokens=1024, hardware={"profile": "cpu"})
    p = next(iter(sc.points()))
    assert simulate_point(p)["compute_source"] == "measured"
    calibrated = simulate_point(replace(p, compute="calibrated"))
    assert calibrated["compute_source"] in ("calibrated", "datasheet")
    assert calibrated["latency_s"] != simulate_point(p)["latency_s"]


def test_cli_refuses_unknown_and_unrunnable_formats(tmp_path):
    runner = CliRunner()
    for fields, needle in (
        ({"weight_format": "q3_x"}, "weight_format"),
        ({"weight_format": "int4"}, "cannot run int4"),
    ):
        p = tmp_path / "bad.yaml"
        p.write_text(
            yaml.safe_dump(
                {
                    "models": ["gpt2-s"],
                    "tokens": 64,
                    "devices": 1,
                    "strategies": ["single"],
                    "hardware": {"device": "raspberry-pi-4b"},
                    **fields,
                }
            )
        )
        res = runner.invoke(app, ["sweep", str(p), "--out", str(tmp_path / "o.csv"), "--no-progress"])
        assert res.exit_code == 2, res.output
        assert needle in res.output and not (tmp_path / "o.csv").exists()


def test_calibrate_device_refuses_an_unwritable_catalog_before_measuring(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = CliRunner().invoke(app, ["calibrate-device", "cpu", "--catalog", str(blocker / "devices.yaml")])
    assert res.exit_code == 2 and "--catalog" in res.output
    assert blocker.read_text() == "x"


def test_a_fleet_decodes_on_the_hardware_of_its_decoding_device(tmp_path):
    """sp decodes on its last device: a Pi 5 behind a Jetson decodes at a lone Pi 5's pace."""
    fleet = ["jetson-orin-nano", "raspberry-pi-5", "raspberry-pi-5", "raspberry-pi-5"]
    sc = _sc(
        tmp_path,
        models=["gpt2-s"],
        devices=[4],
        strategies=["sp"],
        weight_format="q8_0",
        hardware={"devices": fleet},
        network={"topology": "ideal", "bandwidth_mbps": 1000},
    )
    sp = simulate_point(next(iter(sc.points())))
    pi = simulate_point(next(iter(_sc(tmp_path, models=["gpt2-s"], weight_format="q8_0").points())))
    assert sp["tpot_s"] == pytest.approx(pi["tpot_s"], rel=1e-9)


def test_calibrate_device_writes_a_valid_entry_and_keeps_the_rest_of_the_catalog(tmp_path):
    from astrasim.compute import calibrate_device as cd

    text = cd.replace_entry("# header kept\ndevices:\n", "other", _entry(name="other"))
    measured = {
        "threads": 2,
        "mem_read_gbs": 7.5,
        "matmul_gflops": {"fp32": 80.0, "int8": 300.0},
        "dispatch_us": 12.0,
        "message_us": 4.0,
    }
    with pytest.raises(UserError, match="--price-usd"):
        cd.check_new_entry("box2", False, None, 1.0, 2.0)
    new = cd.entry_for("box2", measured, None, 99.0, 1.0, 2.0)
    out = cd.replace_entry(text, "box2", new)
    p = tmp_path / "devices.yaml"
    p.write_text(out)
    cat = load_catalog(p)
    assert out.startswith("# header kept") and set(cat) == {"other", "box2"}
    box = cat["box2"]
    assert box.mem_read_gbs == 7.5 and box.matmul_gflops == {"fp32": 80.0, "int8": 300.0}
    assert box.source_kind("mem_read_gbs") == "measured" and box.source_kind("price_usd") == "estimate"
    # re-calibrating an existing entry replaces its sustained figures only
    again = cd.entry_for("box2", {**measured, "mem_read_gbs": 9.0}, box.model_dump(), None, None, None)
    p.write_text(cd.replace_entry(out, "box2", again))
    cat = load_catalog(p)
    assert (
        cat["box2"].mem_read_gbs == 9.0
        and cat["box2"].price_usd == 99.0
        and cat["other"] == CatalogDevice(**_entry(name="other"))
    )


def test_weight_format_and_its_shorthand_together_are_refused():
    from astrasim.scenario.loading import from_dict

    with pytest.raises(UserError, match="weight_format and weight_bits both given"):
        from_dict({"models": ["gpt2-s"], "weight_format": "q4_0", "weight_bits": 8})


def test_tp_head_root_puts_the_whole_head_on_device_0(tmp_path):
    """head: root (distributed-llama's llamaFinalize): device 0 computes the whole vocabulary's head and
    holds the embeddings; split: every device ceil(V / N) of it. Exactly the one-device head cost."""
    from astrasim.compute.hardware import device_model, head_seconds
    from astrasim.compute.memory import outer_weights
    from astrasim.strategies import get

    sc = _sc(
        tmp_path,
        models=["llama3-8b"],
        devices=[4],
        weight_format="q4_0",
        hardware={"device": "raspberry-pi-5"},
        strategies=[{"name": "tp", "head": ["split", "root"]}],
    )
    split, root = sorted(sc.points(), key=lambda p: p.knobs.head == "root")
    spec, fmt, pi5 = split.model, weight_format("q4_0"), device_model("raspberry-pi-5")
    whole = pi5.seconds(lm_head(spec.hidden, spec.vocab, spec.norm, 4), fmt, head=True)
    quarter = pi5.seconds(lm_head(spec.hidden, -(-spec.vocab // 4), spec.norm, 4), fmt, head=True)
    assert head_seconds(root) == pytest.approx((whole, 0.0, 0.0, 0.0))
    assert head_seconds(split) == pytest.approx((quarter,) * 4)
    mem = {p.knobs.head: get("tp").memory(spec, 4, 1, p.knobs, p.options()) for p in (split, root)}
    outer = outer_weights(spec) * fmt.bits / 8
    assert mem["root"][0].weights - mem["split"][0].weights == pytest.approx(outer * 3 / 4)
    assert mem["split"][1].weights - mem["root"][1].weights == pytest.approx(outer / 4)
    # the root's whole head makes decode slower than the split head by at least their difference
    tpot = {p.knobs.head: simulate_point(p)["tpot_s"] for p in (split, root)}
    assert tpot["root"] - tpot["split"] >= (whole - quarter) * 0.999
    assert get("tp").label(root.knobs) == "tp head=root"
