"""What a user says about a Wi-Fi network, and the medium the simulator builds from it.

`WifiConfig` is the scenario's `network.wifi` block (pydantic, extra keys refused). `wifi_medium`
turns it, the PHY rate (`bandwidth_mbps`) and the number of stations into a `WifiMedium`: the
channel's bulk payload capacity plus the extra airtime each message costs on it (the engine adds
`extra_bits` to every message that crosses the medium). The formulas are in wifi80211.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from astrasim.errors import UserError
from astrasim.network.wifi80211 import WifiPhy, bulk_efficiency, overhead_s


class WifiConfig(BaseModel):
    """The 802.11 settings of a `wifi` / `wifi-adhoc` network (every field optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    standard: Literal["n", "ac", "ax"] = Field("n", description="802.11n (HT), ac (VHT) or ax (HE)")
    channel_width_mhz: int = Field(20, description="20 or 40 (n); 20, 40, 80 or 160 (ac, ax)")
    mcs: int | None = Field(
        None,
        description="MCS index per spatial stream (n: 0-7, ac: 0-9, ax: 0-11); null = the PHY rate is bandwidth_mbps",
    )
    spatial_streams: int = Field(1, description="spatial streams (n: 1-4, ac/ax: 1-8)")
    guard_interval_ns: int = Field(800, description="800 or 400 (n, ac); 800, 1600 or 3200 (ax)")
    max_ampdu_bytes: int = Field(65535, description="largest A-MPDU a station sends")
    contenders: int | None = Field(
        None,
        ge=1,
        description="transmitters contending at once, for every "
        "message; null = per message the senders of its "
        "collective step plus the AP",
    )
    # Radio power of each station (energy; astrasim/placement/energy.py), W while in that state. Defaults:
    # ns-3's WifiRadioEnergyModel (nsnam/ns-3-dev, src/wifi/model/wifi-radio-energy-model.cc: idle 273 mA,
    # tx 380 mA at 0 dBm, rx 313 mA) at its BasicEnergySource's 3.0 V supply, i.e. an 802.11 NIC measured by
    # the UW Network Security Lab; the same order as Halperin et al., "Demystifying 802.11n power
    # consumption" (HotPower 2010, Intel 5300: about 0.8-2.1 W from idle to 3-stream transmit).
    radio_tx_w: float = Field(1.14, ge=0, description="radio power while transmitting, W (ns-3: 0.380 A x 3 V)")
    radio_rx_w: float = Field(0.939, ge=0, description="radio power while receiving, W (ns-3: 0.313 A x 3 V)")
    radio_idle_w: float = Field(0.819, ge=0, description="radio power while listening idle, W (ns-3: 0.273 A x 3 V)")

    def phy(self, bandwidth_mbps: float | None) -> WifiPhy:
        """The PHY: from the MCS when given (then bandwidth_mbps must be null or that rate), else
        the standard's timing at the PHY rate bandwidth_mbps."""
        phy = WifiPhy(
            self.standard,
            self.channel_width_mhz,
            0 if self.mcs is None else self.mcs,
            self.spatial_streams,
            self.guard_interval_ns,
            self.max_ampdu_bytes,
            rate_mbps=None if self.mcs is not None else bandwidth_mbps,
        )
        if self.mcs is None and bandwidth_mbps is None:
            raise UserError("give the PHY rate (bandwidth_mbps) or an MCS (network.wifi.mcs)", "bandwidth_mbps")
        if self.mcs is not None and bandwidth_mbps is not None:
            rate = phy.rate_bps / 1e6
            if abs(bandwidth_mbps / rate - 1) > 0.01:
                raise UserError(
                    f"MCS {self.mcs} at {self.channel_width_mhz} MHz with {self.spatial_streams} "
                    f"stream(s) is {rate:g} Mbps, not {bandwidth_mbps:g}: drop one of the two",
                    "bandwidth_mbps",
                )
        return phy


def parse_wifi(data: dict | WifiConfig | None) -> WifiConfig:
    """A WifiConfig from a (YAML) mapping; UserError naming the field otherwise."""
    if isinstance(data, WifiConfig):
        return data
    try:
        return WifiConfig(**(data or {}))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise UserError(err["msg"], f"network.wifi.{loc}" if loc else "network.wifi") from None
    except TypeError:
        raise UserError("must be a mapping of Wi-Fi settings", "network.wifi") from None


def default_contenders(stations: int, infrastructure: bool) -> int:
    """Transmitters contending at once: the AP plus half the stations (TCP's self-clocking leaves
    about half of them waiting for relayed data or ACKs at any time); ad hoc: half, at least 1."""
    half = math.ceil(stations / 2)
    return half + 1 if infrastructure else max(1, half)


@dataclass(frozen=True)
class WifiMedium:
    """One shared 802.11 channel as the flow model sees it. `contenders` sets the bulk capacity
    (and every message's contention when `fixed`, a user's override); otherwise a message's
    contention follows from how many messages leave with it (`contenders_for`)."""

    phy: WifiPhy
    contenders: int
    stations: int = 2
    infrastructure: bool = True
    fixed: bool = False

    def contenders_for(self, senders: int) -> int:
        """Transmitters contending while `senders` stations send in one collective step: each of
        them (at most every station), plus the AP relaying them (infrastructure)."""
        if self.fixed:
            return self.contenders
        senders = max(1, min(int(senders), self.stations))
        return senders + 1 if self.infrastructure else senders

    @property
    def efficiency(self) -> float:
        return bulk_efficiency(self.phy, self.contenders)

    @property
    def capacity_bps(self) -> float:
        return self.phy.rate_bps * self.efficiency

    def extra_bits(self, bits: float, senders: int = 1, share: int = 1) -> float:
        """Airtime beyond the bulk capacity's share for a message of `bits` in a collective step
        where `senders` stations send and its own sender sends `share` messages (they share
        A-MPDUs: one receiver, the AP, on the way up), in bits at the medium's capacity. A lone
        message (senders = share = 1) finds the channel idle. The airtime is of whole bytes; the
        bits the fluid part does not carry (a 1-bit message is a 1-byte payload) are added here,
        so that a faster channel is never slower."""
        payload = int(math.ceil(bits / 8))
        return _extra_bits(self, payload, int(senders), int(share)) + (8 * payload - bits)


@lru_cache(maxsize=65536)
def _extra_bits(medium: WifiMedium, payload_bytes: int, senders: int, share: int) -> float:
    """Per crossing. Infrastructure: a sender's `share` messages all go to the AP and share its
    A-MPDUs on the way up; down, the AP (one contender among the senders) falls behind, and the
    relays queued for each receiver share its A-MPDUs too (ns-3 shows both). Ad hoc: every
    message has its own receiver: no sharing."""
    lone = senders <= 1 and share <= 1 and not medium.fixed
    count = max(1, share) if medium.infrastructure else 1
    return (
        overhead_s(
            medium.phy,
            payload_bytes,
            medium.contenders_for(senders),
            count,
            lone=lone,
            capacity_contenders=medium.contenders,
        )
        * medium.capacity_bps
    )


def wifi_medium(
    config: WifiConfig | dict | None, bandwidth_mbps: float | None, stations: int, infrastructure: bool = True
) -> WifiMedium:
    """The medium of a wifi (infrastructure) or wifi-adhoc preset with `stations` devices."""
    cfg = parse_wifi(config)
    n = cfg.contenders or default_contenders(stations, infrastructure)
    return WifiMedium(cfg.phy(bandwidth_mbps), n, stations, infrastructure, fixed=cfg.contenders is not None)
