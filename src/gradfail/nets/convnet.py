"""One convolutional layer, ReLU and a linear read-out, with a leading seed axis.

The small image network of the notes' open questions: its first layer is a
convolution (one filter bank shared by every position: a grouped conv2d) or locally connected
(one bank per position: unfold + einsum), with no loop over positions. Seeds train as a batch
of independent models: images (seeds, batch, side, side) -> logits (seeds, batch, classes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gradfail.data.digits import digit_images, split
from gradfail.data.lines import line_labels, random_lines, rasterise
from gradfail.errors import ConfigError


@dataclass(frozen=True)
class Images:
    """A classification task: train images (seeds, n, side, side), labels (seeds, n); test images
    (test, side, side) and labels (test,), shared by the seeds."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    @property
    def side(self) -> int:
        return self.test_x.shape[-1]

    @property
    def classes(self) -> int:
        return int(max(self.train_y.max(), self.test_y.max())) + 1


def positions(side: int, kernel: int) -> int:
    return (side - kernel + 1) ** 2


def parameters(n_seeds: int, side: int, kernel: int, channels: int, classes: int,
               generator: torch.Generator, untied: bool = False) -> list[torch.Tensor]:
    """[filters, biases, read-out, read-out bias]. Filters are He-initialised, (seeds, channels,
    k²) for a convolution and (seeds, positions, channels, k²) when untied."""
    fan_in, p = kernel**2, positions(side, kernel)
    shape = (n_seeds, p, channels, fan_in) if untied else (n_seeds, channels, fan_in)
    draw = {"generator": generator, "device": generator.device}
    filters = torch.randn(shape, **draw) * math.sqrt(2 / fan_in)
    readout = torch.randn(n_seeds, channels * p, classes, **draw) / math.sqrt(channels * p)
    return [filters, torch.zeros(n_seeds, channels, 1, device=generator.device),
            readout, torch.zeros(n_seeds, 1, classes, device=generator.device)]


def features(params: list[torch.Tensor], x: torch.Tensor, kernel: int) -> torch.Tensor:
    """The first layer's pre-activations (seeds, batch, channels, positions) of images x
    (seeds, batch, side, side). A convolution is one grouped conv2d, each seed's images a
    group of channels (1.6× unfold + einsum, forward and backward, on digits); a locally
    connected layer has a bank per position: unfold + einsum."""
    seeds, batch, side = x.shape[:3]
    filters, bias = params[:2]
    if filters.dim() == 3:
        out = F.conv2d(x.transpose(0, 1), filters.reshape(-1, 1, kernel, kernel), groups=seeds)
        return out.reshape(batch, seeds, filters.shape[1], -1).transpose(0, 1) + bias[:, None]
    patches = F.unfold(x.reshape(seeds * batch, 1, side, side), kernel)
    patches = patches.reshape(seeds, batch, kernel**2, -1)  # (s, b, k², positions)
    return torch.einsum("sbcp,spoc->sbop", patches, filters) + bias[:, None]


def read_out(params: list[torch.Tensor], features: torch.Tensor) -> torch.Tensor:
    """Logits (seeds, batch, classes): ReLU, flatten (channel-major) and the linear read-out."""
    return torch.baddbmm(params[3], torch.relu(features).flatten(2), params[2])


def forward(params: list[torch.Tensor], x: torch.Tensor, kernel: int) -> torch.Tensor:
    """Logits (seeds, batch, classes) of images x (seeds, batch, side, side)."""
    return read_out(params, features(params, x, kernel))


def accuracy(params: list[torch.Tensor], task: Images, kernel: int) -> torch.Tensor:
    """Test accuracy per seed, (seeds,)."""
    seeds = params[0].shape[0]
    with torch.no_grad():
        logits = forward(params, task.test_x.expand(seeds, -1, -1, -1), kernel)
    return (logits.argmax(-1) == task.test_y).float().mean(1)


def fit(params: list[torch.Tensor], task: Images, kernel: int, steps: int, batch_size: int,
        lr: float, generator: torch.Generator, trainable: tuple[bool, ...] = (True,) * 4,
        evaluate_every: int | None = None) -> dict:
    """Adam on the cross-entropy of minibatches drawn per seed; the parameters marked trainable
    change in place. Returns {steps, accuracy (evaluations, seeds)}, evaluated every
    `evaluate_every` steps (and at the end)."""
    learned = [p.requires_grad_(True) for p, train in zip(params, trainable, strict=True) if train]
    step = torch.optim.Adam(learned, lr=lr)
    seeds, n, side = task.train_x.shape[:3]
    evaluated, accuracies = [], []
    for t in range(1, steps + 1):
        pick = torch.randint(n, (seeds, batch_size), generator=generator,
                             device=generator.device)
        x = task.train_x.gather(1, pick[..., None, None].expand(-1, -1, side, side))
        logits = forward(params, x, kernel)
        loss = F.cross_entropy(logits.transpose(1, 2), task.train_y.gather(1, pick))
        step.zero_grad(set_to_none=True)
        (loss * seeds).backward()
        step.step()
        if t == steps or (evaluate_every and t % evaluate_every == 0):
            evaluated.append(t)
            accuracies.append(accuracy(params, task, kernel))
    for p in params:
        p.requires_grad_(False)
    return {"steps": evaluated, "accuracy": torch.stack(accuracies)}


def line_angle_task(n_seeds: int, n: int, test_samples: int, size: int,
                    train: torch.Generator, test: torch.Generator) -> Images:
    """The §3 line images, labelled by whether the angle is below π/2 (translation invariant:
    a line can be anywhere); each seed draws its own n training lines."""
    lines = random_lines((n_seeds, n), train, size)
    test_lines = random_lines((test_samples,), test, size)
    return Images(rasterise(lines, size), (line_labels(lines) > 0).long(),
                  rasterise(test_lines, size), (line_labels(test_lines) > 0).long())


def digit_task(n_seeds: int, n: int, generator: torch.Generator, device: torch.device
               ) -> Images:
    """scikit-learn's 8×8 digits as raw intensities: a seeded 80/20 split, and each seed trains
    on its own n images drawn without replacement from the training split."""
    images, labels = digit_images(device)
    train, test = split(generator)
    if not 0 < n <= len(train):
        raise ConfigError(f"{n} training digits asked for; the training split holds "
                          f"{len(train)}")
    keys = torch.rand(n_seeds, len(train), generator=generator, device=generator.device)
    chosen = train.to(device)[keys.argsort(1)[:, :n]]
    return Images(images[chosen], labels[chosen], images[test.to(device)], labels[test.to(device)])
