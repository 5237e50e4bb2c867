"""k-tuples of one-pixel line images with a parity label (paper §3.1; the authors' code).

A line has an angle θ ~ U[0, π), a length l ~ U(5, size − 5) and a centre ~ U(0, size)²
(continuous, as in the code; the paper writes U[0, 27]²). It is drawn by setting, for
s = 0 … ⌊l/2⌋ − 1 and both signs, the pixel at trunc(centre ± s·(cos θ, sin θ)) — truncation
toward zero as the code's `int()`; the cos component is the row. Points outside are dropped.
An image's label is +1 iff θ < π/2; a tuple's label is the product of its k image labels.

Pools hold line parameters, not images (the authors' 500k float32 tuples would be gigabytes);
images are rasterised on demand for each batch, all lines at once.
"""

from __future__ import annotations

import math

import torch

from gradfail.errors import ConfigError

MIN_LENGTH = 5.0  # U(5, size − 5): the code's length range for 28×28 images


def random_lines(shape: tuple[int, ...], generator: torch.Generator, size: int = 28
                 ) -> torch.Tensor:
    """Line parameters (θ, length, centre row, centre column): shape + (4,), float32."""
    if size <= 2 * MIN_LENGTH:
        raise ConfigError(f"image size {size} is too small for lines of length 5..{size - 5}; "
                          f"it must exceed {2 * MIN_LENGTH:.0f}")
    uniform = torch.rand(*shape, 4, generator=generator, device=generator.device)
    low = torch.tensor([0.0, MIN_LENGTH, 0.0, 0.0], device=generator.device)
    high = torch.tensor([math.pi, size - MIN_LENGTH, size, size], device=generator.device)
    return low + uniform * (high - low)


def line_labels(lines: torch.Tensor) -> torch.Tensor:
    """+1 if θ < π/2 else −1, per line: (...)."""
    return torch.where(lines[..., 0] < math.pi / 2, 1.0, -1.0)


def tuple_labels(lines: torch.Tensor) -> torch.Tensor:
    """The parity of a tuple: the product of its images' labels. lines: (..., k, 4) -> (...)."""
    return line_labels(lines).prod(-1)


def rasterise(lines: torch.Tensor, size: int = 28) -> torch.Tensor:
    """Binary float32 images (..., size, size) of the lines (..., 4), no Python loop over pixels."""
    flat = lines.reshape(-1, 4)
    angle, length, centre = flat[:, 0], flat[:, 1], flat[:, 2:]
    longest = int((size - MIN_LENGTH) // 2)
    steps = torch.arange(longest, device=lines.device, dtype=lines.dtype)
    direction = torch.stack((torch.cos(angle), torch.sin(angle)), dim=-1)  # (n, 2): (row, col)
    offsets = steps[None, :, None] * direction[:, None, :]  # (n, steps, 2)
    points = torch.cat((centre[:, None] + offsets, centre[:, None] - offsets), dim=1)
    pixels = torch.trunc(points).long()  # truncation toward zero, as the code's int()
    drawn = (steps[None] < torch.floor(length / 2)[:, None]).repeat(1, 2)  # (n, 2·steps)
    inside = ((pixels >= 0) & (pixels < size)).all(-1)
    keep = drawn & inside
    line_index = torch.arange(len(flat), device=lines.device)[:, None].expand_as(keep)
    images = torch.zeros(len(flat), size * size, device=lines.device)
    images[line_index[keep], pixels[keep][:, 0] * size + pixels[keep][:, 1]] = 1.0
    return images.view(*lines.shape[:-1], size, size)
