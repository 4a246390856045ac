"""The paper chapters' shared module: the scale switch, the paper's numbers and settings, the differences table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from utils.chapters.paper import (
    CHAPTER_TITLES,
    LARGE_SCALE,
    PAPER_FINDINGS,
    PAPER_SETTINGS,
    PAPER_TABLE2,
    SCALE_ENV,
    chapter_sweep,
    differences,
    plain_levels,
    scale_name,
)
from utils.sweeps import PAPER_SWEEPS, SWEEPS


@pytest.fixture
def no_scale_env(monkeypatch):
    monkeypatch.delenv(SCALE_ENV, raising=False)


def test_the_default_scale_is_the_laptop_one(no_scale_env):
    assert scale_name() == "laptop"
    assert chapter_sweep("table2") is SWEEPS["table2"]


@pytest.mark.parametrize("value, expected", [("paper", "paper"), (" Laptop ", "laptop"), ("", "laptop")])
def test_the_environment_variable_picks_the_scale(monkeypatch, value, expected):
    monkeypatch.setenv(SCALE_ENV, value)
    assert scale_name() == expected


def test_the_paper_scale_reads_the_paper_scale_sweeps(monkeypatch):
    monkeypatch.setenv(SCALE_ENV, "paper")
    assert chapter_sweep("table2") is PAPER_SWEEPS["table2"]
    assert chapter_sweep("fig9", "laptop") is SWEEPS["fig9"]
    with pytest.raises(ValueError, match="no sweep 'fig10_mnist5k' at the paper scale"):
        chapter_sweep("fig10_mnist5k")


@pytest.mark.parametrize("value", ["huge", "gpu"])
def test_an_unknown_scale_is_refused_with_the_allowed_values(monkeypatch, value):
    monkeypatch.setenv(SCALE_ENV, value)
    with pytest.raises(ValueError, match="laptop, paper"):
        scale_name()
    with pytest.raises(TypeError, match="must be a str"):
        scale_name(3)


def test_the_papers_numbers_are_those_of_its_table_2():
    assert {name: ref.error_percent for name, ref in PAPER_TABLE2.items()} == {
        "no dropout": 1.60, "dropout": 1.25, "dropout + max-norm": 1.06}
    assert all(source.startswith("Fig.") for _, source in PAPER_FINDINGS.values())


@pytest.mark.parametrize("name", list(SWEEPS)[:5])
def test_the_differences_table_sets_every_setting_side_by_side(name):
    table = differences(name)
    assert list(table.index) == list(PAPER_SETTINGS)
    assert list(table.columns)[0] == "this page" and list(table.columns)[-1] == "the paper"
    assert table.loc["learning rate", "the paper"].startswith("not stated")
    assert table.loc["seeds", "this page"] == str(len(SWEEPS[name].seeds))


def test_the_table2_differences_give_the_update_counts():
    table = differences("table2")
    assert table.loc["weight updates", "this page"] == "800 (20 epochs of 40)"
    assert table.loc["weight updates", "the paper"] == "about 1 million"
    assert table.loc["max-norm radius c", "this page"] == "2"
    with pytest.raises(ValueError, match="no stored sweep"):
        differences("table9")


def test_the_figures_settings_name_their_section_of_the_paper():
    assert "§7.3" in differences("fig9").loc["hidden layers", "the paper"]
    assert "none in Fig. 9a" in differences("fig9").loc["drop rate, inputs", "the paper"]
    assert "§7.4" in differences("fig10_mnist5k").loc["hidden layers", "the paper"]
    assert "Appendix B.1" in differences("table2").loc["drop rate, inputs", "the paper"]
    assert differences("fig10_mnist1d").loc["weight updates", "the paper"] == "not stated for Fig. 10"
    assert differences("fig11").loc["learning rate", "the paper"] == "not stated"
    assert not differences("fig9").map(lambda cell: "secondary" in cell).any().any()


def test_the_middle_column_is_named_for_what_it_is():
    assert list(differences("fig9").columns) == ["this page", LARGE_SCALE, "the paper"]


def test_plain_levels_put_the_same_network_on_three_schedules():
    levels = plain_levels()
    assert list(levels.index) == ["paper_mnist", "paper_rate", "paper_data_size"]
    assert levels.loc["paper_mnist", "momentum"] == "0.5 → 0.95"
    test = levels["test error %"].astype(float)
    assert test["paper_mnist"] > test["paper_rate"] > test["paper_data_size"]


def test_plain_levels_name_the_chapters_by_their_titles_for_display():
    titled = plain_levels(titled=True)
    assert list(titled.index) == list(CHAPTER_TITLES.values())
    assert titled.to_numpy().tolist() == plain_levels().to_numpy().tolist()
    chapters = Path(__file__).resolve().parents[1] / "chapters"
    for stem, title in CHAPTER_TITLES.items():
        cells = json.loads((chapters / f"{stem}.ipynb").read_text())["cells"]
        first = next(cell for cell in cells if cell["cell_type"] == "markdown")  # after the hidden Colab cell
        assert "".join(first["source"]).startswith(f"# {title}\n")  # the page's own H1


def test_appendix_b1_is_not_extended_to_fig10():
    paper = differences("fig10_mnist5k")["the paper"]
    for setting in ("max-norm radius c", "momentum"):
        assert paper[setting].startswith("not stated for Fig. 10") and "Table 2 nets" in paper[setting]
    assert "Fig. 10" in paper["data"] and "60,000" not in paper["data"]
    assert "Appendix B.1" in differences("table2").loc["max-norm radius c", "the paper"]


def test_table2_rows_quote_the_tables_own_architecture_words():
    assert "2 layers, 800 units" in PAPER_TABLE2["no dropout"].model
    assert "×" not in "".join(reference.model for reference in PAPER_TABLE2.values())
