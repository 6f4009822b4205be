"""The `astrasim` command line: a thin typer app. Each command lives in astrasim/commands/<name>.py
and registers itself here; commands parse options, call the library, and print."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="astrasim",
    help="Simulate multi-device Transformer inference (ASTRA, tensor/sequence/block parallelism) over slow links.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

COMMAND_MODULES = (
    "profile",
    "simulate",
    "sweep",
    "plan",
    "whatif",
    "accuracy",
    "validate",
    "crosscheck",
    "calibrate_device",
    "published",
    "models",
)

for _name in COMMAND_MODULES:
    importlib.import_module(f"astrasim.commands.{_name}").register(app)
