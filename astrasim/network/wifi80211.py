"""802.11n/ac/ax airtime from the standard's timing: what a message costs on a Wi-Fi channel.

Why: a Wi-Fi channel's payload efficiency is not a constant. Every channel access pays AIFS, a
random backoff, a PHY preamble and a Block Ack; aggregation (A-MPDU, up to the size, PPDU-time and
Block Ack window limits) spreads that over up to 64 frames; TCP's own ACKs take airtime in the
other direction; and the more stations contend, the more slots go idle or to collisions (Bianchi's
DCF analysis). So efficiency rises with the message size and the PHY rate's share of it falls
with the rate, and both follow from (standard, channel width, MCS, spatial streams, guard
interval) and the message size. Everything here is a pure function of a `WifiPhy`; the topology
(topology.py) turns it into a medium capacity plus a per-message airtime overhead.

Units: bytes for frames, seconds for time, bit/s for rates.

Sources: IEEE 802.11-2020 clauses 17 (OFDM), 19 (HT), 21 (VHT), 10.3 (DCF/EDCA timing) and
IEEE 802.11ax-2021 clause 27 (HE); G. Bianchi, "Performance analysis of the IEEE 802.11
distributed coordination function", IEEE JSAC 18(3), 2000.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from astrasim.errors import UserError

# (bits per subcarrier, coding rate) of MCS 0..11 (HT uses 0..7 per stream)
MCS_TABLE = (
    (1, 1 / 2),
    (2, 1 / 2),
    (2, 3 / 4),
    (4, 1 / 2),
    (4, 3 / 4),
    (6, 2 / 3),
    (6, 3 / 4),
    (6, 5 / 6),
    (8, 3 / 4),
    (8, 5 / 6),
    (10, 3 / 4),
    (10, 5 / 6),
)
# legacy OFDM rate of the same modulation and coding (the "non-HT reference rate", 802.11-2020 10.6.6.5)
REFERENCE_RATE_MBPS = (6, 12, 18, 24, 36, 48, 54, 54, 54, 54, 54, 54)
BASIC_RATES_MBPS = (6, 12, 24)  # mandatory OFDM rates: control responses use the fastest <= the reference
LEGACY_DBPS = {6: 24, 9: 36, 12: 48, 18: 72, 24: 96, 36: 144, 48: 192, 54: 216}


@dataclass(frozen=True)
class Standard:
    name: str
    widths: tuple[int, ...]
    max_mcs: int
    max_streams: int
    data_subcarriers: dict  # width MHz -> N_SD
    symbol_us: float  # without guard interval
    guards_ns: tuple[int, ...]


STANDARDS = {
    "n": Standard("802.11n (HT)", (20, 40), 7, 4, {20: 52, 40: 108}, 3.2, (800, 400)),
    "ac": Standard("802.11ac (VHT)", (20, 40, 80, 160), 9, 8, {20: 52, 40: 108, 80: 234, 160: 468}, 3.2, (800, 400)),
    "ax": Standard(
        "802.11ax (HE)", (20, 40, 80, 160), 11, 8, {20: 234, 40: 468, 80: 980, 160: 1960}, 12.8, (800, 1600, 3200)
    ),
}

# MAC/PHY timing, 5 GHz OFDM PHY (802.11-2020 Table 17-21) and EDCA best effort (Table 9-155)
SLOT_S = 9e-6
SIFS_S = 16e-6
AIFSN_BE, CWMIN_BE, CWMAX_BE = 3, 15, 1023
PPDU_MAX_S = 5.484e-3  # aPPDUMaxTime (HT/VHT/HE)
BA_WINDOW = 64  # MPDUs covered by one compressed Block Ack
ACK_BYTES, BLOCK_ACK_BYTES, HE_BLOCK_ACK_BYTES = 14, 32, 56
BEACON_S, BEACON_INTERVAL_S = 220e-6, 102.4e-3  # a ~145-byte beacon at 6 Mbps every 100 TU

# Frame sizes: a TCP/IPv4 segment with timestamps over LLC/SNAP in a QoS data MPDU.
MSS = 1448
TCP_IP_HEADERS = 20 + 20 + 12
MPDU_OVERHEAD = 8 + 26 + 4  # LLC/SNAP + QoS data MAC header + FCS
DELIMITER = 4  # A-MPDU subframe delimiter
TCP_INITIAL_WINDOW = 10  # segments (RFC 6928)
SEGMENTS_PER_TCP_ACK = 2  # delayed ACK: one ACK per two segments


@dataclass(frozen=True)
class WifiPhy:
    """One link's PHY and MAC settings (what a user knows about the Wi-Fi)."""

    standard: str = "n"
    width_mhz: int = 20
    mcs: int = 7
    streams: int = 1
    guard_ns: int = 800
    max_ampdu_bytes: int = 65535
    rate_mbps: float | None = None  # a PHY rate given as such: the MCS timing scaled to it

    def __post_init__(self) -> None:
        check_phy(self)

    @property
    def spec(self) -> Standard:
        return STANDARDS[self.standard]

    @property
    def symbol_s(self) -> float:
        return (self.spec.symbol_us + self.guard_ns / 1000) * 1e-6

    @property
    def bits_per_symbol(self) -> float:
        if self.rate_mbps is not None:
            return self.rate_mbps * 1e6 * self.symbol_s
        bits, rate = MCS_TABLE[self.mcs]  # HE rounds N_DBPS down; HT/VHT combinations are whole numbers
        return math.floor(self.spec.data_subcarriers[self.width_mhz] * bits * rate * self.streams + 1e-9)

    @property
    def rate_bps(self) -> float:
        """The PHY data rate (what a Wi-Fi chip reports, e.g. 65 Mbps for HT MCS 7 at 20 MHz)."""
        return self.bits_per_symbol / self.symbol_s

    @property
    def response_rate_mbps(self) -> int:
        """Control responses go at the fastest basic rate not above the data's reference rate."""
        ref = REFERENCE_RATE_MBPS[self.mcs] if self.rate_mbps is None else self.rate_mbps / self.streams
        return max([r for r in BASIC_RATES_MBPS if r <= ref] or [BASIC_RATES_MBPS[0]])


