"""Sequence regression with a vanilla tanh RNN (nn.RNN, 32 units), Adam, MSE loss.

Each input is a length-30 noise sequence and the target is the (scaled) sum of its first
five values, so the error signal has to travel back ~25 steps.  The recurrent matrix is
initialised as N(0, 3^2/H) ("large gain for long memory"), spectral radius ~3: the
backward pass multiplies the gradient by a Jacobian with norm > 1 at every step, so the
gradients are hundreds of times larger than with a sane recurrence, the Adam updates are
erratic and the loss never comes down.
FIXED=1 initialises the recurrent matrix orthogonally (gain 1) instead.
"""
import os
import torch
import torch.nn as nn

torch.manual_seed(0)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

SEQ_LEN, HIDDEN, BATCH, STEPS = 30, 32, 64, 800


def sample(n):
    x = torch.randn(n, SEQ_LEN, 1)
    y = x[:, :5, 0].sum(dim=1, keepdim=True) / 5 ** 0.5
    return x, y


class EarlySumRNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(1, HIDDEN, batch_first=True)
        self.head = nn.Linear(HIDDEN, 1)
        with torch.no_grad():
            if FIXED:
                nn.init.orthogonal_(self.rnn.weight_hh_l0)
            else:
                self.rnn.weight_hh_l0.normal_(0.0, 3.0 / HIDDEN ** 0.5)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


net = EarlySumRNN()
optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
criterion = nn.MSELoss()
x_test, y_test = sample(2000)

history = []
for step in range(1, STEPS + 1):
    xb, yb = sample(BATCH)
    loss = criterion(net(xb), yb)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    history.append(loss.item())
    if step % 200 == 0:
        print(f"step {step} loss {sum(history[-200:]) / 200:.4f}")

if PROBE:
    # dL/dx_t at an early step (t=2) relative to the last step: growth through time
    xp, yp = sample(512)
    xp.requires_grad_(True)
    criterion(net(xp), yp).backward()
    g = xp.grad.norm(dim=(0, 2))
    print(f"PROBE grad_growth_t2_over_tlast={(g[2] / g[-1]).item():.3g}")

with torch.no_grad():
    test_mse = criterion(net(x_test), y_test).item()
r2 = 1.0 - test_mse / y_test.var().item()
tail = history[-STEPS // 20:]
print(f"FINAL loss={sum(tail) / len(tail):.4f} r2={r2:.3f}")
