"""The 802.11 airtime formulas against hand-computed frames, and the wifi presets built from them."""

import math

import pytest

from astrasim.errors import UserError
from astrasim.network import wifi80211 as w
from astrasim.network.topology import Fabric, build_topology
from astrasim.network.wifi_config import WifiConfig, default_contenders, parse_wifi, wifi_medium

HT20_MCS7 = w.WifiPhy("n", 20, 7)


@pytest.mark.parametrize(
    "phy, mbps",
    [
        (w.WifiPhy("n", 20, 7), 65.0),
        (w.WifiPhy("n", 40, 7), 135.0),
        (w.WifiPhy("n", 20, 0), 6.5),
        (w.WifiPhy("n", 20, 7, streams=2), 130.0),
        (w.WifiPhy("n", 20, 7, guard_ns=400), 72.2),
        (w.WifiPhy("ac", 80, 9), 390.0),
        (w.WifiPhy("ac", 160, 9, streams=2), 1560.0),
        (w.WifiPhy("ax", 80, 11), 600.4),
        (w.WifiPhy("ax", 20, 11, guard_ns=3200), 121.9),
    ],
)
def test_phy_rates_are_the_standards(phy, mbps):
    assert phy.rate_bps / 1e6 == pytest.approx(mbps, abs=0.06)


def test_frame_airtime_by_hand_ht_mcs7_20mhz():
    # one 1024-byte TCP segment: 1024 + 52 TCP/IP + 8 LLC + 26 MAC + 4 FCS = 1114 bytes;
    # N_DBPS = 52 * 6 * 5/6 = 260; ceil((16 + 8 * 1114 + 6) / 260) = 35 symbols of 4 us + 36 us HT-mixed preamble
    assert w.mpdu_bytes(1024) == 1114
    assert w.ppdu_s(HT20_MCS7, 1114) == pytest.approx(176e-6)
    # 28 full MPDUs of 1538 bytes: 28 * 1542 (+ delimiters) + 27 * 2 padding = 43230 bytes; 1331 symbols
    assert w.ampdu_bytes([1538] * 28) == 43230
    assert w.ppdu_s(HT20_MCS7, 43230) == pytest.approx(5360e-6)
    # responses at 24 Mbps (the fastest basic rate <= 54 Mbps, MCS 7's reference rate)
    assert HT20_MCS7.response_rate_mbps == 24
    assert w.legacy_s(24, w.ACK_BYTES) == pytest.approx(28e-6)
    assert w.legacy_s(24, w.BLOCK_ACK_BYTES) == pytest.approx(32e-6)
    assert w.legacy_s(6, w.ACK_BYTES) == pytest.approx(44e-6)
    # a lone MPDU: data, SIFS, ACK, AIFS (SIFS + 3 slots)
    assert w.exchange_s(HT20_MCS7, 1, 1114) == pytest.approx((176 + 16 + 28 + 16 + 27) * 1e-6)


def test_aggregation_limits():
    # 20 MHz MCS 7: the 5.484 ms PPDU limit binds at 28 MPDUs; 40 MHz: the 65535-byte A-MPDU at 42
    assert w.aggregation_limit(HT20_MCS7) == 28
    assert w.aggregation_limit(w.WifiPhy("n", 40, 7)) == 42
    assert w.aggregation_limit(w.WifiPhy("ac", 80, 9, max_ampdu_bytes=1048575)) == w.BA_WINDOW
    assert w.aggregation_limit(w.WifiPhy("n", 20, 0)) == 2


def test_slow_start_groups():
    # 64 KiB = 46 segments: 10 in the first round trip, then 20, then the last 16
    assert w.data_groups(HT20_MCS7, 65536) == [10, 20, 16]
    assert w.data_groups(HT20_MCS7, 1) == [1]
    # three equal messages queued together share A-MPDUs
    assert w.data_groups(HT20_MCS7, 1024, count=3) == [3]


