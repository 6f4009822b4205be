"""A point's fleet as result rows write it, and whether the model fits each device's memory.

* A fleet is written in result rows (column `hardware`) as run-length text,
  "1xjetson-orin-nano+3xraspberry-pi-5" (`fleet_text` / `fleet_names`).
* Memory (`MemoryCheck`): each device's footprint from the strategy's `memory` against its catalog
  `memory_gb` less `memory.headroom_gb`.
* Which catalog device each device is, partitions and op-time scaling: astrasim.compute.hardware.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

from astrasim.compute.catalog import load_catalog
from astrasim.compute.hardware import GB, device_memory, hardware_of
from astrasim.compute.profiles import profile_id
from astrasim.strategies import get


def fleet_text(names: tuple[str, ...]) -> str:
    """('jetson', 'pi', 'pi') -> '1xjetson+2xpi' (the `hardware` column of a mixed fleet)."""
    return "+".join(f"{len(list(g))}x{name}" for name, g in itertools.groupby(names))


def fleet_names(text: str) -> list[str]:
    """The per-device catalog names of a `hardware` value: a fleet text or one device name."""
    out: list[str] = []
    for part in text.split("+"):
        count, sep, name = part.partition("x")
        if sep and count.isdigit():
            out += [name] * int(count)
        else:
            out.append(part)
    return out


@dataclass(frozen=True)
class MemoryCheck:
    """Per-device footprint against memory: `need_gb` per device, `have_gb` (catalog; None unknown)."""

    need_gb: tuple[float, ...]
    have_gb: tuple[float | None, ...]
    headroom_gb: float

    @property
    def largest_gb(self) -> float:
        return max(self.need_gb)

    @property
    def worst(self) -> int:
        """The device with the least spare memory (the largest footprint when memory is unknown)."""

        def spare(i):
            have = self.have_gb[i]
            return (have - self.headroom_gb - self.need_gb[i]) if have is not None else float("inf")

        return min(range(len(self.need_gb)), key=lambda i: (spare(i), -self.need_gb[i], i))

    @property
    def fits(self) -> bool:
        return all(have is None or need <= have - self.headroom_gb for need, have in zip(self.need_gb, self.have_gb))

    def reason(self) -> str:
        """'needs 32.1 GB per device, has 8 GB (1 GB kept for the OS and runtime)' or ''."""
        if self.fits:
            return ""
        i = self.worst
        return fit_reason(
            self.need_gb[i],
            self.have_gb[i],
            self.headroom_gb,
            "per device" if len(set(self.need_gb)) == 1 else f"on device {i}",
        )


def fit_reason(need_gb: float, have_gb: float, headroom_gb: float, where: str = "per device") -> str:
    """Why a point does not fit, in one phrase (simulate, plan)."""
    return f"needs {need_gb:.1f} GB {where}, has {have_gb:g} GB ({headroom_gb:g} GB kept for the OS and runtime)"


def point_memory(point) -> list:
    """Each device's footprint (the strategy's `memory`): the prompt's and every generated token's
    KV cache included (output_tokens)."""
    return get(point.strategy).memory(
        point.model, point.devices, point.tokens, point.knobs, point.options(), point.output_tokens
    )


@functools.lru_cache(maxsize=4096)
def memory_check(point) -> MemoryCheck:
    """Each device's footprint (`point_memory`) against its catalog memory."""
    use = point_memory(point)
    measured_id, catalog = profile_id(point.profile_path), load_catalog()
    have = tuple(device_memory(hardware_of(point, d), measured_id, catalog) for d in range(point.devices))
    return MemoryCheck(tuple(m.total / GB for m in use), have, point.headroom_gb)
