"""Test hosts in Linux network namespaces, joined by bandwidth-shaped links.

A `Testbed` is N hosts (namespaces ``<prefix>h0 .. h<N-1>``, each with ``eth0`` at 10.77.0.<i+1>/24)
plus one namespace ``<prefix>sw`` that holds the network between them. Nothing is created in the
caller's namespace: every veth pair is created inside the switch namespace with its peer moved
straight into a host namespace, so deleting the namespaces removes every link, bridge and qdisc.
The private range 10.77.0.0/24 exists only inside these namespaces.

Topologies
----------
``switch``  a bridge with one port per host, each port shaped to ``bandwidth_mbps`` in each
            direction (tbf on the switch port = the host's downlink, tbf on the host's eth0 = its
            uplink): full-duplex, one link per host, like a wired switch.
``shared``  one shared medium: the ingress of every bridge port is redirected (tc u32 + mirred)
            through one ``ifb`` device shaped to ``bandwidth_mbps``. Every frame, in any direction,
            from any host (TCP ACKs included) takes its turn on that one queue, exactly once: a
            half-duplex channel that station-to-station traffic crosses once (ad-hoc Wi-Fi),
            without Wi-Fi's MAC contention or loss (this kernel has no netem).

Shaping is tbf (token bucket, bytes counted at layer 2 including the Ethernet header) with a
small bucket (``burst_ms`` of tokens at the rate, default 1 ms, at least 2 frames) so that a
message sees the configured rate almost from its first frame; a smaller bucket made tbf fall
short of its rate at 50-100 Mbps in this VM (timer granularity). The queue is deep
(``limit_bytes``) so that TCP never loses a packet to it.

TCP congestion control inside the hosts is Reno (``congestion_control``; a per-namespace sysctl).
This machine's default, BBR, left a shaped link up to 35 % idle when the reverse direction carried
data too (an exchange): its window is capped at twice the bandwidth-delay product measured at the
empty-queue RTT, while the ACKs queue behind the reverse data. The simulator's flows keep their
bottleneck busy, as a loss-based congestion control does over a deep queue (cubic cannot be
selected inside a namespace here; Reno behaves the same for this purpose).

Cleanup
-------
`testbed()` is a context manager: on normal exit, on any exception, on Ctrl-C, and on SIGTERM /
SIGHUP (turned into KeyboardInterrupt while the testbed is open) it kills the processes it launched
in its namespaces and deletes its namespaces. Names carry the creating process id
(``asv-<pid>-<k>-``), so `clean_stale()` removes what a crashed earlier run (a pid no longer alive)
left behind, and never anything of a live run or anything not named ``asv-*``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

NS_PREFIX = "asv-"
SUBNET = "10.77.0"
TOPOLOGIES = ("switch", "shared")
Topology = Literal["switch", "shared"]
_COUNTER = itertools.count()
_NAME_RE = re.compile(r"^asv-(\d+)-")


class NetnsUnavailable(RuntimeError):
    """This machine cannot build test hosts (not root, no `ip netns`, no tbf ...). One-line reason."""


def _run(argv: list[str], *, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, input=input)
    if check and proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def unavailable_reason() -> str | None:
    """None when test hosts can be built here, else a one-line reason (checked by a real probe)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "astrasim validate needs root (network namespaces and tc shaping); run it as root"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"astrasim validate needs `{tool}` (iproute2), which is not installed"
    probe = f"{NS_PREFIX}{os.getpid()}-probe{next(_COUNTER)}"
    try:
        res = _run(["ip", "netns", "add", probe], check=False)
        if res.returncode != 0:
            return f"`ip netns add` does not work here: {res.stderr.strip() or 'unknown error'}"
        steps = [
            ["ip", "-n", probe, "link", "add", "a0", "type", "veth", "peer", "name", "a1"],
            [
                "tc",
                "-n",
                probe,
                "qdisc",
                "add",
                "dev",
                "a0",
                "root",
                "tbf",
                "rate",
                "10mbit",
                "burst",
                "6kb",
                "limit",
                "100kb",
            ],
            ["ip", "-n", probe, "link", "add", "b0", "type", "bridge"],
        ]
        for argv in steps:
            res = _run(argv, check=False)
            if res.returncode != 0:
                return f"`{' '.join(argv[3:6])}...` does not work here: {res.stderr.strip()}"
    finally:
        _run(["ip", "netns", "del", probe], check=False)
    return None


