"""Nonlinear regression on data from a random teacher network, with a 12-block residual
MLP (x + W2 relu(W1 x), width 64, no normalisation), RMSprop, Huber loss.

Every Linear layer, including the last layer of each residual branch, gets He (kaiming
normal) initialisation.  Each branch then adds about twice the variance of its input, so
the signal and the backward gradient grow by ~1.7x per block (~1e3 over 12 blocks):
gradients are about a hundred times too large, the loss spikes into the thousands and the
fit stays poor.  FIXED=1 zero-initialises the last layer of every residual branch (Fixup /
ReZero style) so each block starts as the identity.
"""
import os
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

IN_DIM, WIDTH, BLOCKS = 16, 64, 12
N_TRAIN, N_TEST = 4000, 1000

teacher_w1 = torch.randn(IN_DIM, 32) / 4
teacher_w2 = torch.randn(32, 1) / 32 ** 0.5
X = torch.randn(N_TRAIN + N_TEST, IN_DIM)
Y = 3 * torch.tanh(X @ teacher_w1) @ teacher_w2 + 0.05 * torch.randn(N_TRAIN + N_TEST, 1)
Y = (Y - Y.mean()) / Y.std()
X_train, Y_train, X_test, Y_test = X[:N_TRAIN], Y[:N_TRAIN], X[N_TRAIN:], Y[N_TRAIN:]


class ResidualBlock(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)

    def forward(self, x):
        return x + self.fc2(F.relu(self.fc1(x)))


class ResMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(IN_DIM, WIDTH)
        self.blocks = nn.ModuleList([ResidualBlock(WIDTH) for _ in range(BLOCKS)])
        self.head = nn.Linear(WIDTH, 1)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        if FIXED:
            for blk in self.blocks:
                nn.init.zeros_(blk.fc2.weight)

    def forward(self, x, keep=None):
        x = self.stem(x)
        for blk in self.blocks:
            x = blk(x)
            if keep is not None:
                x.retain_grad()
                keep.append(x)
        return self.head(x)


model = ResMLP()
opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)

EPOCHS, BS = 13, 64
step_losses = []
growths = []


def backward_growth():
    # |dL/d(block 1 output)| / |dL/d(block 12 output)| on a fixed batch
    kept = []
    F.huber_loss(model(X_train[:512], keep=kept), Y_train[:512]).backward()
    return (kept[0].grad.norm() / kept[-1].grad.norm()).item()


for epoch in range(EPOCHS):
    if PROBE:
        growths.append(backward_growth())
    perm = torch.randperm(N_TRAIN)
    for start in range(0, N_TRAIN, BS):
        idx = perm[start:start + BS]
        pred = model(X_train[idx])
        loss = F.huber_loss(pred, Y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        step_losses.append(loss.item())
    if epoch % 4 == 0:
        print(f"epoch {epoch:2d}  huber {sum(step_losses[-63:]) / 63:.4f}")

if PROBE:
    growths.sort()
    print(f"PROBE median_grad_growth_block1_over_block12={growths[len(growths) // 2]:.3g}")

with torch.no_grad():
    mse = F.mse_loss(model(X_test), Y_test).item()
r2 = 1 - mse / Y_test.var().item()
k = len(step_losses) // 20
print(f"FINAL loss={sum(step_losses[-k:]) / k:.4f} r2={r2:.3f}")
