"""utils.pages: glued values for the prose, and errors shown as one line instead of a traceback."""

import pytest

from utils.pages import TEXT_COLUMN, error_line, glue_values, show_error


def test_show_error_prints_type_and_message_only(capsys):
    with show_error(ValueError):
        raise ValueError("rate must be in [0, 1), got 1.5")
    assert capsys.readouterr().out == "ValueError: rate must be in [0, 1), got 1.5\n"


def test_show_error_accepts_any_of_several_kinds(capsys):
    with show_error(TypeError, KeyError):
        raise KeyError("x")
    assert capsys.readouterr().out.startswith("KeyError: ")


def test_show_error_fails_when_nothing_is_raised():
    with pytest.raises(AssertionError, match="should have raised ValueError, and it raised nothing"):
        with show_error(ValueError):
            pass


def test_show_error_lets_another_error_through():
    with pytest.raises(RuntimeError):
        with show_error(ValueError):
            raise RuntimeError("not this one")


def test_show_error_needs_exception_classes():
    with pytest.raises(TypeError, match="exception classes"):
        with show_error():
            pass
    with pytest.raises(TypeError, match="exception classes"):
        with show_error("ValueError"):
            pass


def test_error_line_wraps_at_the_text_column():
    text = error_line(RuntimeError("a very long message " * 12))
    assert all(len(line) <= TEXT_COLUMN for line in text.splitlines())
    assert text.startswith("RuntimeError: a very long message")
    assert len(text.splitlines()) > 1
    assert error_line(StopIteration()) == "StopIteration"


def test_glue_values_needs_a_value():
    with pytest.raises(TypeError, match="at least one"):
        glue_values()


def test_glue_values_glues_each_name(monkeypatch):
    seen = []
    monkeypatch.setattr("myst_nb.glue", lambda name, value, display: seen.append((name, value, display)))
    glue_values(a=1, b="two")
    assert seen == [("a", 1, False), ("b", "two", False)]
