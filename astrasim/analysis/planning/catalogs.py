"""The plan's catalogs: the network options (profiles/networks.yaml) and the device catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from astrasim.errors import UserError
from astrasim.fileio import read_yaml_file

NO_NETWORK = "none"


class NetworkOption(BaseModel):
    """One entry of profiles/networks.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    kind: Literal["wifi", "wifi-adhoc", "switch", "mesh", "ideal"]
    bandwidth_mbps: float = Field(gt=0)
    latency_s: float | None = Field(None, ge=0)
    efficiency: float | None = Field(None, gt=0, le=1)
    max_devices: int = Field(64, ge=1)
    price_usd: float = Field(ge=0)
    price_per_device_usd: float = Field(0.0, ge=0)
    source: str
    description: str = ""

    def cost(self, n_devices: int) -> float:
        return self.price_usd + self.price_per_device_usd * n_devices


def _pydantic_message(exc: ValidationError, prefix: str) -> UserError:
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    return UserError(err["msg"], field=f"{prefix}.{loc}" if loc else prefix)


def _find_profile_file(name: str) -> Path:
    """profiles/<name> looked up where profiles and the device catalog are ($ASTRASIM_PROFILES,
    ./profiles, the source tree's profiles/)."""
    from astrasim.compute.profiles import profiles_dirs

    for d in profiles_dirs():
        if (d / name).is_file():
            return d / name
    raise UserError(f"profiles/{name} not found; run from the repository root or set ASTRASIM_PROFILES", field=name)


def load_networks(path: str | Path | None = None) -> dict[str, NetworkOption]:
    """The network catalog, name -> NetworkOption (default: profiles/networks.yaml)."""
    p = Path(path) if path else _find_profile_file("networks.yaml")
    if not p.is_file():
        raise UserError(f"network catalog '{p}' not found", field="networks")
    try:
        data = read_yaml_file(p, "networks")
        entries = data["networks"]
        nets = [NetworkOption(**e) for e in entries]
    except ValidationError as exc:
        raise _pydantic_message(exc, f"{p}: networks") from None
    except (KeyError, TypeError) as exc:
        raise UserError(f"malformed network catalog '{p}': {str(exc).splitlines()[0]}", field="networks") from None
    names = [n.name for n in nets]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise UserError(f"duplicate network name(s) {sorted(dup)} in '{p}'", field="networks")
    return {n.name: n for n in nets}


def load_devices(path: str | Path | None = None) -> dict:
    """The device catalog (owned by the strategies layer): name -> CatalogDevice."""
    from astrasim.compute.catalog import load_catalog

    return load_catalog(path)
