"""The runs behind the recurrent chapter's stored sweep: an LSTM whose dropout masks are explicit, and its training.

- `MaskedLSTM` reads a sequence step by step with its own LSTM cell, so that each scheme's masks are visible in
  code: none, naive per-step masks (recurrent connection included), Zaremba et al.'s masks on the non-recurrent
  connections only, and Gal and Ghahramani's variational masks (one mask per sequence, recurrent connection included);
- `train_sequence_classifier` trains one with Adam, seeded; `scheme_run` is the experiment store's run function
  (`utils.sweeps` names it in the sweep `recurrent_schemes`).

Rates are drop rates p; kept units are divided by q = 1 - p in training (inverted dropout), nothing at test time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from utils.checks import check_count, check_positive, check_rate, check_seed
from utils.data import load_dataset
from utils.seeding import seed_everything
from utils.training import evaluate

# Where each scheme puts a mask: on the inputs x_t, on the recurrent state h_{t-1} that feeds the gates, and on the
# last state before the classifier. "step": a fresh mask at every time step; "sequence": one mask for the whole
# sequence; None: no mask.
SCHEMES: dict[str, dict[str, str | None]] = {
    "none": {"inputs": None, "recurrent": None, "output": None},
    "naive": {"inputs": "step", "recurrent": "step", "output": "step"},
    "zaremba": {"inputs": "step", "recurrent": None, "output": "step"},
    "variational": {"inputs": "sequence", "recurrent": "sequence",
                    "output": "sequence"},
}
LABELS: dict[str, str] = {"none": "no dropout", "naive": "naive per-step", "zaremba": "Zaremba et al.",
                          "variational": "variational"}
MODES: tuple[str, ...] = ("step", "sequence")


def check_scheme(scheme: str) -> str:
    """Return `scheme` if it names one of SCHEMES, else raise a ValueError that lists them.

    Chapter: recurrent
    """
    if not isinstance(scheme, str) or scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}; got {scheme!r}")
    return scheme


def dropout_masks(batch: int, steps: int, size: int, drop_rate: float, mode: str) -> torch.Tensor:
    """Inverted-dropout masks of shape (batch, steps, size): 0 or 1/(1 - p), fresh per step or one per sequence.

    With mode "sequence" the mask is drawn once, with shape (batch, 1, size), and broadcast over the steps.
    Chapter: recurrent
    """
    batch, steps, size = (check_count(v, name) for v, name in ((batch, "batch"), (steps, "steps"), (size, "size")))
    drop_rate = check_rate(drop_rate)
    if mode not in MODES:
        raise ValueError(f"mode must be 'step' (a fresh mask each step) or 'sequence' (one mask), got {mode!r}")
    shape = (batch, steps if mode == "step" else 1, size)
    keep = 1.0 - drop_rate
    return torch.bernoulli(torch.full(shape, keep)) / keep


class MaskedLSTM(nn.Module):
    """A one-layer LSTM classifier that reads `steps` steps of `features` values, with a dropout scheme's masks.

    Inputs are (batch, steps * features) rows, read `features` values at a time (an MNIST digit row by row); the
    class scores come from the last hidden state. Masks are drawn only in training mode.
    Chapter: recurrent
    """

    def __init__(self, steps: int, features: int, hidden: int, n_classes: int, *, scheme: str = "none",
                 drop_rate: float = 0.0) -> None:
        super().__init__()
        self.steps, self.features = check_count(steps, "steps"), check_count(features, "features")
        self.hidden = check_count(hidden, "hidden")
        self.scheme, self.drop_rate = check_scheme(scheme), check_rate(drop_rate)
        if (scheme == "none") != (self.drop_rate == 0.0):
            raise ValueError(f"scheme 'none' goes with drop_rate 0 and every other scheme with a rate above 0; got "
                             f"scheme {scheme!r} and drop_rate {drop_rate!r}")
        self.input_weights = nn.Linear(self.features, 4 * self.hidden)
        self.recurrent_weights = nn.Linear(self.hidden, 4 * self.hidden, bias=False)
        self.classifier = nn.Linear(self.hidden, check_count(n_classes, "n_classes", minimum=2))
        with torch.no_grad():  # forget gate's bias 1: the cell keeps its memory at the start of training
            self.input_weights.bias[self.hidden:2 * self.hidden] = 1.0

    def _mask(self, where: str, batch: int, size: int) -> torch.Tensor | None:
        """The masks for one place (inputs, recurrent, output); None if it has none."""
        mode = SCHEMES[self.scheme][where]
        if mode is None or not self.training:
            return None
        steps = 1 if where == "output" else self.steps
        return dropout_masks(batch, steps, size, self.drop_rate, mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores for a batch of flattened sequences."""
        if x.ndim != 2 or x.shape[1] != self.steps * self.features:
            raise ValueError(f"inputs must be (batch, {self.steps * self.features}) "
                             f"rows, got {tuple(x.shape)}")
        batch = x.shape[0]
        x = x.reshape(batch, self.steps, self.features)
        input_mask = self._mask("inputs", batch, self.features)
        recurrent_mask = self._mask("recurrent", batch, self.hidden)
        if input_mask is not None:
            x = x * input_mask  # (batch, steps or 1, features): broadcasts
        from_inputs = self.input_weights(x)  # every step's input term at once
        h = c = x.new_zeros(batch, self.hidden)
        for t in range(self.steps):
            h_in = h if recurrent_mask is None else (  # step t's mask, or the shared one
                h * recurrent_mask[:, min(t, recurrent_mask.shape[1] - 1)])
            i, f, g, o = (from_inputs[:, t]
                          + self.recurrent_weights(h_in)).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        output_mask = self._mask("output", batch, self.hidden)
        return self.classifier(h if output_mask is None else h * output_mask[:, 0])


