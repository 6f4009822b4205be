"""Shared pytest setup: tests marked `slow` (full-size variants of fast tests) run only with
`--slow` or ASTRASIM_SLOW=1 (CI sets it), so the default `python -m pytest -q` stays short."""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow") or os.environ.get("ASTRASIM_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --slow or ASTRASIM_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def capture_figures(monkeypatch):
    """capture(module): the figures `module._save` is asked to write, kept for inspection (the PNG
    is still written); closed after the test."""
    captured = []

    def capture(module):
        def keep(fig, path):
            captured.append(fig)
            fig.savefig(path, format="png")
            return path

        monkeypatch.setattr(module, "_save", keep)
        return captured

    yield capture
    import matplotlib.pyplot as plt

    for f in captured:
        plt.close(f)