def check_phy(phy: WifiPhy) -> None:
    """UserError naming the field when the combination does not exist in the standard."""
    if phy.standard not in STANDARDS:
        raise UserError(
            f"unknown Wi-Fi standard {phy.standard!r}; choose one of {', '.join(STANDARDS)}", "wifi.standard"
        )
    s = STANDARDS[phy.standard]
    if phy.width_mhz not in s.widths:
        raise UserError(
            f"{s.name} has channel widths {', '.join(map(str, s.widths))} MHz, got {phy.width_mhz}",
            "wifi.channel_width_mhz",
        )
    if not (isinstance(phy.mcs, int) and 0 <= phy.mcs <= s.max_mcs):
        raise UserError(f"{s.name} MCS must be 0..{s.max_mcs} (per spatial stream), got {phy.mcs!r}", "wifi.mcs")
    if not (isinstance(phy.streams, int) and 1 <= phy.streams <= s.max_streams):
        raise UserError(
            f"{s.name} supports 1..{s.max_streams} spatial streams, got {phy.streams!r}", "wifi.spatial_streams"
        )
    if phy.guard_ns not in s.guards_ns:
        raise UserError(
            f"{s.name} guard intervals are {', '.join(map(str, s.guards_ns))} ns, got {phy.guard_ns}",
            "wifi.guard_interval_ns",
        )
    if not 1600 <= phy.max_ampdu_bytes <= 6500631:
        raise UserError(f"must be in 1600..6500631 bytes, got {phy.max_ampdu_bytes}", "wifi.max_ampdu_bytes")
    if phy.rate_mbps is not None:
        if not (isinstance(phy.rate_mbps, (int, float)) and math.isfinite(phy.rate_mbps) and phy.rate_mbps > 0):
            raise UserError(f"must be a PHY rate > 0 Mbps, got {phy.rate_mbps!r}", "bandwidth_mbps")
        return
    bits, rate = MCS_TABLE[phy.mcs]
    n_dbps = s.data_subcarriers[phy.width_mhz] * bits * rate * phy.streams
    if phy.standard != "ax" and abs(n_dbps - round(n_dbps)) > 1e-9:  # e.g. VHT MCS 9 at 20 MHz, one stream
        raise UserError(
            f"{s.name} has no MCS {phy.mcs} at {phy.width_mhz} MHz with {phy.streams} stream(s)", "wifi.mcs"
        )


