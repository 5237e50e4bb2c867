"""Near-infrared spectroscopy calibration: predict an analyte score from
80-channel absorbance spectra made of broad, overlapping bands. Each channel
is standardized; model is a one-hidden-layer ReLU MLP (nn.Sequential) trained
with mini-batch SGD + momentum on MSE.
Cause of failure: neighbouring channels are almost copies of each other, so
the input covariance (and the first layer's curvature) has eigenvalues spread
over ~7 orders of magnitude; the step that is stable for the dominant bands
barely moves the weights along the weak bands that carry part of the signal:
a quick initial drop, then a long creep.
FIXED=1: PCA-whiten the standardized spectra (decorrelate, unit variance per
component) before training.
"""
import os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
np.random.seed(0)
FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

rng = np.random.default_rng(0)
n, channels, n_bands = 5000, 80, 10
wavelength = np.linspace(0.0, 1.0, channels)
centres = np.linspace(0.1, 0.9, n_bands)
bands = np.exp(-(wavelength[None, :] - centres[:, None]) ** 2 / (2 * 0.12 ** 2))
conc = rng.standard_normal((n, n_bands))                        # latent concentrations
spectra = conc @ bands + 0.001 * rng.standard_normal((n, channels))
target = np.tanh(conc @ rng.standard_normal(n_bands) / 2) + 0.3 * conc[:, 0] * conc[:, 1]
target = (target - target.mean()) / target.std()

n_train = 4000
mu, sd = spectra[:n_train].mean(0), spectra[:n_train].std(0)
X = (spectra - mu) / sd                                          # per-channel standardization
if FIXED:
    cov = np.cov(X[:n_train].T)
    evals, evecs = np.linalg.eigh(cov)
    X = X @ (evecs / np.sqrt(evals + 1e-5))                      # PCA whitening
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(target, dtype=torch.float32)
X_train, y_train, X_test, y_test = X[:n_train], y[:n_train], X[n_train:], y[n_train:]

model = nn.Sequential(nn.Linear(channels, 64), nn.ReLU(), nn.Linear(64, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.003, momentum=0.9)
steps, bs = 2000, 64

losses = []
for step in range(steps):
    idx = torch.randint(0, n_train, (bs,))
    loss = F.mse_loss(model(X_train[idx]).squeeze(-1), y_train[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    if step % 400 == 399:
        print(f"step {step + 1} loss {np.mean(losses[-400:]):.4f}")

with torch.no_grad():
    r2 = (1 - F.mse_loss(model(X_test).squeeze(-1), y_test) / y_test.var()).item()
if PROBE:
    ev = torch.linalg.eigvalsh(torch.cov(X_train.T.double()))
    print(f"PROBE input_cov_condition={(ev.max() / ev.min()).item():.3g}")
k = steps // 20
print(f"FINAL loss={np.mean(losses[-k:]):.4f} test_r2={r2:.4f}")
