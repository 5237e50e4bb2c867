"""Waveform-type classification (sine / square / triangle / sawtooth, noisy, random
frequency and phase) with a 10-layer Conv1d + BatchNorm1d + ReLU network, Adam, CE loss.

The convolutions are initialised N(0, 0.4^2), which is harmless while BatchNorm
normalises every layer.  But evaluate() switches the model to eval mode and the training
loop never switches it back, so BatchNorm uses its initial running statistics (mean 0,
var 1) and normalises nothing: each layer multiplies activations and gradients by ~2.5,
the gradients are ~50-150 times larger than with working BatchNorm and the loss spikes
into the hundreds.
FIXED=1 calls model.train() at the start of every epoch.
"""
import os
import math
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"


def make_waves(n, length=32):
    t = torch.arange(length).float()
    kind = torch.randint(0, 4, (n,))
    freq = torch.rand(n) * 0.15 + 0.05
    phase = torch.rand(n) * 2 * math.pi
    u = 2 * math.pi * freq[:, None] * t[None, :] + phase[:, None]
    shapes = torch.stack([
        torch.sin(u),
        torch.sign(torch.sin(u)),
        (2 / math.pi) * torch.asin(torch.sin(u)),
        torch.remainder(u / (2 * math.pi), 1.0) * 2 - 1,
    ], dim=1)
    x = shapes[torch.arange(n), kind] + 0.3 * torch.randn(n, length)
    return x.unsqueeze(1), kind


x_train, y_train = make_waves(3000)
x_val, y_val = make_waves(1000)


def conv_bn(c_in, c_out):
    return [nn.Conv1d(c_in, c_out, 5, padding=2, bias=False), nn.BatchNorm1d(c_out), nn.ReLU()]


CH = 16
layers = conv_bn(1, CH)
for _ in range(9):
    layers += conv_bn(CH, CH)
model = nn.Sequential(*layers, nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(CH, 4))
for m in model.modules():
    if isinstance(m, nn.Conv1d):
        nn.init.normal_(m.weight, 0.0, 0.4)

optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)


def evaluate():
    model.eval()
    with torch.no_grad():
        logits = model(x_val)
    return (logits.argmax(1) == y_val).float().mean().item()


print(f"initial val acc {evaluate():.3f}")
EPOCHS, BS = 11, 64
losses = []
for epoch in range(EPOCHS):
    if FIXED:
        model.train()
    order = torch.randperm(len(x_train))
    for i in range(0, len(x_train) - BS + 1, BS):
        idx = order[i:i + BS]
        loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    if epoch % 3 == 2:
        print(f"epoch {epoch + 1} loss {sum(losses[-46:]) / 46:.3f} val acc {evaluate():.3f}")

if PROBE:
    # |dL/d(output of conv block 1)| / |dL/d(output of conv block 10)| on one batch,
    # in the same mode the training loop ran in: how much the gradient grows backward
    model.train(FIXED)
    acts = []
    h = x_train[:256]
    for m in model:
        h = m(h)
        if isinstance(m, nn.ReLU):
            h.retain_grad()
            acts.append(h)
    F.cross_entropy(h, y_train[:256]).backward()
    growth = acts[0].grad.norm() / acts[-1].grad.norm()
    print(f"PROBE backward_grad_growth={growth.item():.3g}")

acc = evaluate()
k = max(1, len(losses) // 20)
print(f"FINAL loss={sum(losses[-k:]) / k:.4f} val_acc={acc:.3f}")