# ----------------------------------------------------------------------------- frame airtime
def _ltf_count(streams: int) -> int:
    return {1: 1, 2: 2, 3: 4, 4: 4, 5: 6, 6: 6}.get(streams, 8)


def preamble_s(phy: WifiPhy) -> float:
    """Legacy preamble and SIG (20 us) plus the HT/VHT/HE training fields and signalling."""
    ltf = _ltf_count(phy.streams)
    if phy.standard == "n":  # HT-mixed: HT-SIG 8, HT-STF 4, HT-LTF 4 each
        return (20 + 8 + 4 + 4 * ltf) * 1e-6
    if phy.standard == "ac":  # VHT-SIG-A 8, VHT-STF 4, VHT-LTF 4 each, VHT-SIG-B 4
        return (20 + 8 + 4 + 4 * ltf + 4) * 1e-6
    # HE SU: RL-SIG 4, HE-SIG-A 8, HE-STF 4, HE-LTF 8 each (2x LTF with a 1.6 us GI, as ns-3 sends it)
    return (20 + 4 + 8 + 4 + 8 * ltf) * 1e-6


def ppdu_s(phy: WifiPhy, psdu_bytes: int) -> float:
    """Airtime of one PPDU carrying `psdu_bytes` (16 service bits + 6 tail bits, BCC)."""
    symbols = math.ceil((16 + 8 * psdu_bytes + 6) / phy.bits_per_symbol)
    data = symbols * phy.symbol_s
    if phy.standard == "n" and phy.guard_ns == 400:  # HT short GI: rounded up to whole 4 us symbols
        data = math.ceil(data / 4e-6 - 1e-9) * 4e-6
    return preamble_s(phy) + data


def legacy_s(rate_mbps: int, psdu_bytes: int) -> float:
    """A non-HT OFDM frame (control responses): 20 us preamble + SIG, 4 us symbols."""
    return 20e-6 + 4e-6 * math.ceil((16 + 8 * psdu_bytes + 6) / LEGACY_DBPS[rate_mbps])


def mpdu_bytes(payload: int) -> int:
    """A data MPDU carrying `payload` TCP bytes (0: a pure TCP ACK)."""
    return payload + TCP_IP_HEADERS + MPDU_OVERHEAD


def ampdu_bytes(mpdus: list[int] | tuple[int, ...]) -> int:
    """An A-MPDU of these MPDUs: a 4-byte delimiter each, padded to 4 bytes except the last."""
    sub = [DELIMITER + m for m in mpdus]
    return sum(s + (-s) % 4 for s in sub[:-1]) + sub[-1]


