"""Notebooks execute on a small committed run, and are committed without outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import papermill
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SMALL_RUN = Path(__file__).resolve().parent / "data" / "runs" / "chat-small"


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
