"""Assignment 2 (a2_pytorch_bugs): fixed scripts that differ from the reference fix, each a whole answer cell."""

VARIANTS = {
    "torch.bernoulli mask, an nn.Dropout module for the hidden layer, accuracy() restores the mode": '''
class InputDropout(nn.Module):
    """Inverted dropout on the input features, written by hand."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = torch.bernoulli(torch.full_like(x, 1 - self.p))
        return x * keep / (1 - self.p)


class MLP(nn.Module):
    """Input dropout, one hidden ReLU layer followed by dropout, and a linear output layer."""

    def __init__(self, n_in, n_hidden, n_out, input_p=0.2, hidden_p=0.5):
        super().__init__()
        self.input_dropout = InputDropout(input_p)
        self.hidden = nn.Linear(n_in, n_hidden)
        self.hidden_dropout = nn.Dropout(hidden_p)
        self.output = nn.Linear(n_hidden, n_out)

    def forward(self, x):
        return self.output(self.hidden_dropout(torch.relu(self.hidden(self.input_dropout(x)))))


def train_epoch(model, optimizer, x, y, batch_size=64, generator=None):
    """One pass over (x, y) in shuffled minibatches."""
    model.train(True)
    for batch in torch.randperm(len(x), generator=generator).split(batch_size):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x[batch]), y[batch])
        loss.backward()
        optimizer.step()


def accuracy(model, x, y):
    """The fraction of the examples in (x, y) that the model classifies correctly."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            predictions = model(x).argmax(dim=1)
    finally:
        model.train(was_training)
    return (predictions == y).float().mean().item()
''',
    "rand < 1 - p, torch.where, the hidden dropout before the ReLU": '''
class InputDropout(nn.Module):
    """Inverted dropout on the input features, written by hand."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if self.training:
            keep = torch.rand(x.shape) < 1 - self.p
            return torch.where(keep, x * (1.0 / (1.0 - self.p)), torch.zeros_like(x))
        return x


class MLP(nn.Module):
    """Input dropout, one hidden ReLU layer followed by dropout, and a linear output layer."""

    def __init__(self, n_in, n_hidden, n_out, input_p=0.2, hidden_p=0.5):
        super().__init__()
        self.input_dropout = InputDropout(input_p)
        self.hidden = nn.Linear(n_in, n_hidden)
        self.output = nn.Linear(n_hidden, n_out)
        self.hidden_p = hidden_p

    def forward(self, x):
        h = self.hidden(self.input_dropout(x))
        if self.training:  # dropping before the ReLU drops the same units: relu(0) = 0
            h = F.dropout(h, p=self.hidden_p)
        return self.output(h.relu())


def train_epoch(model, optimizer, x, y, batch_size=64, generator=None):
    """One pass over (x, y) in shuffled minibatches."""
    for module in model.modules():
        module.training = True
    for batch in torch.randperm(len(x), generator=generator).split(batch_size):
        optimizer.zero_grad()
        F.cross_entropy(model(x[batch]), y[batch]).backward()
        optimizer.step()


@torch.inference_mode()
def accuracy(model, x, y):
    """The fraction of the examples in (x, y) that the model classifies correctly."""
    model.train(False)
    return model(x).argmax(dim=1).eq(y).double().mean().item()
''',
}