def aggregation_limit(phy: WifiPhy, mpdu: int = mpdu_bytes(MSS)) -> int:
    """Most MPDUs of this size in one A-MPDU: the Block Ack window, the A-MPDU size limit and the
    PPDU duration limit, whichever binds first."""
    per = DELIMITER + mpdu + (-(DELIMITER + mpdu)) % 4
    k = min(BA_WINDOW, max(1, (phy.max_ampdu_bytes - DELIMITER - mpdu) // per + 1))
    while k > 1 and ppdu_s(phy, ampdu_bytes([mpdu] * k)) > PPDU_MAX_S:
        k -= 1
    return k


def exchange_s(phy: WifiPhy, mpdus: int, mpdu: int) -> float:
    """One frame exchange after the channel is won: the PPDU of `mpdus` equal MPDUs, SIFS, the
    response (ACK for a single MPDU, else a compressed Block Ack) and the AIFS that follows."""
    data = ppdu_s(phy, mpdu + (DELIMITER if phy.standard != "n" else 0) if mpdus == 1 else ampdu_bytes([mpdu] * mpdus))
    return data + exchange_tail_s(phy, mpdus)


def frames_exchange_s(phy: WifiPhy, mpdus: list[int]) -> float:
    """`exchange_s` for MPDUs of their own sizes (a message's last segment is shorter)."""
    single = len(mpdus) == 1
    data = ppdu_s(phy, mpdus[0] + (DELIMITER if phy.standard != "n" else 0) if single else ampdu_bytes(mpdus))
    return data + exchange_tail_s(phy, len(mpdus))


def exchange_tail_s(phy: WifiPhy, mpdus: int) -> float:
    """What follows the data PPDU in `exchange_s`: SIFS, the ACK or Block Ack, SIFS + AIFSN slots."""
    ba = HE_BLOCK_ACK_BYTES if phy.standard == "ax" else BLOCK_ACK_BYTES  # HE: a 256-frame bitmap
    return SIFS_S + legacy_s(phy.response_rate_mbps, ACK_BYTES if mpdus == 1 else ba) + SIFS_S + AIFSN_BE * SLOT_S


# ----------------------------------------------------------------------------- contention (Bianchi)
@lru_cache(maxsize=256)
def bianchi(stations: int, cw_min: int = CWMIN_BE, cw_max: int = CWMAX_BE) -> tuple[float, float]:
    """(tau, p) of Bianchi's saturated DCF: each station transmits in a slot with probability tau
    and collides with probability p = 1 - (1 - tau)^(n - 1); binary exponential backoff from
    W = cw_min + 1 over m = log2((cw_max + 1) / (cw_min + 1)) stages. Solved by bisection on p."""
    w = cw_min + 1
    m = round(math.log2((cw_max + 1) / w))

    def tau_of(p: float) -> float:
        if abs(1 - 2 * p) < 1e-12:
            p += 1e-9
        return 2 * (1 - 2 * p) / ((1 - 2 * p) * (w + 1) + p * w * (1 - (2 * p) ** m))

    if stations <= 1:
        return tau_of(0.0), 0.0
    lo, hi = 0.0, 1.0
    for _ in range(80):
        p = (lo + hi) / 2
        if 1 - (1 - tau_of(p)) ** (stations - 1) > p:
            lo = p
        else:
            hi = p
    p = (lo + hi) / 2
    return tau_of(p), p


def contention_s(stations: int, exchange: float) -> float:
    """Mean channel time lost per successful exchange when `stations` transmitters contend:
    idle backoff slots plus collided exchanges (each as long as `exchange`), from Bianchi."""
    tau, _ = bianchi(stations)
    n = max(1, stations)
    p_tr = 1 - (1 - tau) ** n
    p_s = n * tau * (1 - tau) ** (n - 1) / p_tr
    return (1 - p_tr) / (p_tr * p_s) * SLOT_S + (1 - p_s) / p_s * exchange


# ----------------------------------------------------------------------------- a message's airtime
def slow_start_rounds(payload_bytes: int, count: int = 1) -> list[int]:
    """Segments per round trip of `count` equal TCP messages sent together: slow start lets each
    connection send 10, 20, 40 ... segments per round trip (an idle connection restarts there)."""
    segments = count * math.ceil(payload_bytes / MSS)
    rounds, window = [], count * TCP_INITIAL_WINDOW
    while segments > 0:
        burst = min(window, segments)
        rounds.append(burst)
        segments -= burst
        window *= 2
    return rounds


def data_groups(phy: WifiPhy, payload_bytes: int, count: int = 1) -> list[int]:
    """How the segments of `count` equal TCP messages queued together for one receiver are
    aggregated, one entry (MPDU count) per data PPDU: a slow-start round's segments, at most the
    aggregation limit per PPDU."""
    k_max = aggregation_limit(phy)
    groups = []
    for burst in slow_start_rounds(payload_bytes, count):
        full, rest = divmod(burst, k_max)
        groups += [k_max] * full + ([rest] if rest else [])
    return groups


def message_airtime_s(phy: WifiPhy, payload_bytes: int, stations: int = 2, count: int = 1, lone: bool = False) -> float:
    """Channel time that one crossing of the air costs `count` equal TCP messages sent together to
    one receiver (they share A-MPDUs): their data exchanges, each with the contention cost of
    `stations` transmitters (`contention_s`). A `lone` message (nothing else on the channel when
    it leaves) finds the medium idle: its first exchange goes out without a backoff, and of the
    fixed tail of that exchange (SIFS, the response, AIFS) a store-and-forward pair of crossings
    pays one, not two: the first access waits no AIFS and the delivery precedes the relay's ACK
    (half of it is charged per crossing). Of their TCP ACKs, those that end a slow-start round
    are charged (the next round waits for them); the others ride in A-MPDUs with other traffic or
    leave after the data is delivered, and the bulk capacity (`bulk_efficiency`) charges the ACKs
    of a long transfer."""
    if payload_bytes <= 0 or count <= 0:
        return 0.0
    total = 0.0
    # every MPDU at its own size: full segments, then each message's last (shorter) one, which
    # the messages' final PPDU carries (sizing the tail exactly keeps the airtime monotone in
    # the PHY rate; charging full segments and subtracting the missing bytes at the rate did not)
    segments = math.ceil(payload_bytes / MSS)
    last = payload_bytes - (segments - 1) * MSS
    sizes = [mpdu_bytes(MSS)] * (count * (segments - 1)) + [mpdu_bytes(last)] * count
    for i, k in enumerate(data_groups(phy, payload_bytes, count)):
        group, sizes = sizes[:k], sizes[k:]
        x = frames_exchange_s(phy, group)
        total += x - exchange_tail_s(phy, k) / 2 if (lone and i == 0) else x + contention_s(stations, x)
    for burst in slow_start_rounds(payload_bytes, count)[:-1]:  # the ACKs that open the next round
        x = exchange_s(phy, math.ceil(burst / SEGMENTS_PER_TCP_ACK), mpdu_bytes(0))
        total += x + contention_s(stations, x)
    return total


def bulk_efficiency(phy: WifiPhy, stations: int = 2) -> float:
    """Payload share of the PHY rate in a long transfer (every PPDU at the aggregation limit),
    less the beacons' share of the channel."""
    k = aggregation_limit(phy)
    data_mpdu, ack_mpdu = mpdu_bytes(MSS), mpdu_bytes(0)
    t = sum(
        x + contention_s(stations, x)
        for x in (exchange_s(phy, k, data_mpdu), exchange_s(phy, math.ceil(k / SEGMENTS_PER_TCP_ACK), ack_mpdu))
    )
    return 8 * MSS * k / phy.rate_bps / t * (1 - BEACON_S / BEACON_INTERVAL_S)


def overhead_s(
    phy: WifiPhy,
    payload_bytes: int,
    stations: int = 2,
    count: int = 1,
    lone: bool = False,
    capacity_contenders: int | None = None,
) -> float:
    """Airtime per message and crossing beyond what the bulk capacity (at `capacity_contenders`,
    default `stations`) charges for its payload: what the fluid model adds to each message on the
    medium. Negative when the message costs less than its bulk share (a lone message: no backoff,
    none of a long transfer's TCP ACKs); the message's total airtime stays positive."""
    capacity = phy.rate_bps * bulk_efficiency(phy, capacity_contenders or stations)
    return message_airtime_s(phy, payload_bytes, stations, count, lone) / count - 8 * payload_bytes / capacity
