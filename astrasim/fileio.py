"""Files in and out, safely: atomic writes (results and profiles appear whole or not at all, on
Ctrl-C or errors), output paths checked before anything runs, and the one YAML loader every
YAML reader of the project uses (no aliases, bounded nesting, no duplicate keys)."""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from astrasim.errors import UserError

# ---------------------------------------------------------------------------------------------
# Values and input paths


def format_value(v: Any) -> str:
    """How every value is written to a result file: deterministic, round-trips floats exactly."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return repr(v)
    return str(v)


def resolve_file(path: str, base_dir: str | Path | None, field: str) -> Path:
    """An input file named in a scenario or plan: relative to its folder first, then as given."""
    p = Path(path)
    base = Path(base_dir) if base_dir is not None else Path(".")
    for cand in ([base / p] if not p.is_absolute() else []) + [p]:
        if cand.is_file():
            return cand
    raise UserError(f"file '{path}' not found (relative to the scenario file); give an existing file", field=field)


# ---------------------------------------------------------------------------------------------
# YAML

MAX_YAML_DEPTH = 50  # nesting levels; no astrasim file needs more than ~6


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors/aliases (an alias bomb expands exponentially), nesting
    deeper than MAX_YAML_DEPTH (the composer recurses) and duplicate mapping keys (the last
    would silently win)."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise _YamlRefusal(f"line {mark.line + 1}: aliases (*name) are not supported; write the value out")
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise _YamlRefusal(
                f"line {event.start_mark.line + 1}: anchors (&{event.anchor}) are not supported; write the value out"
            )
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise _YamlRefusal(f"line {event.start_mark.line + 1}: nested deeper than {MAX_YAML_DEPTH} levels")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                dup = key in seen
                seen.add(key)
            except TypeError:  # unhashable key: SafeLoader reports it
                continue
            if dup:
                raise _YamlRefusal(
                    f"line {key_node.start_mark.line + 1}: duplicate key '{key}' (the last would "
                    "silently win); keep one"
                )
        return super().construct_mapping(node, deep=deep)


class _YamlRefusal(Exception):
    """A YAML construct astrasim refuses (message: where and why)."""


def _flow_depth_line(text: str) -> int | None:
    """The line where [ ] / { } nesting first exceeds MAX_YAML_DEPTH (quotes and comments
    skipped roughly), else None: PyYAML's scanner is quadratic in that depth, so it is checked
    before parsing."""
    depth, quote, line = 0, "", 1
    for i, c in enumerate(text):
        if c == "\n":
            line += 1
            if quote != '"':
                quote = ""  # comments (and, roughly, plain scalars) end at the line
        elif quote:
            if c == quote and not (quote == '"' and text[i - 1] == "\\"):
                quote = ""
        elif c in "'\"" and (i == 0 or text[i - 1] in " \t[{,:\n"):
            quote = c
        elif c == "#" and (i == 0 or text[i - 1] in " \t\n"):
            quote = "#"
        elif c in "[{":
            depth += 1
            if depth > MAX_YAML_DEPTH:
                return line
        elif c in "]}":
            depth = max(0, depth - 1)
    return None


def parse_yaml(text: str, source: str, field: str) -> Any:
    """Parse YAML text with the strict loader; any problem is one UserError naming `source`."""
    deep = _flow_depth_line(text)
    if deep is not None:
        raise UserError(f"'{source}' line {deep}: nested deeper than {MAX_YAML_DEPTH} levels", field=field)
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - _StrictLoader is a SafeLoader
    except _YamlRefusal as exc:
        raise UserError(f"'{source}' {exc}", field=field) from None
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())
        raise UserError(f"malformed YAML in '{source}': {first}; fix the syntax", field=field) from None
    except RecursionError:  # pragma: no cover - the depth bound comes first
        raise UserError(f"'{source}' is nested too deeply", field=field) from None


def read_yaml_file(path: str | Path, field: str) -> Any:
    """A YAML file parsed with the strict loader (UserError naming `field` when missing or bad)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"file '{p}' not found; give an existing YAML file", field=field)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read '{p}' as text ({type(exc).__name__}); give a YAML file", field=field) from None
    return parse_yaml(text, str(p), field)


# ---------------------------------------------------------------------------------------------
# Output paths


def check_output_path(path: str | Path, field: str, inputs: Iterable[str | Path] = ()) -> Path:
    """Refuse, before anything runs, an output path that cannot be written or would overwrite an
    input: a directory, a path under a file, a folder we may not write, or one of `inputs`."""
    target = Path(path)
    if target.is_dir():
        raise UserError(f"'{target}' is a directory; give a file path inside it", field=field)
    parent = target.parent
    ancestor = parent
    while not ancestor.exists():
        if ancestor.is_symlink():  # a dangling link cannot be created through
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"'{ancestor}' is a file, so '{target}' cannot be created; choose another path", field=field)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserError(f"cannot write in '{ancestor}' (permission denied); choose a writable folder", field=field)
    if target.exists() and not os.access(target, os.W_OK) and not os.access(parent, os.W_OK):
        raise UserError(f"'{target}' is not writable; choose another path", field=field)
    for item in inputs:
        if same_file(target, item):
            raise UserError(
                f"'{target}' is an input of this run ('{item}'); writing it would destroy it; "
                "choose another output path",
                field=field,
            )
    probe_output(target, field)
    return target


def check_output_folder(
    folder: str | Path, names: Iterable[str], field: str, inputs: Iterable[str | Path] = ()
) -> Path:
    """`check_output_path` for every file a command writes in `folder` (which need not exist yet)."""
    inputs = list(inputs)
    for name in names:
        check_output_path(Path(folder) / name, field, inputs)
    return Path(folder)


def probe_output(path: str | Path, field: str) -> None:
    """Create and remove a file where `path` will be written (as `atomic_path` will: a temporary
    file beside it; a folder still to be made: a temporary folder in its nearest existing
    ancestor), so a folder that passes the permission checks but refuses files (/proc, /sys, a
    read-only or full filesystem) is one line before any work, and nothing is left behind."""
    target = Path(path)
    existing = target.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if existing == target.parent:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=existing)
            os.close(fd)
            os.unlink(tmp)
        else:
            os.rmdir(tempfile.mkdtemp(prefix=".astrasim-probe.", dir=existing))
    except OSError as exc:
        raise UserError(
            f"cannot create '{target}' ({exc.strerror or type(exc).__name__} in '{existing}'); "
            "choose a folder where files can be written",
            field=field,
        ) from None


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file (existing or not)."""
    pa, pb = Path(a), Path(b)
    with contextlib.suppress(OSError):
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    return pa.resolve() == pb.resolve()


# ---------------------------------------------------------------------------------------------
# Atomic writes


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside `path`; on success rename it over `path`, on failure delete it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are ordinary files
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_csv_atomic(path: str | Path, df, float_format: str | None = None) -> None:
    """A DataFrame as CSV (no index), whole or not at all."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format=float_format)
