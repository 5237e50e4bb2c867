"""Sequence regression: predict a decaying running average of a noisy 3-channel signal.
Model: hand-written Elman RNN (h = torch.tanh(W_ih x + W_hh h + b), loop in forward()), linear
read-out; W_ih initialised from N(0, 6^2). Adam with gradient-norm clipping, MSE. Inputs standardised.
Cause of failure: the large input weights drive every tanh far into its flat tails at every step,
so the state is a near-binary copy of the current input, tanh derivatives are ~0 and the
recurrence cannot learn to integrate. FIXED=1: Xavier/Glorot initialisation of W_ih.
"""
import os

import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(7)
np.random.seed(7)
FIXED = os.environ.get("FIXED", "0") == "1"
PROBE = os.environ.get("PROBE", "0") == "1"

T, D, H = 20, 3, 32
N = 4000
x = np.random.randn(N, T, D).astype(np.float32)
decay = 0.85 ** np.arange(T)[::-1]
target = (x[:, :, 0] * decay).sum(1) - 0.5 * (x[:, :, 1] * decay).sum(1)
target = ((target - target.mean()) / target.std()).astype(np.float32)
x = (x - x.mean((0, 1))) / x.std((0, 1))
X, Y = torch.from_numpy(x), torch.from_numpy(target)
X_tr, Y_tr, X_te, Y_te = X[:3200], Y[:3200], X[3200:], Y[3200:]


class ElmanRNN(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.W_ih = nn.Parameter(torch.empty(h, d))
        self.W_hh = nn.Parameter(torch.empty(h, h))
        self.b = nn.Parameter(torch.zeros(h))
        self.readout = nn.Linear(h, 1)
        if FIXED:
            nn.init.xavier_normal_(self.W_ih)
        else:
            nn.init.normal_(self.W_ih, 0.0, 6.0)
        nn.init.orthogonal_(self.W_hh, gain=0.9)

    def forward(self, x, keep_pre=False):
        h = x.new_zeros(x.shape[0], self.W_hh.shape[0])
        pres = []
        for t in range(x.shape[1]):
            pre = x[:, t] @ self.W_ih.T + h @ self.W_hh.T + self.b
            h = torch.tanh(pre)
            if keep_pre:
                pres.append(pre)
        y = self.readout(h).squeeze(-1)
        return (y, torch.stack(pres, 1)) if keep_pre else y


model = ElmanRNN(D, H)
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
steps, bs = 800, 64
losses = []
for step in range(steps):
    idx = torch.randint(0, len(X_tr), (bs,))
    loss = torch.mean((model(X_tr[idx]) - Y_tr[idx]) ** 2)
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    opt.step()
    losses.append(loss.item())

with torch.no_grad():
    pred = model(X_te)
    r2 = 1 - torch.mean((pred - Y_te) ** 2).item() / Y_te.var().item()
    if PROBE:
        _, pre = model(X_tr[:512], keep_pre=True)
        d = 1 - torch.tanh(pre) ** 2
        print(f"PROBE mean_tanh_derivative={d.mean().item():.3g}")
print(f"FINAL loss={np.mean(losses[-steps // 20:]):.4f} r2={r2:.3f}")
