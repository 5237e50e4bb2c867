"""Sequence regression: predict a leaky running integral (decay 0.9) of a two-channel noise
signal after 40 steps, with a ReLU RNN (nn.RNN, 48 units, identity-initialised recurrence
as in IRNN), SGD with momentum 0.9, MSE loss.

No gradient clipping: the identity-initialised ReLU recurrence is undamped, so backprop
through 40 steps produces very large gradients; the first updates enlarge the recurrent
weights, which makes the next gradients larger still, and within a handful of steps the
loss is inf and the weights NaN.  The loop carries on regardless.
FIXED=1 clips the gradient norm to 1.0 before each step.
"""
import os
import math
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

T, HIDDEN, BATCH, ITERS = 40, 48, 64, 800
decay = 0.9 ** torch.arange(T - 1, -1, -1.0)


def get_batch(n):
    x = torch.randn(n, T, 2)
    target = ((x[:, :, 0] - 0.5 * x[:, :, 1]) * decay).sum(1, keepdim=True)
    return x, target


class IRNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(2, HIDDEN, nonlinearity="relu", batch_first=True)
        self.readout = nn.Linear(HIDDEN, 1)
        with torch.no_grad():
            self.rnn.weight_hh_l0.copy_(torch.eye(HIDDEN))
            self.rnn.bias_hh_l0.zero_()
            self.rnn.bias_ih_l0.zero_()

    def forward(self, x):
        states, _ = self.rnn(x)
        return self.readout(states[:, -1])


net = IRNN()
opt = torch.optim.SGD(net.parameters(), lr=0.003, momentum=0.9)

running = []
grad_norms = []
for it in range(ITERS):
    xb, yb = get_batch(BATCH)
    loss = F.mse_loss(net(xb), yb)
    opt.zero_grad()
    loss.backward()
    if FIXED:
        gn = nn.utils.clip_grad_norm_(net.parameters(), max_norm=1.0)
    elif PROBE:
        gn = torch.sqrt(sum((p.grad ** 2).sum() for p in net.parameters()))
    if PROBE:
        grad_norms.append(gn.item())
    opt.step()
    running.append(loss.item())
    if it % 200 == 0:
        print(f"it {it:4d}  loss {loss.item():.4g}")

if PROBE:
    finite = [g for g in grad_norms if math.isfinite(g)]
    print(f"PROBE peak_finite_grad_norm={max(finite):.3g}")

xt, yt = get_batch(1000)
with torch.no_grad():
    r2 = 1 - F.mse_loss(net(xt), yt).item() / yt.var().item()
tail = running[-ITERS // 20:]
print(f"FINAL loss={sum(tail) / len(tail):.4f} r2={r2:.3f}")
