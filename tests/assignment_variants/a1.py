"""Assignment 1 (a1_numpy_dropout): forward and backward passes that differ from the reference, as answer cells."""

VARIANTS = {
    "rng.random < 1 - rate, np.where, a (mask, scale) cache": {"forward": '''
def dropout_forward(x, rate, rng, training, mask=None):
    if rate < 0 or rate >= 1:
        raise ValueError(f"rate {rate} is not in [0, 1)")
    if not training:
        return x, (None, 1.0)
    keep = rng.random(x.shape) < 1 - rate if mask is None else mask
    scale = x.dtype.type(1 / (1 - rate))
    return np.where(keep, x * scale, x.dtype.type(0)), (keep, scale)
''', "backward": '''
def dropout_backward(dout, cache):
    keep, scale = cache
    if keep is None:
        return dout
    return np.where(keep, dout * dout.dtype.type(scale), dout.dtype.type(0))
'''},
    "rng.binomial, kept elements written by index, a dict cache also in evaluation": {"forward": '''
def dropout_forward(x, rate, rng, training, mask=None):
    if not (0 <= rate < 1):
        raise ValueError("the dropout rate must be in [0, 1)")
    if not training:
        return x.copy(), {"mask": np.ones(x.shape, dtype=bool), "scale": 1.0}
    if mask is None:
        mask = rng.binomial(1, 1.0 - rate, size=x.shape).astype(bool)
    out = np.zeros_like(x)
    out[mask] = x[mask] / (1.0 - rate)
    return out, {"mask": mask, "scale": 1.0 / (1.0 - rate)}
''', "backward": '''
def dropout_backward(dout, cache):
    dx = np.zeros_like(dout)
    dx[cache["mask"]] = dout[cache["mask"]] * cache["scale"]
    return dx
'''},
}
