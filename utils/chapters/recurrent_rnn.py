"""The recurrent chapter's plain-RNN sweep: a tanh RNN whose only mask is on the recurrent state h_{t-1}.

An LSTM can carry its memory in the cell state c_t, which no scheme masks; a plain RNN, h_t = tanh(W x_t +
U (m_t * h_{t-1}) + b), has nowhere else to keep it. `rnn_run` trains one on a stratified subset of digits read row
by row with no recurrent mask, a fresh one at each step ("step"), or one per sequence ("sequence"). The experiment
store calls it (the sweep `recurrent_rnn` in `utils.sweeps`).

Rates are drop rates p; kept units are divided by q = 1 - p in training (inverted dropout), nothing at test time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from utils.chapters.paper_sweeps import subset
from utils.chapters.recurrent_sweeps import dropout_masks
from utils.checks import check_count, check_positive, check_rate, check_seed
from utils.data import load_dataset
from utils.seeding import seed_everything
from utils.training import evaluate

RNN_MODES: tuple[str, ...] = ("none", "step", "sequence")


class RecurrentMaskRNN(nn.Module):
    """A one-layer tanh RNN classifier with dropout on the recurrent state only: none, per step or per sequence.

    Inputs are (batch, steps * features) rows read `features` values at a time; the class comes from the last state.
    Masks are drawn only in training mode.
    Chapter: recurrent
    """

    def __init__(self, steps: int, features: int, hidden: int, n_classes: int, *, mode: str = "none",
                 drop_rate: float = 0.0) -> None:
        super().__init__()
        if mode not in RNN_MODES:
            raise ValueError(f"mode must be one of {RNN_MODES}, got {mode!r}")
        self.steps, self.features = check_count(steps, "steps"), check_count(features, "features")
        self.hidden, self.mode, self.drop_rate = check_count(hidden, "hidden"), mode, check_rate(drop_rate)
        if (mode == "none") != (self.drop_rate == 0.0):
            raise ValueError(f"mode 'none' goes with drop_rate 0 and the others with a rate above 0; got mode "
                             f"{mode!r} and drop_rate {drop_rate!r}")
        self.input_weights = nn.Linear(self.features, self.hidden)
        self.recurrent_weights = nn.Linear(self.hidden, self.hidden, bias=False)
        self.classifier = nn.Linear(self.hidden, check_count(n_classes, "n_classes", minimum=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores for a batch of flattened sequences."""
        if x.ndim != 2 or x.shape[1] != self.steps * self.features:
            raise ValueError(f"inputs must be (batch, {self.steps * self.features}) rows, got {tuple(x.shape)}")
        batch = x.shape[0]
        from_inputs = self.input_weights(x.reshape(batch, self.steps, self.features))
        mask = (dropout_masks(batch, self.steps, self.hidden, self.drop_rate, self.mode)
                if self.training and self.mode != "none" else None)
        h = x.new_zeros(batch, self.hidden)
        for t in range(self.steps):
            h_in = h if mask is None else h * mask[:, min(t, mask.shape[1] - 1)]
            h = torch.tanh(from_inputs[:, t] + self.recurrent_weights(h_in))
        return self.classifier(h)


def train_rnn(train: tuple[np.ndarray, np.ndarray], *, steps: int, mode: str, drop_rate: float, seed: int,
              hidden: int = 64, epochs: int = 20, batch_size: int = 50, lr: float = 3e-3,
              clip: float = 1.0) -> RecurrentMaskRNN:
    """Seed everything with `seed`, then train a new `RecurrentMaskRNN` with Adam on `train`; return it in eval mode.

    Same seed, same initial weights and minibatch order in every mode. Gradients are clipped to norm `clip`.
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
    model = RecurrentMaskRNN(steps, x.shape[1] // steps, hidden, int(y.max()) + 1, mode=mode, drop_rate=drop_rate)
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


def rnn_run(settings: Mapping[str, Any], seed: int) -> dict[str, float]:
    """The experiment store's run: train one mode's RNN on `n_train` digits read row by row; return error rates.

    `settings` holds mode, drop_rate, dataset, n_train, subset_seed, hidden, epochs, batch_size, lr; the rate is
    used only where the mode masks. Training error is measured without masks on the subset trained on.
    Chapter: recurrent
    """
    data = load_dataset(settings["dataset"])
    steps = data.image_shape[0] if data.image_shape else data.x_train.shape[1]
    mode = settings["mode"]
    train = subset(data.x_train, data.y_train, check_count(settings["n_train"], "n_train"),
                   seed=check_seed(settings["subset_seed"]))
    model = train_rnn(train, steps=steps, mode=mode, drop_rate=settings["drop_rate"] if mode != "none" else 0.0,
                      seed=seed, hidden=settings["hidden"], epochs=settings["epochs"],
                      batch_size=settings["batch_size"], lr=settings["lr"])
    return {f"{split}_error": 1.0 - evaluate(model, x, y)[1] for split, (x, y) in
            {"train": train, "val": (data.x_val, data.y_val), "test": (data.x_test, data.y_test)}.items()}
