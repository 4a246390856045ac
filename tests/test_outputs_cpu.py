"""The record of the CPU model a notebook's outputs were stored on, and the comparison used on another one."""

from __future__ import annotations

import nbformat
import pytest

from tools.outputs_cpu import CPU_FIELD, METADATA_KEY, cpu_model, output_kinds, record_cpu, stored_cpu
from tools.toc import toc_notebooks


@pytest.mark.parametrize("path", toc_notebooks(), ids=lambda path: path.name)
def test_every_notebook_records_the_cpu_model_of_its_outputs(path):
    assert stored_cpu(path), f"{path.name} does not say which CPU model its outputs come from: run make notebooks"


def test_output_kinds_ignore_content_and_how_a_stream_was_split():
    one = [{"output_type": "stream", "name": "stdout", "text": "accuracy 97.6 %\n"},
           {"output_type": "display_data", "data": {"image/png": "AAAA", "text/plain": "<Figure>"}}]
    other = [{"output_type": "stream", "name": "stdout", "text": "accuracy "},
             {"output_type": "stream", "name": "stdout", "text": "97.2 %\n"},
             {"output_type": "display_data", "data": {"text/plain": "<Figure 2>", "image/png": "BBBB"}}]
    assert output_kinds(one) == output_kinds(other)


def test_output_kinds_see_a_missing_figure_or_a_new_stream():
    text = [{"output_type": "stream", "name": "stdout", "text": "x"}]
    figure = [{"output_type": "display_data", "data": {"image/png": "AAAA"}}]
    warning = [{"output_type": "stream", "name": "stderr", "text": "UserWarning"}]
    assert output_kinds(text + figure) != output_kinds(text)
    assert output_kinds(text + warning) != output_kinds(text)


def test_record_cpu_writes_this_machine_into_the_notebook(tmp_path):
    notebook = nbformat.v4.new_notebook()
    record_cpu(notebook)
    path = tmp_path / "n.ipynb"
    nbformat.write(notebook, path)
    assert notebook.metadata[METADATA_KEY][CPU_FIELD] == cpu_model() == stored_cpu(path)
