"""SeededDropout: FastDropout's outputs and gradients, bit for bit, with no mask kept between the passes."""

import numpy as np
import pytest

from utils.dropout import Dropout
from utils.fast_dropout import CHUNK, FastDropout
from utils.seeded_dropout import SeededDropout, generator_state_nbytes

SHAPES = [(7,), (33, 20), (3 * CHUNK + 5,), (2, 3, 4)]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_outputs_and_gradients_equal_fast_dropout_for_the_same_seed(dtype, shape):
    rng = np.random.default_rng(0)
    reference, seeded = FastDropout(0.3, seed=11), SeededDropout(0.3, seed=11)
    for _ in range(3):  # several steps: the streams advance alike in both layers
        x = rng.standard_normal(shape).astype(dtype)
        grad_out = rng.standard_normal(shape).astype(dtype)
        y = seeded(x)
        assert np.array_equal(y, reference(x)) and y.dtype == dtype
        grad = seeded.backward(grad_out)
        assert np.array_equal(grad, reference.backward(grad_out)) and grad.dtype == dtype
        assert np.array_equal(seeded.replay_mask(), reference.mask)
        plain = Dropout(0.3)  # and the plain reference layer's, for that mask
        assert np.array_equal(plain(x, mask=reference.mask), y) and np.array_equal(plain.backward(grad_out), grad)


def test_no_mask_is_kept_only_the_stream_state_whatever_the_size():
    small, large = SeededDropout(0.5, seed=0), SeededDropout(0.5, seed=0)
    small(np.ones(10, dtype=np.float32))
    large(np.ones(4 * CHUNK, dtype=np.float32))
    assert small.mask is None and large.mask is None
    assert small.saved_nbytes == large.saved_nbytes < 1024
    assert small.saved_nbytes == generator_state_nbytes([s.state for s in small._replay_streams])


def test_backward_can_repeat_and_does_not_disturb_the_next_forward_draw():
    seeded, reference = SeededDropout(0.4, seed=3), FastDropout(0.4, seed=3)
    x = np.ones((50, 40))
    seeded(x), reference(x)
    first = seeded.backward(x)
    assert np.array_equal(seeded.backward(x), first)  # replaying twice gives the same gradient
    assert np.array_equal(seeded(x), reference(x))  # and the next forward still draws what the reference draws


def test_a_given_mask_falls_back_to_storing_it():
    x = np.arange(1.0, 7.0).reshape(2, 3)
    keep = np.array([[True, False, True], [False, True, True]])
    layer = SeededDropout(0.5, seed=0)
    layer(x)  # a seeded forward first: the given mask below must replace its saved state
    y = layer(x, mask=keep)
    np.testing.assert_array_equal(y, x * keep * 2)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), keep * 2.0)
    assert layer.saved_nbytes == keep.nbytes
    with pytest.raises(RuntimeError, match="replay_mask"):
        layer.replay_mask()


def test_eval_mode_and_rate_zero_are_the_identity():
    x = np.random.default_rng(0).normal(size=(4, 5))
    assert SeededDropout(0.5, seed=0).eval()(x) is x
    assert SeededDropout(0.0, seed=0)(x) is x
    layer = SeededDropout(0.5, seed=0)
    layer(x)
    layer.eval()
    assert layer.backward(x) is x  # as FastDropout: evaluation mode passes the gradient through


def test_repr_and_subclass():
    layer = SeededDropout(0.25)
    assert isinstance(layer, FastDropout) and repr(layer) == "SeededDropout(rate=0.25, training=True)"


def test_bad_input_gets_clear_errors():
    layer = SeededDropout(0.5, seed=0)
    with pytest.raises(RuntimeError, match="backward"):
        layer.backward(np.ones(3))  # no forward yet: the reference layer's error
    with pytest.raises(TypeError, match="floating-point"):
        layer(np.ones(3, dtype=np.int64))
    layer(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        layer.backward(np.ones((3, 2), dtype=np.float32))
    with pytest.raises(TypeError, match="dtype"):
        layer.backward(np.ones((2, 3), dtype=np.float64))
    with pytest.raises(TypeError, match="NumPy array"):
        layer.backward([[1.0] * 3] * 2)
    with pytest.raises(ValueError, match="rate"):
        SeededDropout(1.0)
    with pytest.raises(TypeError, match="states"):
        generator_state_nbytes({"state": 1})


def test_empty_and_zero_dimensional_inputs():
    for x in (np.ones(0, dtype=np.float32), np.array(2.0)):
        layer, reference = SeededDropout(0.5, seed=1), FastDropout(0.5, seed=1)
        assert np.array_equal(layer(x), reference(x))
        assert np.array_equal(layer.backward(np.ones_like(x)), reference.backward(np.ones_like(x)))
