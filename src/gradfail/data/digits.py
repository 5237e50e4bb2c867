"""scikit-learn's digits (1,797 8×8 images, 10 classes): shipped inside the package, no download.

As vectors, pixels are standardised with the training split's mean and standard deviation
(constant pixels keep scale 1); as images they stay raw intensities. The split is a seeded
permutation, 80% train, 20% test.
"""

from __future__ import annotations

import functools

import numpy as np
import torch


@functools.cache
def _load() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    return images.astype(np.float32), labels.astype(np.int64)


TRAINING_DIGITS = 1_437  # the 80% training split of the 1,797 images


def check_training_sizes(sizes: list[int]) -> list[int]:
    """A pydantic validator's body: training-set sizes must fit in the training split."""
    if max(sizes) > TRAINING_DIGITS:
        raise ValueError(f"{max(sizes)} training digits asked for; the split holds "
                         f"{TRAINING_DIGITS}")
    return sizes


def split(generator: torch.Generator, test_fraction: float = 0.2
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded permutation of the 1,797 indices cut into (train, test)."""
    n = len(_load()[1])
    order = torch.randperm(n, generator=torch.Generator().manual_seed(
        int(torch.randint(2**62, (1,), generator=generator, device=generator.device))))
    n_test = round(test_fraction * n)
    return order[n_test:], order[:n_test]


def digits(generator: torch.Generator, device: torch.device, test_fraction: float = 0.2
           ) -> dict[str, torch.Tensor]:
    """{train_x, train_y, test_x, test_y}: x (n, 64) standardised, y (n,) in 0..9."""
    images, labels = _load()
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    train, test = split(generator, test_fraction)
    mean, std = x[train].mean(0), x[train].std(0)
    std[std == 0] = 1
    x = (x - mean) / std
    return {"train_x": x[train].to(device), "train_y": y[train].to(device),
            "test_x": x[test].to(device), "test_y": y[test].to(device)}


def digit_images(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 images as (n, 8, 8) intensities in [0, 1] (the raw 0..16 / 16), and labels:
    unstandardised, so a blank neighbourhood stays flat."""
    images, labels = _load()
    return (torch.from_numpy(images / 16).view(-1, 8, 8).to(device),
            torch.from_numpy(labels).to(device))
