"""The figure comparison used on re-executed notebooks tells a redrawn figure from a changed one."""

import base64
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from tools.nbimages import compare_pngs


def _png_output(ys, size=(4, 3)) -> dict:
    fig, ax = plt.subplots(figsize=size, dpi=100)
    ax.plot(ys)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return {"output_type": "display_data", "data": {"image/png": base64.b64encode(buffer.getvalue()).decode()}}


CURVE = np.linspace(1.0, 0.2, 20)


def test_identical_figures_match():
    assert compare_pngs([_png_output(CURVE)], [_png_output(CURVE)]) == []


def test_a_sub_pixel_change_in_the_data_still_matches():
    assert compare_pngs([_png_output(CURVE + 1e-6)], [_png_output(CURVE)]) == []


def test_a_different_curve_is_caught():
    problems = compare_pngs([_png_output(CURVE[::-1])], [_png_output(CURVE)])
    assert len(problems) == 1 and "pixels differ" in problems[0]


def test_a_resized_figure_is_caught():
    problems = compare_pngs([_png_output(CURVE, size=(5, 3))], [_png_output(CURVE)])
    assert problems and "size" in problems[0]


def test_a_missing_or_extra_figure_is_caught():
    assert compare_pngs([], [_png_output(CURVE)])
    assert compare_pngs([_png_output(CURVE), _png_output(CURVE)], [_png_output(CURVE)])
    assert compare_pngs([{"output_type": "stream", "text": "hi"}], [{"output_type": "stream", "text": "hi"}]) == []


def test_glued_figures_are_compared_too():
    def glued(output):
        return {"output_type": "display_data",
                "data": {"application/papermill.record/image/png": output["data"]["image/png"]}}

    assert compare_pngs([glued(_png_output(CURVE))], [glued(_png_output(CURVE))]) == []
    assert compare_pngs([glued(_png_output(CURVE[::-1]))], [glued(_png_output(CURVE))])