def test_bianchi_single_station_and_growth():
    tau, p = w.bianchi(1)
    assert tau == pytest.approx(2 / 17) and p == 0.0
    taus = [w.bianchi(n)[0] for n in range(1, 10)]
    ps = [w.bianchi(n)[1] for n in range(1, 10)]
    assert taus == sorted(taus, reverse=True) and ps == sorted(ps)
    tau, p = w.bianchi(5)
    assert p == pytest.approx(1 - (1 - tau) ** 4, abs=1e-9)  # the fixed point holds
    # one station alone: the mean backoff, CWmin / 2 slots, and no collision
    assert w.contention_s(1, 1e-3) == pytest.approx(7.5 * w.SLOT_S)


def test_efficiency_rises_with_size_and_falls_with_stations():
    for phy in (HT20_MCS7, w.WifiPhy("ac", 80, 9)):
        per_byte = [w.message_airtime_s(phy, s, 3) / s for s in (1024, 16384, 262144, 4194304)]
        assert per_byte == sorted(per_byte, reverse=True)
        effs = [w.bulk_efficiency(phy, n) for n in (1, 2, 4, 9)]
        assert effs == sorted(effs, reverse=True)
        assert 0.5 < effs[-1] < effs[0] < 0.95
    # the faster PHY keeps a smaller share: fixed overheads cost more of its airtime
    assert w.bulk_efficiency(w.WifiPhy("ac", 80, 9)) < w.bulk_efficiency(HT20_MCS7)


def test_overhead_is_positive_and_aggregation_shares_it():
    one = w.overhead_s(HT20_MCS7, 1024, 3)
    assert one > 0
    assert w.overhead_s(HT20_MCS7, 1024, 3, count=7) < one / 3
    # a long transfer costs about its bulk share: little per-message overhead left per byte
    assert w.overhead_s(HT20_MCS7, 4194304, 3) / (8 * 4194304 / (65e6 * w.bulk_efficiency(HT20_MCS7, 3))) < 0.05


def test_invalid_combinations_name_the_field():
    for kwargs, field in [
        ({"standard": "g"}, "wifi.standard"),
        ({"width_mhz": 80}, "wifi.channel_width_mhz"),
        ({"mcs": 8}, "wifi.mcs"),
        ({"streams": 5}, "wifi.spatial_streams"),
        ({"guard_ns": 1600}, "wifi.guard_interval_ns"),
    ]:
        with pytest.raises(UserError) as e:
            w.WifiPhy(**kwargs)
        assert e.value.field == field
    with pytest.raises(UserError, match="no MCS 9 at 20 MHz"):
        w.WifiPhy("ac", 20, 9)


def test_wifi_config_validation_and_rate():
    with pytest.raises(UserError) as e:
        parse_wifi({"standard": "ac", "bogus": 1})
    assert e.value.field == "network.wifi.bogus"
    with pytest.raises(UserError, match="65 Mbps, not 100"):
        WifiConfig(mcs=7).phy(100.0)
    assert WifiConfig(mcs=7).phy(65.0).rate_bps == pytest.approx(65e6)
    assert WifiConfig().phy(100.0).rate_bps == pytest.approx(100e6)  # bandwidth_mbps as the PHY rate
    assert default_contenders(2, True) == 2 and default_contenders(8, True) == 5
    assert default_contenders(8, False) == 4


def test_wifi_preset_uses_the_airtime_model_and_keeps_overrides():
    g = build_topology("wifi", 4, 65.0)
    m = g.graph["media"]["wifi"]
    medium = wifi_medium(None, 65.0, 4)
    assert m["efficiency"] == pytest.approx(medium.efficiency) and m["latency_s"] == 0.0
    res = Fabric(g).resources[0]
    assert res.capacity_bps == pytest.approx(65e6 * medium.efficiency)
    assert res.overhead_s(8192.0) * res.capacity_bps == pytest.approx(medium.extra_bits(8192.0))
    assert res.overhead_s(8192.0, (4, 1)) * res.capacity_bps == pytest.approx(medium.extra_bits(8192.0, 4, 1))
    assert medium.extra_bits(8192.0) > 0
    # an MCS instead of a rate
    g = build_topology("wifi", 2, None, wifi={"standard": "ac", "channel_width_mhz": 80, "mcs": 9})
    assert g.graph["media"]["wifi"]["bandwidth_mbps"] == pytest.approx(390.0)
    # a fixed efficiency: the old constant model, nothing per message
    g = build_topology("wifi-adhoc", 2, 100.0, efficiency=0.6, latency_s=1e-3)
    assert g.graph["media"]["wifi"]["airtime"] is None
    assert Fabric(g).resources[0].overhead_s is None
    with pytest.raises(UserError) as e:
        build_topology("switch", 2, 100.0, wifi={"mcs": 7})
    assert e.value.field == "network.wifi"


