"""tools/seed_shift.py: a chapter's seeds shifted in an in-memory copy, and its failing cells reported."""

from __future__ import annotations

import nbformat

from tools.seed_shift import failures, shift_source, shifted


def test_every_kind_of_seed_the_chapters_name_is_shifted():
    source = ("rng = utils.setup(seed=0)\nseeds = [0, 1, 2]\ncnn_seeds = (0, 1)\nSEEDS = range(5)\n"
              "more_seeds = list(range(2, 7))\nmodel = make(784, seed=12)\nrandom_state = 0\nx = 3")
    assert shift_source(source, 100) == (
        "rng = utils.setup(seed=100)\nseeds = [100, 101, 102]\ncnn_seeds = (100, 101)\nSEEDS = range(100, 105)\n"
        "more_seeds = list(range(102, 107))\nmodel = make(784, seed=112)\nrandom_state = 0\nx = 3")


def test_a_copy_is_shifted_and_the_original_left_alone():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("seed=1"),
                                               nbformat.v4.new_markdown_cell("seed=1"),
                                               nbformat.v4.new_code_cell("x = 2")])
    copied, changed = shifted(notebook, 10)
    assert changed == 1 and copied.cells[0].source == "seed=11" and copied.cells[1].source == "seed=1"
    assert notebook.cells[0].source == "seed=1"


def test_failures_name_the_cell_the_error_and_the_failing_line():
    cell = nbformat.v4.new_code_cell("assert x > 1")
    cell.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="",
                                           traceback=["\x1b[0;31m---->  3\x1b[0m assert x > 1"])]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), cell])
    assert failures(notebook) == ["cell 1: AssertionError:  ---->  3 assert x > 1"]


def test_cells_that_raise_on_purpose_are_not_failures():
    cell = nbformat.v4.new_code_cell("raise ValueError('shown')", metadata={"tags": ["raises-exception"]})
    cell.outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="shown", traceback=[])]
    assert failures(nbformat.v4.new_notebook(cells=[cell])) == []