def train_sequence_classifier(
    train: tuple[np.ndarray, np.ndarray], *, steps: int, scheme: str, drop_rate: float, seed: int,
    hidden: int = 64, epochs: int = 8, batch_size: int = 64, lr: float = 3e-3, clip: float = 1.0,
) -> MaskedLSTM:
    """Seed everything with `seed`, then train a new `MaskedLSTM` with Adam on `train`; return it in eval mode.

    Inputs are rows of `steps` equal chunks; gradients are clipped to norm `clip`. Same arguments, same model.
    Chapter: recurrent
    """
    x, y = np.asarray(train[0], dtype=np.float32), np.asarray(train[1])
    steps = check_count(steps, "steps")
    if x.ndim != 2 or len(x) == 0 or x.shape[1] % steps:
        raise ValueError(f"inputs must be non-empty (examples, features) rows that split into {steps} equal steps, "
                         f"got shape {x.shape}")
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be one integer per input, got shape {y.shape} and dtype {y.dtype}")
    epochs, batch_size = check_count(epochs, "epochs"), check_count(batch_size, "batch_size")
    lr, clip = check_positive(lr, "lr"), check_positive(clip, "clip")
    seed_everything(check_seed(seed))
    model = MaskedLSTM(steps, x.shape[1] // steps, hidden, int(y.max()) + 1, scheme=scheme, drop_rate=drop_rate)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    inputs, labels = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    order = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=order).split(batch_size):
            loss = nn.functional.cross_entropy(model(inputs[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
    return model.eval()


def scheme_run(settings: Mapping[str, Any], seed: int) -> dict[str, float]:
    """The experiment store's run: train one scheme's LSTM on digits read row by row; return its error rates.

    `settings` holds scheme, drop_rate, dataset, hidden, epochs, batch_size, lr. The same seed gives the same
    initial weights and minibatch order for every scheme, so runs pair up seed by seed.
    Chapter: recurrent
    """
    data = load_dataset(settings["dataset"])
    steps = data.image_shape[0] if data.image_shape else data.x_train.shape[1]
    scheme = check_scheme(settings["scheme"])
    model = train_sequence_classifier((data.x_train, data.y_train), steps=steps, scheme=scheme,
                                      drop_rate=settings["drop_rate"] if scheme != "none" else 0.0, seed=seed,
                                      hidden=settings["hidden"], epochs=settings["epochs"],
                                      batch_size=settings["batch_size"], lr=settings["lr"])
    return {f"{split}_error": 1.0 - evaluate(model, x, y)[1] for split, (x, y) in
            {"train": (data.x_train, data.y_train), "val": (data.x_val, data.y_val),
             "test": (data.x_test, data.y_test)}.items()}
