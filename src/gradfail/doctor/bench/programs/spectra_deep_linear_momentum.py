"""Spectral calibration: predict 3 component concentrations from smooth absorbance spectra.

Model: a deep linear network (four stacked nn.Linear layers, no activations), MSE loss,
mini-batch momentum SGD via a DataLoader. Every wavelength is standardised, but
neighbouring wavelengths are almost copies of each other (broad overlapping peaks), so
the loss has a few steep directions and many very flat ones: the steep part of the signal
is fit at once and the rest creeps along. FIXED=1 PCA-whitens the spectra before training.
"""
import os
import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(1)
np.random.seed(1)

FIXED = os.environ.get("FIXED") == "1"
PROBE = os.environ.get("PROBE") == "1"

# --- synthetic spectra: 10 chemical species with broad Gaussian absorption peaks -------
n_samples, n_species, n_wavelengths = 1200, 10, 40
grid = np.linspace(0.0, 1.0, n_wavelengths)
peaks = np.linspace(0.2, 0.8, n_species)
signatures = np.exp(-(grid[None, :] - peaks[:, None]) ** 2 / (2 * 0.08 ** 2))
conc = np.random.randn(n_samples, n_species)
spectra = conc @ signatures + 0.003 * np.random.randn(n_samples, n_wavelengths)
spectra = (spectra - spectra.mean(0)) / spectra.std(0)
if FIXED:
    # PCA whitening: rotate onto the principal axes and give each unit variance
    evals, evecs = np.linalg.eigh(spectra.T @ spectra / n_samples)
    spectra = spectra @ evecs / np.sqrt(evals)
mixing = np.random.randn(n_species, 3) / np.sqrt(n_species)
targets = conc @ mixing
targets = (targets - targets.mean(0)) / targets.std(0)

X = torch.tensor(spectra, dtype=torch.float32)
Y = torch.tensor(targets, dtype=torch.float32)
loader = DataLoader(TensorDataset(X, Y), batch_size=64, shuffle=True)

net = nn.Sequential(
    nn.Linear(n_wavelengths, 32),
    nn.Linear(32, 32),
    nn.Linear(32, 32),
    nn.Linear(32, 3),
)
optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
criterion = nn.MSELoss()

epochs = 80
losses = []
for epoch in range(epochs):
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = criterion(net(xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    if epoch % 20 == 0:
        print(f"epoch {epoch:3d} loss {np.mean(losses[-19:]):.4f}")

with torch.no_grad():
    pred = net(X)
    r2 = 1 - ((pred - Y) ** 2).sum().item() / ((Y - Y.mean(0)) ** 2).sum().item()

if PROBE:
    # the curvature of the loss is shaped by the covariance of the network's input
    cov = X.double().T @ X.double() / n_samples
    ev = torch.linalg.eigvalsh(cov)
    print(f"PROBE input_covariance_condition={(ev.max() / ev.min()).item():.3g}")

tail = losses[-max(1, len(losses) // 20):]
print(f"FINAL loss={np.mean(tail):.4f} r2={r2:.4f}")