def ifb_available() -> bool:
    """Whether the shared-medium topology (ifb + u32 + mirred) can be built."""
    probe = f"{NS_PREFIX}{os.getpid()}-probe{next(_COUNTER)}"
    if _run(["ip", "netns", "add", probe], check=False).returncode != 0:
        return False
    try:
        steps = [
            ["ip", "-n", probe, "link", "add", "a0", "type", "veth", "peer", "name", "a1"],
            ["ip", "-n", probe, "link", "add", "i0", "type", "ifb"],
            ["tc", "-n", probe, "qdisc", "add", "dev", "a0", "ingress"],
            [
                "tc",
                "-n",
                probe,
                "filter",
                "add",
                "dev",
                "a0",
                "parent",
                "ffff:",
                "protocol",
                "all",
                "u32",
                "match",
                "u32",
                "0",
                "0",
                "action",
                "mirred",
                "egress",
                "redirect",
                "dev",
                "i0",
            ],
        ]
        return all(_run(a, check=False).returncode == 0 for a in steps)
    finally:
        _run(["ip", "netns", "del", probe], check=False)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _list_namespaces() -> list[str]:
    res = _run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in res.stdout.splitlines() if line.strip()]


def _kill_namespace_pids(ns: str) -> None:
    res = _run(["ip", "netns", "pids", ns], check=False)
    for tok in res.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(tok), signal.SIGKILL)


def _delete_namespaces(names: list[str]) -> None:
    for ns in names:
        _kill_namespace_pids(ns)
    for ns in names:
        _run(["ip", "netns", "del", ns], check=False)


def clean_stale() -> list[str]:
    """Delete namespaces named ``asv-<pid>-*`` whose creating process is gone."""
    stale = [ns for ns in _list_namespaces() if (m := _NAME_RE.match(ns)) and not _pid_alive(int(m.group(1)))]
    _delete_namespaces(stale)
    return stale


@dataclass
class Testbed:
    """N shaped test hosts; build with `testbed()` (which also tears it down)."""

    n_hosts: int
    topology: Topology
    bandwidth_mbps: float
    burst_ms: float = 0.5
    limit_bytes: int = 8 * 1024 * 1024
    congestion_control: str | None = "reno"
    prefix: str = ""
    namespaces: list[str] = field(default_factory=list)
    _procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def switch_ns(self) -> str:
        return f"{self.prefix}sw"

    def host_ns(self, i: int) -> str:
        return f"{self.prefix}h{i}"

    @staticmethod
    def host_ip(i: int) -> str:
        return f"{SUBNET}.{i + 1}"

    # -- building -------------------------------------------------------------------------------
    def _tc(self, ns: str, *args: str) -> None:
        _run(["tc", "-n", ns, *args])

    def _ip(self, ns: str, *args: str) -> None:
        _run(["ip", "-n", ns, *args])

    def _tbf(self, ns: str, dev: str, mbps: float, verb: str = "add") -> None:
        burst = max(2 * 1514, int(mbps * 1e6 / 8 * self.burst_ms / 1e3))
        self._tc(
            ns,
            "qdisc",
            verb,
            "dev",
            dev,
            "root",
            "handle",
            "1:",
            "tbf",
            "rate",
            f"{int(round(mbps * 1e6))}bit",
            "burst",
            str(burst),
            "limit",
            str(self.limit_bytes),
        )

    def _redirect_ingress(self, port: str, ifb: str) -> None:
        sw = self.switch_ns
        self._tc(sw, "qdisc", "add", "dev", port, "ingress")
        self._tc(
            sw,
            "filter",
            "add",
            "dev",
            port,
            "parent",
            "ffff:",
            "protocol",
            "all",
            "u32",
            "match",
            "u32",
            "0",
            "0",
            "action",
            "mirred",
            "egress",
            "redirect",
            "dev",
            ifb,
        )

    def build(self) -> None:
        sw = self.switch_ns
        for ns in [sw] + [self.host_ns(i) for i in range(self.n_hosts)]:
            _run(["ip", "netns", "add", ns])
            self.namespaces.append(ns)
            self._ip(ns, "link", "set", "lo", "up")
        self._ip(sw, "link", "add", "br0", "type", "bridge", "forward_delay", "0", "stp_state", "0")
        self._ip(sw, "link", "set", "br0", "up")
        if self.topology == "shared":
            self._ip(sw, "link", "add", "ifb0", "type", "ifb")
            self._ip(sw, "link", "set", "ifb0", "up")
            self._tbf(sw, "ifb0", self.bandwidth_mbps)
        for i in range(self.n_hosts):
            h, port = self.host_ns(i), f"p{i}"
            self._ip(sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h)
            self._ip(sw, "link", "set", port, "master", "br0")
            self._ip(sw, "link", "set", port, "up")
            if self.congestion_control:
                _run(
                    [
                        "ip",
                        "netns",
                        "exec",
                        h,
                        "sysctl",
                        "-q",
                        "-w",
                        f"net.ipv4.tcp_congestion_control={self.congestion_control}",
                    ]
                )
            self._ip(h, "addr", "add", f"{self.host_ip(i)}/24", "dev", "eth0")
            self._ip(h, "link", "set", "eth0", "up")
            if self.topology == "switch":
                self._tbf(sw, port, self.bandwidth_mbps)  # host i's downlink
                self._ip(sw, "link", "add", f"u{i}", "type", "ifb")  # host i's uplink
                self._ip(sw, "link", "set", f"u{i}", "up")
                self._tbf(sw, f"u{i}", self.bandwidth_mbps)
                self._redirect_ingress(port, f"u{i}")
            else:
                self._redirect_ingress(port, "ifb0")

    def set_bandwidth(self, mbps: float) -> None:
        """Re-shape every shaped hop to `mbps` (the testbed stays up)."""
        if self.topology == "shared":
            self._tbf(self.switch_ns, "ifb0", mbps, verb="change")
        else:
            for i in range(self.n_hosts):
                self._tbf(self.switch_ns, f"p{i}", mbps, verb="change")
                self._tbf(self.switch_ns, f"u{i}", mbps, verb="change")
        self.bandwidth_mbps = mbps

    # -- running --------------------------------------------------------------------------------
    def command(self, i: int, argv: list[str]) -> list[str]:
        """argv that runs `argv` inside host i's namespace."""
        return ["ip", "netns", "exec", self.host_ns(i), *argv]

    def popen(self, i: int, argv: list[str], **kwargs) -> subprocess.Popen:
        """Start `argv` in host i; the testbed kills it on teardown if it is still running."""
        proc = subprocess.Popen(self.command(i, argv), **kwargs)
        self._procs.append(proc)
        return proc

    def qdisc_stats(self) -> str:
        """`tc -s qdisc` of every namespace (drops, overlimits) for diagnostics."""
        return "\n".join(
            f"[{ns}]\n" + _run(["tc", "-s", "-n", ns, "qdisc"], check=False).stdout for ns in self.namespaces
        )

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        for proc in self._procs:
            with contextlib.suppress(Exception):
                proc.wait(timeout=10)
        self._procs.clear()
        _delete_namespaces(list(self.namespaces))
        self.namespaces.clear()


