"""A small Transformer classifier with every dropout site of a Transformer block switchable, and its sweep run.

The model reads an MNIST-1D signal (40 time steps) as 10 tokens of 4 steps each: a linear patch embedding plus a
learned position embedding, pre-norm Transformer blocks, a final layer norm, the mean over tokens and a linear
classifier. Dropout can sit at five places, each with its own rate (`SITES`):

- "embedding": on the sum of the token and position embeddings (Vaswani et al., 2017, section 5.4);
- "attention": on the attention weights, after the softmax (inside `F.scaled_dot_product_attention`);
- "residual": on each sub-layer's output before it is added to the residual stream (section 5.4);
- "activation": on the feed-forward layer's inner activation (PyTorch's `nn.TransformerEncoderLayer` has it);
- "path": stochastic depth (DropPath), each sample's whole residual branch dropped.

`site_run` trains one model with Adam on a fixed budget of updates and returns its errors: the function behind the
stored sweeps `transformer_sites` and `transformer_overfit`. Rates are drop rates, as everywhere in the book.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from utils.chapters.paper_sweeps import subset
from utils.checks import check_count, check_positive, check_rate, check_seed
from utils.data import load_dataset
from utils.seeding import seed_everything

SITES: tuple[str, ...] = ("embedding", "attention", "residual", "activation", "path")


def check_site_rates(rates: Mapping[str, float]) -> dict[str, float]:
    """Every site's drop rate as a float (0 where `rates` names none), or a clear error for a bad name or rate.

    Chapter: transformers
    """
    if not isinstance(rates, Mapping):
        raise TypeError(f"rates must map site names to drop rates, e.g. {{'attention': 0.1}}, got "
                        f"{type(rates).__name__}")
    unknown = sorted(set(rates) - set(SITES))
    if unknown:
        raise ValueError(f"unknown dropout site(s) {unknown}; the sites are {', '.join(SITES)}")
    return {site: check_rate(rates.get(site, 0.0)) for site in SITES}


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth: drop each sample's whole residual branch at drop rate `rate`.

    One Bernoulli draw per sample (the first axis), shared by all of that sample's
    other entries; the kept branches are divided by 1 - rate. In evaluation, or at
    rate 0, the branch passes unchanged.
    Chapter: transformers
    """
    rate = check_rate(rate)
    if not isinstance(x, torch.Tensor) or x.ndim < 1:
        raise TypeError(
            f"x must be a torch.Tensor with a batch axis first, got {type(x).__name__}")
    if not training or rate == 0.0:
        return x
    keep = 1.0 - rate
    mask = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype,
                       device=x.device).bernoulli_(keep)  # one draw per sample
    return x * mask / keep


