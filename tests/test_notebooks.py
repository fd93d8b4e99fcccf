"""Notebooks execute on a small committed run, and are committed without outputs."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import jupytext
import nbformat
import papermill
import pytest

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SMALL_RUN = Path(__file__).resolve().parent / "data" / "runs" / "chat-small"
COMMITTED_SWEEPS = NOTEBOOKS.parent / "benchmarks" / "results" / "sweeps"


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_notebook_is_committed_without_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, name


def test_delivery_behaviour_runs_on_a_small_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for item in SMALL_RUN.rglob("*"):
        target = run / item.relative_to(SMALL_RUN)
        if item.is_dir():
            target.mkdir(exist_ok=True)
        else:
            target.write_bytes(item.read_bytes())
    out = tmp_path / "executed.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / "delivery_behaviour.ipynb"),
        str(out),
        parameters={"run_dir": str(run)},
        cwd=str(NOTEBOOKS),
        kernel_name="python3",
        progress_bar=False,
    )
    executed = nbformat.read(out, as_version=4)
    text = "".join(
        o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "user view" in text and "latency p50" in text
    assert (run / "plots" / "latency.png").stat().st_size > 1000


@pytest.mark.parametrize("name", sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")))
def test_notebook_and_its_text_form_say_the_same(name: str) -> None:
    """Each notebook is paired with a jupytext percent file for review; both must agree."""
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    text = jupytext.read(NOTEBOOKS / f"{name}.py")
    assert [(c.cell_type, c.source) for c in notebook.cells] == [
        (c.cell_type, c.source) for c in text.cells
    ], f"run `jupytext --sync notebooks/{name}.py`"


def _execute(name: str, tmp_path: Path, **parameters: object) -> str:
    out = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"),
        str(out),
        parameters=parameters,
        cwd=str(NOTEBOOKS),
        kernel_name="python3",
        progress_bar=False,
    )
    executed = nbformat.read(out, as_version=4)
    return "".join(
        str(o.get("text", ""))
        + str(o.get("data", {}).get("text/plain", ""))
        + str(o.get("data", {}).get("text/markdown", ""))
        for c in executed.cells
        if c.cell_type == "code"
        for o in c.outputs
    )


def test_strategies_runs_on_the_committed_sweep(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    shutil.copytree(COMMITTED_SWEEPS / "strategies", sweep)
    text = _execute("strategies", tmp_path, sweep_dir=str(sweep))
    for routing in ("per_user_queue", "instance"):
        assert routing in text
    assert "kept the user view whole" in text or "view anomalies" in text
    assert (sweep / "plots" / "view_p99.png").stat().st_size > 1000


def test_cost_model_runs_on_its_defaults(tmp_path: Path) -> None:
    text = _execute("cost_model", tmp_path)
    assert "instance" in text and "1000000" in text.replace(",", "")


def test_queue_limits_runs_on_its_defaults(tmp_path: Path) -> None:
    text = _execute("queue_limits", tmp_path)
    # moto, like AWS, cuts an unpaged ListQueues at 1,000 while paging finds them all.
    assert "listed_unpaged" in text and "1200" in text
    assert "the queue quota is reached" in text and "503" in text


def test_capacity_runs_on_its_defaults_and_names_each_strategys_first_limit(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    text = _execute("capacity", tmp_path)
    assert time.monotonic() - started < 120  # the bound, on this 2-core machine
    for routing in ("per_user_queue", "preprovisioned", "fifo", "sharded", "instance"):
        assert routing in text
    assert "ListQueues paging" in text and "1000000" in text.replace(",", "")
