"""A fifth arm for the recurrent chapter's stored sweep: per-step input masks with one recurrent mask per sequence.

The variational scheme of `utils.chapters.recurrent_sweeps` changes two things at once against Zaremba et al.'s:
its input masks become one per sequence, and the recurrent connection gets a mask (one per sequence). The arm
"recurrent_sequence" changes only the second: Zaremba et al.'s per-step masks on the inputs and the last state,
plus one recurrent mask per sequence. Trained with the same settings and seeds as the sweep `recurrent_schemes`, it
pairs seed by seed with that sweep's arms (same initial weights, same minibatch order).

- `ArmLSTM` is `MaskedLSTM` with the extra scheme; `train_arm` trains one exactly as `train_sequence_classifier`
  does; `arm_run` is the experiment store's run function (the sweep `recurrent_arms` in `utils.sweeps`).

Rates are drop rates p; kept units are divided by q = 1 - p in training (inverted dropout), nothing at test time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from utils.chapters.recurrent_sweeps import SCHEMES, MaskedLSTM, dropout_masks
from utils.checks import check_count, check_positive, check_rate, check_seed
from utils.data import load_dataset
from utils.seeding import seed_everything
from utils.training import evaluate

# The sweep's four schemes and the new arm: where each puts a mask ("step", "sequence" or None).
ARM_SCHEMES: dict[str, dict[str, str | None]] = {
    **SCHEMES,
    "recurrent_sequence": {"inputs": "step", "recurrent": "sequence", "output": "step"},
}


def check_arm_scheme(scheme: str) -> str:
    """Return `scheme` if it names one of ARM_SCHEMES, else raise a ValueError that lists them.

    Chapter: recurrent
    """
    if not isinstance(scheme, str) or scheme not in ARM_SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(ARM_SCHEMES)}; got {scheme!r}")
    return scheme


class ArmLSTM(MaskedLSTM):
    """`MaskedLSTM` that also takes the scheme "recurrent_sequence" (per-step input masks, per-sequence recurrent).

    The weights are built exactly as `MaskedLSTM` builds them, so a seed gives the same initial weights.
    Chapter: recurrent
    """

    def __init__(self, steps: int, features: int, hidden: int, n_classes: int, *, scheme: str = "none",
                 drop_rate: float = 0.0) -> None:
        scheme = check_arm_scheme(scheme)
        if (scheme == "none") != (check_rate(drop_rate) == 0.0):
            raise ValueError(f"scheme 'none' goes with drop_rate 0 and every other scheme with a rate above 0; got "
                             f"scheme {scheme!r} and drop_rate {drop_rate!r}")
        # any of the parent's schemes with masks stands in for the new one while the weights are built
        super().__init__(steps, features, hidden, n_classes, scheme=scheme if scheme in SCHEMES else "zaremba",
                         drop_rate=drop_rate)
        self.scheme = scheme

    def _mask(self, where: str, batch: int, size: int) -> torch.Tensor | None:
        """The masks for one place (inputs, recurrent, output); None if it has none."""
        mode = ARM_SCHEMES[self.scheme][where]
        if mode is None or not self.training:
            return None
        steps = 1 if where == "output" else self.steps
        return dropout_masks(batch, steps, size, self.drop_rate, mode)


def train_arm(
    train: tuple[np.ndarray, np.ndarray], *, steps: int, scheme: str, drop_rate: float, seed: int,
    hidden: int = 64, epochs: int = 8, batch_size: int = 64, lr: float = 3e-3, clip: float = 1.0,
) -> ArmLSTM:
    """Seed everything with `seed`, then train a new `ArmLSTM` with Adam on `train`; return it in eval mode.

    The same steps, in the same order, as `train_sequence_classifier`: for the sweep's four schemes both give the
    same model. Gradients are clipped to norm `clip`.
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
    model = ArmLSTM(steps, x.shape[1] // steps, hidden, int(y.max()) + 1, scheme=scheme, drop_rate=drop_rate)
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


def arm_run(settings: Mapping[str, Any], seed: int) -> dict[str, float]:
    """The experiment store's run: train one arm's LSTM on digits read row by row; return its error rates.

    `settings` holds scheme, drop_rate, dataset, hidden, epochs, batch_size, lr (as in the sweep
    `recurrent_schemes`, so that runs pair up seed by seed with it).
    Chapter: recurrent
    """
    data = load_dataset(settings["dataset"])
    steps = data.image_shape[0] if data.image_shape else data.x_train.shape[1]
    scheme = check_arm_scheme(settings["scheme"])
    model = train_arm((data.x_train, data.y_train), steps=steps, scheme=scheme,
                      drop_rate=settings["drop_rate"] if scheme != "none" else 0.0, seed=seed,
                      hidden=settings["hidden"], epochs=settings["epochs"], batch_size=settings["batch_size"],
                      lr=settings["lr"])
    return {f"{split}_error": 1.0 - evaluate(model, x, y)[1] for split, (x, y) in
            {"train": (data.x_train, data.y_train), "val": (data.x_val, data.y_val),
             "test": (data.x_test, data.y_test)}.items()}
