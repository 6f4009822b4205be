"""The network layer: topologies, max-min fair flows, collectives as messages, the event loop.

It knows nothing of Transformers: it carries messages between devices.
"""

from astrasim.network.topology import DEFAULTS, KINDS, Fabric, build_topology, load_bandwidth_trace, topology_from_dict

__all__ = ["build_topology", "topology_from_dict", "load_bandwidth_trace", "Fabric", "KINDS", "DEFAULTS"]
