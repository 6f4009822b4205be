"""No two modules of astrasim import each other: read from the source with `ast`, every import
counts (module level, inside functions, and `if TYPE_CHECKING:` annotation-only ones), so a
cycle cannot hide behind a function-level import."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "astrasim"

# Known cycles, each with why it is still here (empty when there is none): a cycle not listed fails.
KNOWN: dict[frozenset[str], str] = {
    # annotation only (TYPE_CHECKING): sim.run_program's argument is the Program that program.py
    # compiles and whose run calls sim; a Protocol of what a run reads of a Program would end it
    frozenset({"astrasim.engine.program", "astrasim.engine.sim"}): "sim annotates Program",
}


def modules(root: Path = PACKAGE) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package's __init__)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def imports(name: str, path: Path, is_pkg: bool, known: set[str]) -> set[str]:
    """The astrasim modules `name` imports anywhere in its file (`from pkg import mod` names the
    submodule; `from mod import obj` the module)."""
    package = name if is_pkg else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                sub = f"{mod}.{a.name}"
                found.add(sub if sub in known else mod)
    return {m for m in found if m in known and m != name}


def graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    mods = modules(root)
    return {name: imports(name, path, is_pkg, set(mods)) for name, (path, is_pkg) in mods.items()}


def two_module_cycles(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    return [(a, b) for a, b in itertools.combinations(sorted(edges), 2) if b in edges[a] and a in edges[b]]


def test_no_two_modules_import_each_other():
    cycles = [c for c in two_module_cycles(graph()) if frozenset(c) not in KNOWN]
    assert not cycles, "import cycles (break them; see tests/test_import_cycles.py):\n" + "\n".join(
        f"  {a} <-> {b}" for a, b in cycles
    )


def test_every_known_cycle_still_exists():
    """An entry of KNOWN that no longer holds is removed, so the list stays the truth."""
    cycles = {frozenset(c) for c in two_module_cycles(graph())}
    assert not [sorted(k) for k in KNOWN if k not in cycles]


def test_the_detector_sees_every_kind_of_import(tmp_path):
    """Module level, relative, inside a function and under TYPE_CHECKING: each closes a cycle."""
    pkg = tmp_path / "astrasim"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from astrasim.b import thing\n")
    (pkg / "b.py").write_text("def f():\n    from astrasim import a\n")
    (pkg / "sub" / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import d\n")
    (pkg / "sub" / "d.py").write_text("from .c import x\n")
    (pkg / "e.py").write_text("import astrasim.a\n")
    assert two_module_cycles(graph(pkg)) == [("astrasim.a", "astrasim.b"), ("astrasim.sub.c", "astrasim.sub.d")]
