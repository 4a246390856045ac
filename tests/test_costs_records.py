"""Cost records: measuring one on any device, reading it back, describing and plotting it, and the chapter's live-GPU
branch, run here with the CPU standing in for the GPU (no test needs a GPU)."""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import utils.chapters.costs_records as cost_records  # noqa: E402
from utils.chapters.costs_records import (  # noqa: E402
    COST_FILE_KEYS,
    H100_COSTS,
    describe_costs,
    load_costs,
    measure_costs,
    plot_kernel_record,
)

CHAPTER = Path(__file__).resolve().parents[1] / "chapters" / "costs.ipynb"
TINY = {"log2_sizes": (10, 11), "batch_sizes": (4,), "widths": (6, 8, 3), "repeats": 1}


@pytest.fixture(scope="module")
def cpu_record():
    return measure_costs("cpu", command="pytest", **TINY)


def test_a_cpu_record_round_trips_through_json_and_load_costs(cpu_record, tmp_path):
    assert tuple(cpu_record) == COST_FILE_KEYS
    assert cpu_record["provenance"]["command"] == "pytest" and cpu_record["provenance"]["device"] == "cpu"
    assert [(row["n_elements"], row["dtype"]) for row in cpu_record["kernels"]] == [
        (1024, "float32"), (2048, "float32"), (1024, "bfloat16"), (2048, "bfloat16")]
    assert [row["batch_size"] for row in cpu_record["mlp_steps"]] == [4]
    path = tmp_path / "record.json"
    path.write_text(json.dumps(cpu_record))
    assert load_costs(path) == json.loads(json.dumps(cpu_record))


def test_describe_costs_has_a_line_per_kernel_and_per_step(cpu_record):
    text = describe_costs(cpu_record)
    assert text.count("float32") == 2 and text.count("bfloat16") == 2
    assert "batch 4:" in text and "dropout / copy" in text


@pytest.mark.parametrize("source", ["stored", "measured"])
def test_plot_kernel_record_draws_both_kernels_in_both_dtypes_with_their_floors(source, cpu_record):
    record = load_costs(H100_COSTS) if source == "stored" else cpu_record
    fig, ax = plt.subplots()
    plot_kernel_record(ax, record, title="t")
    labels = [line.get_label() for line in ax.get_lines()]
    for name in ("F.dropout, float32", "naive, float32", "F.dropout, bfloat16", "naive, bfloat16",
                 "bytes floor, float32", "bytes floor, bfloat16", "copy"):
        assert name in labels, name
    floors = {line.get_label(): line.get_ydata()[0] for line in ax.get_lines()}
    assert floors["bytes floor, float32"] == 9 / 8 and floors["bytes floor, bfloat16"] == 5 / 4
    plt.close(fig)


def test_bad_records_and_settings_are_rejected(cpu_record):
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="no float32 or bfloat16"):
        plot_kernel_record(ax, {**cpu_record, "kernels": []}, title="t")
    uneven = [row for row in cpu_record["kernels"] if row != cpu_record["kernels"][0]]
    with pytest.raises(ValueError, match="different sizes"):
        plot_kernel_record(ax, {**cpu_record, "kernels": uneven}, title="t")
    plt.close(fig)
    with pytest.raises(ValueError, match="MIN <= MAX"):
        measure_costs("cpu", log2_sizes=(5, 4))
    with pytest.raises(ValueError, match="pair"):
        measure_costs("cpu", log2_sizes=(5,))
    with pytest.raises(ValueError, match="repeats"):
        measure_costs("cpu", log2_sizes=(4, 4), repeats=0)
    with pytest.raises(ValueError):
        measure_costs("cuda:99" if torch.cuda.is_available() else "cuda", log2_sizes=(4, 4))


def _cells_with(notebook, text):
    return [cell.source for cell in notebook.cells if cell.cell_type == "code" and text in cell.source]


def test_the_chapters_live_gpu_branch_runs_where_a_gpu_is_present(monkeypatch):
    """Run the chapter's import cell, then its GPU cell as if torch saw a GPU, measuring on the CPU instead."""
    notebook = nbformat.read(CHAPTER, as_version=4)
    (imports,) = _cells_with(notebook, "from utils.chapters.costs_records import")
    (live_cell,) = _cells_with(notebook, "torch.cuda.is_available()")
    namespace: dict = {}
    exec(compile(imports, "costs-imports", "exec"), namespace)
    requested = []

    def on_the_cpu(device, **settings):
        requested.append((device, settings))
        return measure_costs("cpu", command=settings["command"], **TINY)

    namespace["measure_costs"] = on_the_cpu
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(plt, "show", lambda: None)
    exec(compile(live_cell, "costs-live-gpu", "exec"), namespace)
    assert [device for device, _ in requested] == ["cuda"]
    assert namespace["live"]["provenance"]["command"] == "chapters/costs.ipynb"
    labels = [line.get_label() for line in namespace["ax"].get_lines()]
    assert "F.dropout, bfloat16" in labels and "naive, float32" in labels
    plt.close("all")


def test_the_tool_and_the_chapter_share_one_measuring_function():
    import tools.measure_gpu_costs as tool

    assert tool.measure_costs is cost_records.measure_costs
