"""DropBlock (NumPy and PyTorch), its seed rate, the three kinds of masks, the fill errors and the chapter's CNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from utils.chapters.convolutional import (
    DropBlock2d,
    block_mask,
    channel_fill_errors,
    draw_keep_masks,
    fill_errors,
    keep_probability_map,
    neighbour_correlation,
    pooling_loss,
)
from utils.chapters.convolutional_sweeps import TorchDropBlock2d, dropblock_gamma, dropout_layer, make_conv_net
from utils.gradcheck import numerical_gradient_array, relative_error


def _maps(shape=(2, 3, 9, 8), seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def test_gamma_follows_the_torchvision_formula():
    p, bs, h, w = 0.1, 7, 28, 20
    assert dropblock_gamma(p, bs, h, w) == pytest.approx(p * h * w / (bs**2 * (h - bs + 1) * (w - bs + 1)))
    assert dropblock_gamma(0.3, 1, 5, 5) == pytest.approx(0.3)  # block size 1: element-wise dropout


@pytest.mark.parametrize("bad, error", [((1.0, 3), ValueError), ((-0.1, 3), ValueError), (("0.1", 3), TypeError),
                                        ((0.1, 4), ValueError), ((0.1, 0), ValueError), ((0.1, 2.0), TypeError)])
def test_bad_rates_and_block_sizes_are_refused(bad, error):
    with pytest.raises(error):
        DropBlock2d(*bad)
    with pytest.raises(error):
        TorchDropBlock2d(*bad)


def test_a_block_larger_than_the_map_is_refused_with_the_largest_allowed():
    with pytest.raises(ValueError, match="larger than the 4x6 feature map; use at most 4"):
        DropBlock2d(0.1, 5)(_maps((1, 1, 4, 6)))
    with pytest.raises(ValueError, match="larger than"):
        TorchDropBlock2d(0.1, 5)(torch.zeros(1, 1, 4, 6))


def test_wrong_shapes_and_dtypes_are_refused():
    layer = DropBlock2d(0.2, 3, seed=0)
    with pytest.raises(ValueError, match="N, C, H, W"):
        layer(np.zeros((3, 8, 8)))
    with pytest.raises(TypeError, match="floating-point"):
        layer(np.zeros((1, 1, 8, 8), dtype=int))
    with pytest.raises(TypeError, match="NumPy array"):
        layer([[[[0.0]]]])
    with pytest.raises(ValueError, match="seeds must be a boolean array of shape"):
        layer(np.zeros((1, 1, 8, 8)), np.zeros((1, 1, 8, 8), dtype=bool))
    with pytest.raises(TypeError, match="floating-point"):
        TorchDropBlock2d(0.2, 3)(torch.zeros(1, 1, 8, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match="N, C, H, W"):
        TorchDropBlock2d(0.2, 3)(torch.zeros(8, 8))
    with pytest.raises(ValueError, match="seeds must be a boolean tensor"):
        TorchDropBlock2d(0.2, 3)(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 6, 6))


def test_block_mask_drops_the_square_below_and_right_of_each_seed():
    seeds = np.zeros((4, 4), dtype=bool)
    seeds[1, 2] = True
    keep = block_mask(seeds, 3)
    assert keep.shape == (6, 6)
    assert not keep[1:4, 2:5].any() and keep.sum() == 36 - 9


def test_forward_rescales_by_the_kept_fraction_and_backward_uses_the_same_mask():
    x = _maps()
    layer = DropBlock2d(0.3, 3, seed=1)
    out = layer(x)
    keep = layer.mask
    assert layer.scale == pytest.approx(keep.size / keep.sum())
    np.testing.assert_allclose(out, x * keep * keep.size / keep.sum())
    grad = layer.backward(np.ones_like(x))
    np.testing.assert_allclose(grad, keep * layer.scale)
    with pytest.raises(ValueError, match="grad_out has shape"):
        layer.backward(np.ones((1, 1, 9, 8)))


def test_the_gradient_matches_central_differences():
    x, grad_out = _maps(seed=2), _maps(seed=3)
    layer = DropBlock2d(0.3, 3, seed=4)
    seeds = layer.draw_seeds(x.shape)
    layer(x, seeds)
    analytic = layer.backward(grad_out)
    numeric = numerical_gradient_array(lambda v: layer(v, seeds), x, grad_out)
    assert relative_error(analytic, numeric) < 1e-8


def test_eval_mode_and_rate_zero_are_the_identity():
    x = _maps()
    assert DropBlock2d(0.5, 3).eval()(x) is x
    assert DropBlock2d(0.0, 3)(x) is x
    module = TorchDropBlock2d(0.5, 3).eval()
    tensor = torch.as_tensor(x)
    assert module(tensor) is tensor


def test_numpy_and_torch_drop_the_same_elements_for_the_same_seeds():
    x = _maps((3, 2, 11, 12), seed=5)
    for block_size in (1, 3, 5):
        layer = DropBlock2d(0.4, block_size, seed=block_size)
        seeds = layer.draw_seeds(x.shape)
        ours = layer(x, seeds)
        theirs = TorchDropBlock2d(0.4, block_size)(torch.as_tensor(x), torch.as_tensor(seeds)).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
        assert np.array_equal(theirs != 0, layer.mask)


def test_the_torch_module_is_differentiable_and_draws_its_own_seeds():
    torch.manual_seed(0)
    x = torch.ones(2, 3, 10, 10, requires_grad=True)
    out = TorchDropBlock2d(0.3, 3)(x)
    out.sum().backward()
    assert torch.equal(x.grad, out.detach())  # d out / d x = keep * scale = out for x = 1


def test_the_expected_kept_fraction_is_a_little_above_one_minus_p():
    probabilities = keep_probability_map(0.1, 5, 28, 28)
    assert probabilities[0, 0] > probabilities[14, 14]  # edges are dropped less often than the interior
    assert 0.9 < probabilities.mean() < 0.91
    assert keep_probability_map(0.3, 1, 6, 6) == pytest.approx(np.full((6, 6), 0.7))
    layer = DropBlock2d(0.1, 5, seed=0)
    layer(np.ones((1000, 4, 28, 28), dtype=np.float32))
    assert layer.mask.mean() == pytest.approx(probabilities.mean(), abs=3e-3)


def test_the_three_masks_have_the_right_structure():
    masks = draw_keep_masks((50, 6, 12, 12), 0.3, 3, np.random.default_rng(0))
    channel = masks["channel"]
    assert (channel == channel[..., :1, :1]).all()  # one decision per channel
    assert abs(masks["element"].mean() - 0.7) < 0.01
    with pytest.raises(TypeError, match="Generator"):
        draw_keep_masks((1, 1, 4, 4), 0.3, 3, 0)


def test_neighbour_correlation_of_smooth_and_of_noisy_maps():
    smooth = np.cumsum(np.cumsum(_maps((4, 2, 20, 20)), axis=2), axis=3)
    assert (neighbour_correlation(smooth) > 0.9).all()
    assert (np.abs(neighbour_correlation(_maps((4, 2, 20, 20)))) < 0.1).all()
    assert np.isnan(neighbour_correlation(np.zeros((1, 1, 5, 5)))).all()
    with pytest.raises(ValueError, match="distance"):
        neighbour_correlation(smooth, distance=20)


def test_fill_errors_guess_a_constant_map_exactly():
    maps = np.full((1, 1, 6, 6), 2.0)
    keep = np.ones(maps.shape, dtype=bool)
    keep[0, 0, 2, 3] = False
    assert fill_errors(maps, keep) == {"neighbours": 0.0, "map mean": 0.0, "guessable": 1.0,
                                       "pooled": 0.0, "pooled map mean": 0.0}
    with pytest.raises(ValueError, match="nothing to guess"):
        fill_errors(maps, np.zeros(maps.shape, dtype=bool))
    with pytest.raises(ValueError, match="boolean array"):
        fill_errors(maps, keep.astype(int))


def test_fill_errors_pool_the_unguessable_with_the_map_mean():
    maps = np.zeros((1, 1, 5, 5))
    maps[0, 0, 2, 2] = 9.0  # the centre of a dropped 3x3 square has no kept neighbour
    keep = np.ones(maps.shape, dtype=bool)
    keep[0, 0, 1:4, 1:4] = False
    errors = fill_errors(maps, keep)
    assert errors["guessable"] == 8 / 9
    assert errors["neighbours"] == errors["map mean"] == 0.0  # the ring is zeros, as is what is kept
    assert np.isclose(errors["pooled"], 3.0) and np.isclose(errors["pooled map mean"], 3.0)  # sqrt(81 / 9)


def test_channel_fill_errors_recover_a_copied_channel_and_refuse_bad_input():
    rng = np.random.default_rng(0)
    train, test = rng.standard_normal((20, 3, 5, 5)), rng.standard_normal((10, 3, 5, 5))
    train[:, 2], test[:, 2] = 2 * train[:, 0] + 1, 2 * test[:, 0] + 1  # channel 2 is a copy of channel 0
    errors = channel_fill_errors(train, test)
    assert errors["other channels"][2] < 1e-8 < errors["channel mean"][2]
    assert errors["other channels"][1] > 0.5 * errors["channel mean"][1]  # independent noise: no help
    with pytest.raises(ValueError, match="same number of channels"):
        channel_fill_errors(train, test[:, :2])
    with pytest.raises(ValueError, match="at least 2"):
        channel_fill_errors(train[:, :1], test[:, :1])


def test_the_cnn_has_each_kind_of_dropout_where_asked():
    assert isinstance(dropout_layer("channel", 0.1, 3), torch.nn.Dropout2d)
    assert isinstance(dropout_layer("block", 0.1, 3), TorchDropBlock2d)
    assert isinstance(dropout_layer("element", 0.0, 3), torch.nn.Identity)
    with pytest.raises(ValueError, match="kind must be one of"):
        dropout_layer("spatial", 0.1, 3)
    net = make_conv_net("block", 0.1)
    assert net(torch.zeros(2, 784)).shape == (2, 10)
    with pytest.raises(ValueError, match="odd and at most 14"):
        make_conv_net("block", 0.1, block_size=16)


def test_interior_elements_are_dropped_more_often_than_p_and_edges_less():
    keep = keep_probability_map(0.1, 5, 14, 14)
    assert 1 - keep[7, 7] > 0.1 > 1 - keep[0, 0]
    factor = keep / keep.mean()  # expected training output over input, per position
    assert factor[0, 0] == pytest.approx(1.09, abs=0.01) and factor[7, 7] == pytest.approx(0.91, abs=0.01)


def test_overfit_run_trains_on_the_subset_and_refuses_a_bad_size():
    from utils.chapters.convolutional_overfit import overfit_run

    settings = {"dataset": "mnist5k", "n_train": 40, "kind": "block", "rate": 0.3, "block_size": 5, "width": 2,
                "epochs": 1, "batch_size": 20, "lr": 0.05, "momentum": 0.9}
    with pytest.raises(ValueError):
        overfit_run({**settings, "n_train": 0}, seed=0)
    errors = overfit_run(settings, seed=0)
    assert set(errors) == {"train_error", "val_error", "test_error"}
    assert all(0.0 <= e <= 1.0 for e in errors.values())


def _listed_lines(source: str, spec: str) -> list[str]:
    """The lines a literalinclude `:lines:` spec keeps of `source` (1-based, 'a-b', 'a-' or 'a')."""
    lines = source.splitlines()
    kept = []
    for part in spec.split(","):
        first, _, last = part.partition("-")
        stop = len(lines) if part.endswith("-") else int(last or first)
        kept.extend(lines[int(first) - 1:stop])
    return kept


def test_the_chapter_listings_leave_out_the_chapter_line_and_fit_the_page():
    import ast
    import json
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    cells = json.loads((root / "chapters" / "convolutional.ipynb").read_text(encoding="utf-8"))["cells"]
    text = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    blocks = re.findall(r"```\{literalinclude\} \.\./(\S+)\n:pyobject: (\S+)\n(?::lines: (\S+)\n)?", text)
    assert len(blocks) >= 7
    for file, name, spec in blocks:
        source = (root / file).read_text(encoding="utf-8")
        nodes = {node.name: node for node in ast.parse(source).body if hasattr(node, "name")}
        outer, _, inner = name.partition(".")
        node = nodes[outer]
        if inner:
            node = next(n for n in node.body if getattr(n, "name", None) == inner)
        body = "\n".join(source.splitlines()[node.lineno - 1:node.end_lineno])
        shown = _listed_lines(body, spec) if spec else body.splitlines()
        assert shown[0].lstrip().startswith(("def ", "class ")), (name, shown[0])
        assert not any("Chapter:" in line for line in shown), name
        assert max(len(line) for line in shown) <= 88, name


def test_pooling_loss_counts_what_the_max_pool_passes_on():
    maps = np.zeros((1, 1, 2, 4))
    maps[0, 0] = [[4.0, 1.0, 2.0, 2.0], [3.0, 0.0, 2.0, 2.0]]  # two windows, maxima 4 and 2
    keep = np.ones(maps.shape, dtype=bool)
    keep[0, 0, 0, 0] = False  # the first window's max goes; its 3 stands in
    assert pooling_loss(maps, keep) == {"before": 4 / 16, "after": 1 / 6}
    keep[0, 0, :, 2:] = False  # the whole second window goes
    assert pooling_loss(maps, keep)["after"] == 3 / 6
    with pytest.raises(ValueError, match="even number"):
        pooling_loss(np.ones((1, 1, 3, 4)), np.ones((1, 1, 3, 4), dtype=bool))
    with pytest.raises(ValueError, match="non-negative"):
        pooling_loss(-maps, keep)
    with pytest.raises(ValueError, match="boolean array"):
        pooling_loss(maps, keep.astype(int))
