"""The step's loss evaluated again (gradfail.doctor.monitor.Doctor inherits this): at the
current parameters on the first rows of the batch, for curvature and the step's quality, and for
an input-independent prediction, the baseline a model that learned nothing would reach. From
the loss function and batch when the user gave them, else from the trace's tape of how the loss
was computed from the model's output (gradfail.doctor.trace)."""

from __future__ import annotations

import collections
from collections.abc import Callable

import torch
from torch.utils._pytree import tree_flatten, tree_map

from gradfail.doctor.trace import batch_size


class LossReplay:
    """The replay methods of a Doctor; `_output_means` keeps the recent batches' mean outputs."""

    _output_means: collections.deque

    def _loss_closures(self, loss, inputs, targets, args, kwargs, output):
        """(loss_at(rows), baseline()): from the loss function and batch when given, else from
        the trace's tape of the loss computation; None where neither is available."""
        predict = self._input_independent(output)
        if self.loss_fn is not None and inputs is not None and targets is not None:
            def loss_at(rows):
                return self.loss_fn(self.model(inputs[:rows]), targets[:rows])

            def baseline():
                return None if predict is None else self.loss_fn(predict(), targets)
            return loss_at, baseline
        tape = self._trace.tape if self._trace is not None else None
        if tape is None or not isinstance(loss, torch.Tensor) or output is None:
            return None, None
        batch = batch_size(output)
        cut = batch is not None and batch_size((args, kwargs)) == batch  # batch-first

        def loss_at(rows):
            rows = rows if cut and rows and rows < batch else None
            return tape.replay(self.model(*first_rows(args, rows), **first_rows(kwargs, rows)),
                               loss, rows)
        return loss_at, lambda: None if predict is None else tape.replay(predict(), loss)

    def _input_independent(self, output) -> Callable | None:
        """The input-independent prediction the loss baseline uses: the output's mean over the
        batch, or, for batches under 16, over the recent traced steps' batches (at least 5)."""
        tensors = [t for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor)]
        if not tensors or not self.traced:
            return None
        rows = tensors[0].shape[0] if tensors[0].dim() else 0
        if rows >= 16:
            return lambda: batch_mean(output)
        means = tree_map(lambda t: t.detach().mean(0) if isinstance(t, torch.Tensor) and
                         t.is_floating_point() and t.dim() > 0 else t, output)
        self._output_means.append(means)
        if len(self._output_means) < 5:
            return None
        recent = list(self._output_means)

        def predict():
            return tree_map(lambda t, *means: torch.stack(means).mean(0).expand_as(t)
                            if isinstance(t, torch.Tensor) and t.is_floating_point() else t,
                            output, *recent)
        return predict


def first_rows(tree, rows: int | None):
    """The tree with every tensor cut to its first `rows` rows (unchanged for None)."""
    return tree if rows is None else tree_map(
        lambda t: t[:rows] if isinstance(t, torch.Tensor) and t.dim() else t, tree)


def batch_mean(output):
    """An input-independent prediction: each floating tensor of the output replaced by its mean
    over the batch (the first axis), broadcast back to its shape."""
    return tree_map(lambda t: t.detach().mean(0, keepdim=True).expand_as(t)
                    if isinstance(t, torch.Tensor) and t.is_floating_point() and t.dim() > 0
                    else t, output)
