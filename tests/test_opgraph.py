"""The op-graph contract rejects graphs the engine could not run."""

import pytest

from astrasim.opgraph import Comm, Compute, OpGraph


def _graph(*ops, n=2):
    g = OpGraph(n_devices=n)
    for op in ops:
        g.add(op)
    return g


def test_valid_graph_passes():
    _graph(
        Compute("a0", 0, 1.0),
        Compute("a1", 1, 1.0),
        Comm("ag", "all_gather", (0, 1), 8.0, deps=("a0", "a1")),
        Compute("b0", 0, 1.0, deps=("ag",)),
    ).validate()


@pytest.mark.parametrize(
    "ops, message",
    [
        ((Compute("a", 0, 1.0), Compute("a", 1, 1.0)), "duplicate"),
        ((Compute("a", 0, 1.0, deps=("b",)), Compute("b", 0, 1.0)), "later in program order"),
        ((Compute("a", 2, 1.0),), "outside"),
        ((Compute("a", 0, -1.0),), "negative duration"),
        ((Comm("c", "broadcast", (0, 1), 8.0),), "root"),
        ((Comm("c", "p2p", (0,), 8.0),), "distinct and non-empty|exactly two"),
        ((Comm("c", "all_gather", (0, 0), 8.0),), "distinct"),
        ((Comm("c", "all_gather", (0, 1), -8.0),), "negative size"),
    ],
)
def test_invalid_graphs_are_rejected(ops, message):
    with pytest.raises(ValueError, match=message):
        _graph(*ops).validate()
