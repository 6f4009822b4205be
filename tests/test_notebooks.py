"""The notebooks run top to bottom headless (nbclient) on the reduced grid."""

from pathlib import Path

import nbformat
import pytest

nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize("name", ["pareto.ipynb", "capacity_planning.ipynb"])
def test_notebook_runs_headless(name, tmp_path, monkeypatch):
    monkeypatch.setenv("ASTRASIM_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("ASTRASIM_NOTEBOOK_OUT", str(tmp_path))
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks without outputs"
    # no wall-clock assertion: speed is measured by bench scripts, not by timed tests
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "Error" not in text
    assert "np.int64" not in text and "np.float64" not in text  # numbers print as people write them
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    if name == "pareto.ipynb":
        assert {
            "pareto_accuracy_vs_latency.png",
            "pareto_accuracy_vs_bits.png",
            "pareto_accuracy_vs_cost.png",
            "latency_vs_bandwidth.png",
            "speedup.png",
            "measured_accuracy.png",
        } <= set(pngs)
        assert "gpt2-s at 20 Mbps with 4 devices" in text
    else:
        assert "plan_cost_vs_latency.png" in pngs
        assert "The cheapest setup that serves GPT2-S 1024-token prefill" in text or "Nothing meets" in text


def test_generator_matches_committed_notebooks(tmp_path):
    """notebooks/*.ipynb are what build_notebooks.py writes (edit the generator, not the JSON)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_notebooks", NOTEBOOKS / "build_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name, nb in (("pareto.ipynb", mod.pareto()), ("capacity_planning.ipynb", mod.capacity())):
        committed = nbformat.read(NOTEBOOKS / name, as_version=4)
        assert [c.source for c in committed.cells] == [c.source for c in nb.cells], name