class DropPath(nn.Module):
    """Stochastic depth as a module: `drop_path` at a fixed rate, active only in training mode.

    Chapter: transformers
    """

    def __init__(self, rate: float = 0.0) -> None:
        super().__init__()
        self.rate = check_rate(rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Drop whole samples' branches in training mode; the identity in evaluation."""
        return drop_path(x, self.rate, self.training)

    def extra_repr(self) -> str:
        """The rate, for the module's printout."""
        return f"rate={self.rate}"


class SelfAttention(nn.Module):
    """Multi-head self-attention whose attention-weight dropout follows the module's training flag.

    Chapter: transformers
    """

    def __init__(self, d_model: int, n_heads: int, rate: float = 0.0) -> None:
        super().__init__()
        d_model, n_heads = check_count(d_model, "d_model"), check_count(n_heads, "n_heads")
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be a multiple of n_heads ({n_heads})")
        self.n_heads, self.rate = n_heads, check_rate(rate)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend from every token to every token of `x` (batch, tokens, d_model)."""
        batch, tokens, d_model = x.shape
        q, k, v = (self.qkv(x).view(batch, tokens, 3, self.n_heads, -1)
                   .permute(2, 0, 3, 1, 4))
        y = F.scaled_dot_product_attention(  # drops only in training mode:
            q, k, v, dropout_p=self.rate if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(batch, tokens, d_model))


class Block(nn.Module):
    """A pre-norm Transformer block: x + drop(attention(norm(x))), then x + drop(feed-forward(norm(x))).

    Chapter: transformers
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, rates: Mapping[str, float]) -> None:
        super().__init__()
        rates = check_site_rates(rates)
        self.norm1 = nn.LayerNorm(d_model)
        self.attention = SelfAttention(d_model, n_heads, rates["attention"])
        self.drop1 = nn.Dropout(rates["residual"])
        self.norm2 = nn.LayerNorm(d_model)
        self.feed_forward = nn.Sequential(nn.Linear(d_model, check_count(d_ff, "d_ff")), nn.GELU(),
                                          nn.Dropout(rates["activation"]), nn.Linear(d_ff, d_model))
        self.drop2 = nn.Dropout(rates["residual"])
        self.path = DropPath(rates["path"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's two residual steps."""
        x = x + self.path(self.drop1(self.attention(self.norm1(x))))
        return x + self.path(self.drop2(self.feed_forward(self.norm2(x))))


class TinyTransformer(nn.Module):
    """A Transformer classifier for 1-D signals read as tokens of `patch` consecutive steps.

    Chapter: transformers
    """

    def __init__(self, length: int = 40, patch: int = 4, *, d_model: int = 32, n_heads: int = 4, d_ff: int = 64,
                 n_layers: int = 2, n_classes: int = 10, rates: Mapping[str, float] | None = None) -> None:
        super().__init__()
        length, patch = check_count(length, "length"), check_count(patch, "patch")
        if length % patch:
            raise ValueError(f"the signal's length ({length}) must be a multiple of the patch ({patch})")
        rates = check_site_rates(rates or {})
        self.patch = patch
        self.embed = nn.Linear(patch, d_model)
        self.position = nn.Parameter(0.02 * torch.randn(length // patch, d_model))
        self.drop = nn.Dropout(rates["embedding"])
        self.blocks = nn.Sequential(*(Block(d_model, n_heads, d_ff, rates)
                                      for _ in range(check_count(n_layers, "n_layers"))))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, check_count(n_classes, "n_classes", minimum=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores for signals `x` (batch, length)."""
        tokens = self.embed(x.reshape(x.shape[0], -1, self.patch)) + self.position
        return self.head(self.norm(self.blocks(self.drop(tokens))).mean(dim=1))


def train_transformer(x: np.ndarray, y: np.ndarray, *, rates: Mapping[str, float], seed: int, epochs: int,
                      batch_size: int = 50, lr: float = 3e-3, **model_kwargs: Any) -> TinyTransformer:
    """Seed everything with `seed`, build a `TinyTransformer` with `rates`, train it with Adam; return it in eval mode.

    The learning rate warms up over the first tenth of the updates and then anneals (one-cycle). Equal seeds give
    equal initial weights and minibatch order whatever the rates, so runs that differ only in their rates are paired.
    Chapter: transformers
    """
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y)
    if x.ndim != 2 or y.shape != (len(x),) or len(x) == 0:
        raise ValueError(f"x must be (examples, steps) and y one label per example, got {x.shape} and {y.shape}")
    epochs, batch_size = check_count(epochs, "epochs"), check_count(batch_size, "batch_size")
    lr = check_positive(lr, "lr")
    seed_everything(check_seed(seed))
    model = TinyTransformer(x.shape[1], rates=rates, **{"n_classes": int(y.max()) + 1, **model_kwargs})
    inputs, labels = torch.from_numpy(x), torch.as_tensor(y, dtype=torch.long)
    steps = epochs * -(-len(x) // batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.1)
    order = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=order).split(batch_size):
            optimizer.zero_grad()
            F.cross_entropy(model(inputs[batch]), labels[batch]).backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def error_rate(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """The fraction of the signals `x` that `model`, in eval mode, puts in the wrong class.

    Chapter: transformers
    """
    model.eval()
    with torch.no_grad():
        predictions = model(torch.as_tensor(np.asarray(x, dtype=np.float32))).argmax(dim=1).numpy()
    return float(np.mean(predictions != np.asarray(y)))


def site_run(settings: Mapping[str, Any], seed: int) -> dict[str, float]:
    """One run of the sweep: train with dropout at the setting's sites and return train, validation and test error.

    `settings`: "sites" (site names joined by "+", or "none"), "n_train" (a stratified subset drawn with the seed),
    "rate", "layers", "updates" (the number of weight updates, whatever the training set's size), "batch_size", "lr".
    Chapter: transformers
    """
    sites = [] if settings["sites"] == "none" else settings["sites"].split("+")
    rates = {site: settings["rate"] for site in sites}
    data = load_dataset("mnist1d")
    x, y = subset(data.x_train, data.y_train, settings["n_train"], seed=seed)
    steps_per_epoch = -(-len(x) // settings["batch_size"])
    if isinstance(settings["updates"], bool) or not isinstance(settings["updates"], Integral) \
            or settings["updates"] % steps_per_epoch:
        raise ValueError(f"updates ({settings['updates']!r}) must be a whole number of epochs of {steps_per_epoch}")
    model = train_transformer(x, y, rates=rates, seed=seed, epochs=settings["updates"] // steps_per_epoch,
                              batch_size=settings["batch_size"], lr=settings["lr"], n_layers=settings["layers"])
    return {"train_error": error_rate(model, x, y), "val_error": error_rate(model, data.x_val, data.y_val),
            "test_error": error_rate(model, data.x_test, data.y_test)}
