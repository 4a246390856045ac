"""The PyTorch autograd dropout: gradients, statistics against F.dropout, modes, dtypes, masks and bad input."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from utils.dropout import Dropout
from utils.torch_dropout import DropoutFunction, TorchDropout, draw_keep_mask, dropout, saved_for_backward

FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def _saved_tensors(fn):
    """Run fn() and return (dtype, shape) of every tensor autograd saved for backward."""
    saved = []

    def pack(tensor):
        saved.append((tensor.dtype, tuple(tensor.shape)))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return saved


def test_gradcheck_passes_in_float64_with_a_fixed_mask():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(5, 7, dtype=torch.float64, generator=generator, requires_grad=True)
    mask = torch.rand(5, 7, generator=generator) >= 0.4
    assert torch.autograd.gradcheck(lambda t: dropout(t, 0.4, keep_mask=mask), (x,))
    assert torch.autograd.gradgradcheck(lambda t: dropout(t, 0.4, keep_mask=mask), (x,))


def test_backward_reuses_the_forward_mask():
    torch.manual_seed(1)
    x = torch.randn(1000, requires_grad=True)
    y = dropout(x, 0.3)
    y.backward(torch.ones_like(y))
    kept = y != 0
    torch.testing.assert_close(x.grad, kept.float() / 0.7, rtol=0, atol=0)


def test_only_the_boolean_mask_is_saved_for_backward():
    x = torch.randn(4, 6, requires_grad=True)
    assert _saved_tensors(lambda: dropout(x, 0.5)) == [(torch.bool, (4, 6))]


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_statistics_match_f_dropout(rate):
    n = 200_000
    ones = torch.ones(n)
    ours = dropout(ones, rate, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(3)
    theirs = F.dropout(ones, rate)
    tolerance = 5 * np.sqrt(rate * (1 - rate) / n)  # five binomial standard errors
    for out in (ours, theirs):
        assert abs((out == 0).float().mean().item() - rate) < tolerance
        torch.testing.assert_close(out[out != 0].unique(), torch.tensor([1 / (1 - rate)]))
    assert abs(ours.mean().item() - 1) < 5 * np.sqrt(rate / (1 - rate) / n)


@pytest.mark.parametrize("dtype", FLOATS)
def test_same_random_state_gives_f_dropouts_mask_on_the_cpu(dtype):
    x = torch.randn(64, 33).to(dtype)
    torch.manual_seed(4)
    theirs = F.dropout(x, 0.3)
    torch.manual_seed(4)
    ours = dropout(x, 0.3)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_eval_mode_and_rate_zero_are_the_identity():
    x = torch.randn(3, 4, requires_grad=True)
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 0.0) is x
    layer = TorchDropout(0.5).eval()
    assert layer(x) is x
    assert layer.train()(torch.ones(1000)).eq(0).any()


def test_the_module_follows_its_models_mode():
    model = nn.Sequential(nn.Linear(4, 4), TorchDropout(0.5), nn.Sequential(nn.ReLU(), TorchDropout(0.5)))
    x = torch.randn(50, 4)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        model.train()
        assert not torch.equal(model(x), model(x))
    assert "rate=0.5" in repr(model)
    copy.deepcopy(model)  # a module with a generator can still be copied


@pytest.mark.parametrize("dtype", FLOATS)
def test_dtype_is_kept_forward_and_backward(dtype):
    x = torch.ones(8, 8, dtype=dtype, requires_grad=True)
    y = dropout(x, 0.5, generator=torch.Generator().manual_seed(5))
    assert y.dtype == dtype
    y.sum().backward()
    assert x.grad.dtype == dtype
    assert set(y.detach().float().unique().tolist()) <= {0.0, 2.0}


def test_an_injected_mask_is_used_exactly_and_may_broadcast():
    x = torch.arange(1.0, 5.0)
    mask = torch.tensor([True, False, True, False])
    torch.testing.assert_close(dropout(x, 0.5, keep_mask=mask), torch.tensor([2.0, 0.0, 6.0, 0.0]))
    channels = torch.ones(2, 3, 5)
    channel_mask = torch.tensor([[True], [False], [True]])  # shape (3, 1): one draw per channel, shared by batch
    out = dropout(channels, 0.5, keep_mask=channel_mask)
    assert out.shape == channels.shape
    torch.testing.assert_close(out[:, 1], torch.zeros(2, 5))
    torch.testing.assert_close(out[:, 0], torch.full((2, 5), 2.0))


def test_an_injected_mask_agrees_with_the_numpy_layer_forward_and_backward():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(6, 5)).astype(np.float32)
    grad_out = rng.normal(size=(6, 5)).astype(np.float32)
    mask = rng.random((6, 5)) >= 0.3
    reference = Dropout(0.3)
    expected = reference(x, mask=mask)
    x_torch = torch.tensor(x, requires_grad=True)
    out = dropout(x_torch, 0.3, keep_mask=torch.from_numpy(mask))
    out.backward(torch.from_numpy(grad_out))
    np.testing.assert_array_equal(out.detach().numpy(), expected)
    np.testing.assert_array_equal(x_torch.grad.numpy(), reference.backward(grad_out))


def test_a_generator_makes_masks_repeatable_and_independent_of_the_global_seed():
    x = torch.ones(500)
    torch.manual_seed(0)
    first = dropout(x, 0.5, generator=torch.Generator().manual_seed(7))
    torch.manual_seed(1)
    second = dropout(x, 0.5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(first, second)
    layer = TorchDropout(0.5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(layer(x), first)
    assert not torch.equal(layer(x), first)  # the generator moved on


def test_draw_keep_mask_shape_and_rate():
    mask = draw_keep_mask(torch.zeros(300, 300), 0.25, generator=torch.Generator().manual_seed(8))
    assert mask.dtype == torch.bool and mask.shape == (300, 300)
    assert abs(mask.float().mean().item() - 0.75) < 5 * np.sqrt(0.25 * 0.75 / mask.numel())


def test_dropout_function_can_be_applied_directly():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = DropoutFunction.apply(x, 0.5, torch.tensor([True, False]))
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([2.0, 0.0]))


@pytest.mark.parametrize("rate, error", [(1.0, ValueError), (-0.1, ValueError), (float("nan"), ValueError),
                                         ("0.5", TypeError), (True, TypeError)])
def test_bad_rates_are_rejected(rate, error):
    with pytest.raises(error, match="rate"):
        dropout(torch.ones(3), rate)
    with pytest.raises(error, match="rate"):
        TorchDropout(rate)


def test_the_mode_must_be_passed_by_name_and_be_a_bool():
    with pytest.raises(TypeError):
        dropout(torch.ones(3), 0.5, False)  # positional: rejected
    with pytest.raises(TypeError, match="training"):
        dropout(torch.ones(3), 0.5, training=1)


@pytest.mark.parametrize("x, match", [(np.ones(3), "torch.Tensor"), (torch.ones(3, dtype=torch.int64), "floating"),
                                      (torch.ones(3, dtype=torch.bool), "floating")])
def test_bad_inputs_are_rejected(x, match):
    with pytest.raises(TypeError, match=match):
        dropout(x, 0.5)


@pytest.mark.parametrize("mask, error, match", [
    (np.ones(4, dtype=bool), TypeError, "torch.Tensor"),
    (torch.ones(4), TypeError, "torch.bool"),
    (torch.ones(3, dtype=torch.bool), ValueError, "broadcast"),
    (torch.ones(2, 4, dtype=torch.bool), ValueError, "broadcast"),  # would grow the output
])
def test_bad_masks_are_rejected_even_in_eval_mode(mask, error, match):
    for training in (True, False):
        with pytest.raises(error, match=match):
            dropout(torch.ones(4), 0.5, training=training, keep_mask=mask)


def test_bad_generators_are_rejected():
    with pytest.raises(TypeError, match="generator"):
        dropout(torch.ones(3), 0.5, generator=np.random.default_rng(0))
    with pytest.raises(TypeError, match="generator"):
        TorchDropout(0.5, generator=0)


def test_saved_for_backward_lists_dtype_and_bytes():
    x = torch.randn(10, 20, requires_grad=True)
    assert saved_for_backward(lambda: TorchDropout(0.5)(x)) == [(torch.bool, 200)]
    assert saved_for_backward(lambda: nn.Dropout(0.5)(x)) == [(torch.float32, 800)]  # on the CPU
    assert saved_for_backward(lambda: x + 1) == []
    with pytest.raises(TypeError):
        saved_for_backward(x)


def test_in_place_dropout_after_relu_breaks_backward_but_after_linear_does_not():
    a = torch.randn(8, 4, requires_grad=True)
    nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5, inplace=True))(a).sum().backward()
    for relu in (nn.ReLU(), nn.ReLU(inplace=True)):
        loss = nn.Sequential(nn.Linear(4, 4), relu, nn.Dropout(0.5, inplace=True))(a).sum()
        with pytest.raises(RuntimeError, match="inplace operation"):
            loss.backward()
