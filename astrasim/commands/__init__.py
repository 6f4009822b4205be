"""CLI commands, one module each. `user_errors` turns library UserErrors into one line + exit 2."""

from __future__ import annotations

import functools
import sys

import typer

from astrasim.errors import UserError


def user_errors(fn):
    """Decorator for command functions: UserError -> 'error: <field>: <fix>' on stderr, exit code 2;
    a simulation that cannot finish (the engine's DeadlockError: work stuck forever) -> its first
    line, exit 2; Ctrl-C -> exit 130 with one line (callers must leave no half-written file)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from astrasim.engine.result import DeadlockError

        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(code=2) from None
        except DeadlockError as exc:
            first = (str(exc).splitlines() or ["stuck"])[0]
            print(
                f"error: network: the simulation cannot finish ({first}); a link or bandwidth trace that stays "
                f"at 0 Mbps never delivers the rest",
                file=sys.stderr,
            )
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise typer.Exit(code=130) from None

    return wrapper