def test_extra_bits_are_the_airtime_at_capacity():
    medium = wifi_medium({"mcs": 7}, None, 2)
    bits = 8 * 4096
    lone = w.message_airtime_s(medium.phy, 4096, medium.contenders_for(1), lone=True)
    assert (bits + medium.extra_bits(bits)) / medium.capacity_bps == pytest.approx(lone, rel=1e-9)
    ring = w.message_airtime_s(medium.phy, 4096, medium.contenders_for(2))
    assert (bits + medium.extra_bits(bits, 2, 1)) / medium.capacity_bps == pytest.approx(ring, rel=1e-9)
    assert math.isfinite(medium.extra_bits(1.0))


def test_a_lone_message_finds_the_channel_idle():
    """ns-3's station-to-station 1 KiB (HT 20 MHz MCS 7): PPDU, SIFS, ACK, AIFS, PPDU (446 us);
    no backoff: a lone message's two crossings pay the exchange's fixed tail once."""
    phy = HT20_MCS7
    two = 2 * w.message_airtime_s(phy, 1024, 2, lone=True)
    one = w.exchange_s(phy, 1, w.mpdu_bytes(1024))  # the 1 KiB PPDU + SIFS + ACK + SIFS + AIFSN slots
    assert two == pytest.approx(2 * one - w.exchange_tail_s(phy, 1), rel=1e-9)
    assert 0.40e-3 < two < 0.47e-3
    # contending senders pay the backoff and the collisions: more of them, more airtime
    a = [w.message_airtime_s(phy, 1024, n) for n in (2, 5, 9)]
    assert two / 2 < a[0] < a[1] < a[2]


def test_contention_follows_the_collective_step():
    from astrasim.network.collectives import plan

    assert plan("p2p", 2, "direct").levels() == ((1, 1),)
    assert set(plan("all_gather", 4, "ring").levels()) == {(4, 1)}
    assert set(plan("all_gather", 4, "direct").levels()) == {(4, 3)}
    medium = wifi_medium({"mcs": 7}, None, 8)
    assert [medium.contenders_for(k) for k in (1, 4, 8, 20)] == [2, 5, 9, 9]
    adhoc = wifi_medium({"mcs": 7}, None, 8, infrastructure=False)
    assert adhoc.contenders_for(4) == 4
    fixed = wifi_medium({"mcs": 7, "contenders": 3}, None, 8)
    assert fixed.contenders_for(8) == 3 and fixed.extra_bits(8192.0) == fixed.extra_bits(8192.0, 8, 1)
    # a step's senders contend: a message of a ring step costs more than a lone one; sharing
    # the uplink A-MPDUs (a direct all-gather) costs each message less than a ring step's
    assert medium.extra_bits(8192.0, 8, 1) > medium.extra_bits(8192.0)
    assert medium.extra_bits(8192.0, 8, 7) < medium.extra_bits(8192.0, 8, 1) / 3
    assert adhoc.extra_bits(8192.0, 8, 7) == adhoc.extra_bits(8192.0, 8, 1)  # ad hoc: one receiver each


def test_engine_charges_each_message_its_airtime():
    """A lone p2p message on the wifi preset takes 2 (bits + extra) / capacity: two crossings, each
    with the message's airtime (the engine's per-message overhead hook, Resource.overhead_s)."""
    from astrasim.engine import simulate
    from astrasim.opgraph import Comm, OpGraph

    fabric = Fabric(build_topology("wifi", 2, 65.0))
    medium = fabric.resources[0]
    g = OpGraph(2)
    g.add(Comm("c", "p2p", (0, 1), 8192.0))
    t = simulate(g, fabric).latency_s
    assert t > 2 * 8192.0 / medium.capacity_bps * 1.01  # the airtime is charged
    assert t == pytest.approx(2 * (8192.0 / medium.capacity_bps + medium.overhead_s(8192.0)), rel=1e-9)
