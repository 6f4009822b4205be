"""Issue 25's network findings: a one-row bandwidth trace is exactly the static network, and how
much one slower device can speed a point up (docs/network.md "Limits of the model")."""

from __future__ import annotations

import pytest

from astrasim.pointrun import run_point
from astrasim.scenario import from_dict, iter_points


def _latency(network: dict, strategy="sp", devices=4, hardware=None, model="gpt2-s") -> float:
    sc = from_dict({"name": "t", "models": [model], "devices": [devices], "strategies": [strategy],
                    "hardware": {"profile": "cpu", **(hardware or {})}, "network": network})
    return run_point(next(iter_points(sc)))[0].latency_s


@pytest.mark.parametrize("topology", ["wifi", "wifi-adhoc", "switch", "mesh"])
@pytest.mark.parametrize("strategy", ["sp", "tp", {"name": "astra", "groups": 32}])
@pytest.mark.parametrize("nominal", [50, 100])
def test_a_one_row_trace_is_the_static_network(tmp_path, topology, strategy, nominal):
    """0 s -> 50 Mbps from the start: exactly the static 50 Mbps result, whatever the nominal rate
    (on Wi-Fi the trace is the PHY rate: the airtime model follows it; once it stayed at the
    nominal rate's, and sp differed: 16.575 vs 16.4 s)."""
    trace = tmp_path / "t.csv"
    trace.write_text("time_s,bandwidth_mbps\n0,50\n")
    static = _latency({"topology": topology, "bandwidth_mbps": 50}, strategy)
    traced = _latency({"topology": topology, "bandwidth_mbps": nominal, "trace": str(trace)}, strategy)
    assert traced == static