@contextlib.contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """While open (main thread only), SIGTERM and SIGHUP raise KeyboardInterrupt so that `finally`
    blocks and context managers run their cleanup; previous handlers are restored on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    old = {s: signal.signal(s, _raise) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def testbed(n_hosts: int, topology: Topology, bandwidth_mbps: float, **kwargs) -> Iterator[Testbed]:
    """Build N shaped hosts, yield the Testbed, and always tear everything down."""
    if topology not in TOPOLOGIES:
        raise ValueError(f"topology must be one of {TOPOLOGIES}, got {topology!r}")
    if n_hosts < 1 or n_hosts > 250:
        raise ValueError(f"n_hosts must be in 1..250, got {n_hosts}")
    if bandwidth_mbps <= 0:
        raise ValueError(f"bandwidth_mbps must be positive, got {bandwidth_mbps}")
    reason = unavailable_reason()
    if reason:
        raise NetnsUnavailable(reason)
    clean_stale()
    bed = Testbed(n_hosts, topology, bandwidth_mbps, prefix=f"{NS_PREFIX}{os.getpid()}-{next(_COUNTER)}-", **kwargs)
    with signals_as_interrupt():
        try:
            bed.build()
            yield bed
        finally:
            bed.close()


LOCK_PATH = "/tmp/astrasim-validate.lock"


@contextlib.contextmanager
def machine_lock(log=print, path: str = LOCK_PATH) -> Iterator[None]:
    """One measuring run at a time on this machine: two validations at once would disturb each
    other's timings. Waits (saying so once) for the run holding the lock; released on exit, also
    when the holder dies (flock)."""
    import fcntl

    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            log(f"  waiting for another astrasim validate run (pid {holder}) to finish")
            fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def leftovers() -> list[str]:
    """Namespaces of this process still present (for tests: must be empty after a testbed closes)."""
    mine = f"{NS_PREFIX}{os.getpid()}-"
    return [ns for ns in _list_namespaces() if ns.startswith(mine)]
