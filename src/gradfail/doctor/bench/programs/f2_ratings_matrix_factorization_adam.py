"""Rating prediction on a synthetic user x item matrix with a matrix-factorisation model
(healthy run that is continued well past convergence).

Model: user and item nn.Embedding tables (dim 8) plus per-user / per-item bias embeddings and
a global offset; prediction = <u, v> + b_u + b_i + mu. Data: 200 users, 120 items, 24000
observed ratings from a rank-4 ground truth plus noise. MSE with a small L2 penalty on the
looked-up factors; Adam lr 2e-2, batches of 256. Phase 1 (500 steps) converges to the noise
floor; phase 2 continues for 1000 more steps at lr 2e-3 and simply stays there.
Healthy: FIXED=1 changes nothing.
"""
import os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(10)
np.random.seed(10)
PROBE = os.environ.get("PROBE") == "1"

N_USERS, N_ITEMS, RANK, N_OBS = 200, 120, 4, 24000
U_true = torch.randn(N_USERS, RANK) / RANK ** 0.25
V_true = torch.randn(N_ITEMS, RANK) / RANK ** 0.25
users = torch.randint(0, N_USERS, (N_OBS,))
items = torch.randint(0, N_ITEMS, (N_OBS,))
ratings = 3.0 + (U_true[users] * V_true[items]).sum(1) + 0.3 * torch.randn(N_OBS)
n_tr = 20000
u_tr, i_tr, r_tr = users[:n_tr], items[:n_tr], ratings[:n_tr]
u_te, i_te, r_te = users[n_tr:], items[n_tr:], ratings[n_tr:]


class MF(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.user = nn.Embedding(N_USERS, dim)
        self.item = nn.Embedding(N_ITEMS, dim)
        self.user_bias = nn.Embedding(N_USERS, 1)
        self.item_bias = nn.Embedding(N_ITEMS, 1)
        self.mu = nn.Parameter(torch.tensor(float(r_tr.mean())))
        for emb in (self.user, self.item):
            nn.init.normal_(emb.weight, 0.0, 0.1)
        for emb in (self.user_bias, self.item_bias):
            nn.init.zeros_(emb.weight)

    def forward(self, u, i):
        pu, qi = self.user(u), self.item(i)
        pred = (pu * qi).sum(1) + self.user_bias(u).squeeze(1) + self.item_bias(i).squeeze(1)
        return pred + self.mu, (pu.pow(2).sum(1) + qi.pow(2).sum(1)).mean()


model = MF()
opt = torch.optim.Adam(model.parameters(), lr=2e-2)
losses = []


def train(n_steps, tag):
    for step in range(n_steps):
        idx = torch.randint(0, n_tr, (256,))
        pred, reg = model(u_tr[idx], i_tr[idx])
        mse = F.mse_loss(pred, r_tr[idx])
        loss = mse + 1e-2 * reg
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(mse.item())
        if step % 250 == 249:
            print(f"{tag} step {step + 1} mse={np.mean(losses[-250:]):.4f}")


train(500, "phase1")
for g in opt.param_groups:
    g["lr"] = 2e-3
train(1000, "phase2")

with torch.no_grad():
    pred, _ = model(u_te, i_te)
    test_mse = F.mse_loss(pred, r_te).item()
    r2 = 1 - test_mse / r_te.var().item()
if PROBE:
    # held-out error relative to the noise floor (noise variance 0.09)
    print(f"PROBE test_mse_over_noise_floor={test_mse / 0.09:.3g}")
tail = max(1, len(losses) // 20)
print(f"FINAL loss={np.mean(losses[-tail:]):.4f} test_r2={r2:.3f}")
