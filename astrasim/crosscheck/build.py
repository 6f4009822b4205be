"""Build the ns-3 reference program (collective.cc) against the `ns3` wheel with the system g++.

Nothing is imported from the wheel (its Python bindings take ~20 s to load): we only need its
headers and shared libraries, found through the package's location on disk. The binary goes to a
cache folder keyed by a hash of the source, the wheel's version and the compiler, so it is built
once (about 30 s) and rebuilt whenever any of them changes. It is never committed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

from astrasim.errors import UserError
from astrasim.fileio import atomic_path

SOURCE = Path(__file__).with_name("collective.cc")
NS3_VERSION = "3.44"
LIBRARIES = ("wifi", "internet", "core", "network", "mobility", "point-to-point", "applications", "propagation")
INSTALL_HINT = "pip install 'astrasim[crosscheck]' (the ns3 wheel) and a C++20 g++"


def ns3_root() -> Path | None:
    """The wheel's install folder (with include/ and lib64/), or None when it is not installed."""
    try:
        spec = importlib.util.find_spec("ns3")
    except (ImportError, ValueError):
        return None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        root = Path(loc)
        if (root / "include" / "ns3").is_dir() and (root / "lib64").is_dir():
            return root
    return None


def unavailable_reason() -> str | None:
    """Why the cross-check cannot run here (None: it can)."""
    root = ns3_root()
    if root is None:
        return f"the ns3 package is not installed; {INSTALL_HINT}"
    version = importlib.metadata.version("ns3")
    if not version.startswith(NS3_VERSION):
        return f"ns3 {version} is installed; the cross-check is written for ns-3 {NS3_VERSION}"
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        return f"no C++ compiler ({os.environ.get('CXX', 'g++')}) on PATH; {INSTALL_HINT}"
    return None


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "astrasim" / "ns3"


def binary_path() -> Path:
    """Where the binary for this source + wheel + compiler lives (built or not)."""
    cxx = os.environ.get("CXX", "g++")
    key = hashlib.sha256()
    key.update(SOURCE.read_bytes())
    key.update(importlib.metadata.version("ns3").encode())
    key.update(subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout.encode())
    return cache_dir() / f"collective-{key.hexdigest()[:16]}"


def build(log=print) -> Path:
    """The path of the built reference program (compiling it first if needed)."""
    reason = unavailable_reason()
    if reason:
        raise UserError(reason, field="crosscheck")
    exe = binary_path()
    if exe.is_file():
        return exe
    root = ns3_root()
    assert root is not None
    exe.parent.mkdir(parents=True, exist_ok=True)
    lib = root / "lib64"
    cmd = [
        os.environ.get("CXX", "g++"),
        "-O2",
        "-std=c++20",
        f"-I{root / 'include'}",
        str(SOURCE),
        "-o",
        "OUT",
        f"-L{lib}",
        f"-Wl,-rpath,{lib}",
        "-Wl,--no-as-needed",
        *[f"-lns{NS3_VERSION}-{name}" for name in LIBRARIES],
    ]
    log(f"building the ns-3 reference program ({exe.name}, about 30 s)")
    with atomic_path(exe) as tmp:
        cmd[cmd.index("OUT")] = str(tmp)
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise UserError(f"g++ failed to build {SOURCE.name}: {done.stderr.strip()[-800:]}", field="crosscheck")
    os.chmod(exe, 0o755)
    return exe
