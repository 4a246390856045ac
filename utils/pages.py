"""What a chapter page needs to show numbers and errors: many glued values at once, and an error shown as one line.

A chapter's prose quotes numbers from executed cells through myst-nb's `glue`; `glue_values` glues many of them in
one hidden cell. A cell that teaches an error runs it inside `show_error`, which prints the error's type and
message (wrapped at the text column) instead of a traceback, and fails when the error does not happen.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# The width of the site's text column and of a notebook cell, in characters.
TEXT_COLUMN = 88


def glue_values(**values: Any) -> None:
    """Glue every keyword's value under its name for the prose, showing nothing.

    Chapters: intro, overfitting, numpy_dropout, paper_mnist, costs
    """
    if not values:
        raise TypeError("glue_values() needs at least one name=value pair")
    from myst_nb import glue

    for name, value in values.items():
        glue(name, value, display=False)


@contextmanager
def show_error(*expected: type[BaseException]) -> Iterator[None]:
    """Run the block, print the error it raises as 'Type: message', and fail if it raises none or another.

    Chapters: numpy_dropout, keras_dropout, pytorch_dropout, three_frameworks
    """
    if not expected or not all(isinstance(kind, type) and issubclass(kind, BaseException) for kind in expected):
        raise TypeError(f"show_error() needs one or more exception classes, got {expected!r}")
    try:
        yield
    except expected as error:
        # One write, newline included: print() writes the line and its newline separately,
        # and a stream flush between the two leaves an empty output box on the page.
        sys.stdout.write(error_line(error) + "\n")
        return
    names = " or ".join(kind.__name__ for kind in expected)
    raise AssertionError(f"the block should have raised {names}, and it raised nothing")


def error_line(error: BaseException) -> str:
    """The error's type and message, as a reader sees them: wrapped at the text column, no traceback.

    Chapters: numpy_dropout, keras_dropout, pytorch_dropout
    """
    message = " ".join(str(error).split())
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return textwrap.fill(text, width=TEXT_COLUMN, subsequent_indent="    ", break_on_hyphens=False)
