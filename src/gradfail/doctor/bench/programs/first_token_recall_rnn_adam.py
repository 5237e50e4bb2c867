"""Long-range recall: label a 50-step, 6-channel noise sequence by the sign of x[0,0] + x[1,0].
Model: nn.RNN (tanh, hidden 32, default init), linear head on the last state; Adam with
gradient-norm clipping, BCEWithLogits.
Cause of failure: the vanilla RNN's recurrence is contracting, so the gradient from the loss to
the first time steps shrinks geometrically over ~50 steps; the net cannot learn to carry the
early information and stays near chance.
FIXED=1: a gated cell, nn.LSTM (with the customary positive forget-gate bias).
"""
import os

import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(10)
np.random.seed(10)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

T, C, N, H = 50, 6, 4000, 32
seqs = np.random.randn(N, T, C).astype(np.float32)
labels = (seqs[:, 0, 0] + seqs[:, 1, 0] > 0).astype(np.float32)
X, Y = torch.from_numpy(seqs), torch.from_numpy(labels)
X_tr, Y_tr, X_te, Y_te = X[:3200], Y[:3200], X[3200:], Y[3200:]


class Recaller(nn.Module):
    def __init__(self, hidden=H):
        super().__init__()
        if FIXED:
            self.rnn = nn.LSTM(C, hidden, batch_first=True)
            with torch.no_grad():  # gates are ordered i, f, g, o
                self.rnn.bias_ih_l0[hidden:2 * hidden].fill_(2.0)
                self.rnn.bias_hh_l0[hidden:2 * hidden].fill_(2.0)
        else:
            self.rnn = nn.RNN(C, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1]).squeeze(-1)


model = Recaller()
params = list(model.parameters())
opt = torch.optim.Adam(params, lr=3e-3)
loss_fn = nn.BCEWithLogitsLoss()
steps, bs = 600, 64
losses, probe = [], []
for step in range(steps):
    idx = torch.randint(0, len(X_tr), (bs,))
    xb = X_tr[idx]
    probing = PROBE and step % 50 == 0
    if probing:
        xb = xb.clone().requires_grad_(True)
    loss = loss_fn(model(xb), Y_tr[idx])
    opt.zero_grad()
    loss.backward()
    if probing:
        g = xb.grad.norm(dim=(0, 2))  # gradient w.r.t. the input at each time step
        probe.append((g[0] / g[-1]).item())
    nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    losses.append(loss.item())

with torch.no_grad():
    acc = ((model(X_te) > 0).float() == Y_te).float().mean().item()
if PROBE:
    print(f"PROBE first_to_last_step_input_grad={np.median(probe):.3g}")
print(f"FINAL loss={np.mean(losses[-steps // 20:]):.4f} test_acc={acc:.3f}")
