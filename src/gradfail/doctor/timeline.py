"""A doctor's history drawn over steps: one panel per family of quantities it measured, each
verdict's onset marked on every panel, so a verdict can be read against the numbers that raised
it. Drawn from the history alone (a live `Doctor.history` or a stored session's), like cockpit's
plotter reads its saved quantities (Schneider et al. 2021, "Cockpit").

The panels, each left out when its quantities were never measured:
- the loss, beside the loss of an input-independent prediction (the doctor's baseline);
- the gradient norm of each layer, log scale: vanishing gradients fan out by depth (Glorot &
  Bengio 2010, "Understanding the difficulty of training deep feedforward neural networks");
- each layer's update against its weight, ‖Δθ‖/‖θ‖ (about 1e-3 is the usual healthy size,
  Karpathy's CS231n notes, "Neural Networks Part 3");
- the batch's gradient signal-to-noise ratio B·‖G‖²/tr Σ, the batch size over McCandlish et al.
  2018's simple noise scale (below 1, the batch's gradient is mostly noise);
- the cosine of consecutive steps' gradients and updates (near 0: noise; negative: overshoot);
- the share of each activation's units saturated, dead (never active) or flat;
- lr·λ_max against plain or heavy-ball gradient descent's stability limit 2(1 + β) (Cohen et al.
  2021, "Gradient descent on neural networks typically occurs at the edge of stability").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gradfail.doctor.loggers import DoctorError

ONSET = "#b3261e"  # the report's colour for a failure
MOST_LABELS = 8  # a panel with more lines names only its first and last (by depth)
FEW_POINTS = 30  # a quantity measured this rarely is drawn with markers


@dataclass(frozen=True)
class Panel:
    """One panel: the history's keys it draws, each exact or a "prefix/" drawn once per layer
    or activation site (coloured by depth), with its legend label; its y scale ("auto": log when
    every value is positive and they span a factor of 10) and y limits; and a reference
    level."""

    title: str
    ylabel: str
    keys: tuple[tuple[str, str], ...]
    scale: str = "linear"
    ylim: tuple[float, float] | None = None
    reference: tuple[float, str] | None = None


PANELS = (
    Panel("loss", "loss", (("loss", "loss"), ("baseline_loss", "input-independent prediction")),
          "auto"),
    Panel("gradient norm per layer", "‖g‖", (("grad_norm/", "layer"),), "log"),
    Panel("update / weight per layer", "‖Δθ‖ / ‖θ‖", (("update_ratio/", "layer"),), "log"),
    Panel("gradient noise", "batch SNR  B·‖G‖² / tr Σ", (("batch_snr", "batch SNR"),),
          "symlog", reference=(1.0, "signal = noise")),
    Panel("consecutive steps", "cosine", (("grad_cosine", "gradients"),
                                          ("update_cosine", "updates")),
          ylim=(-1.05, 1.05), reference=(0.0, "")),
    Panel("units out of action", "fraction of units", (("saturated/", "saturated"),
                                                       ("dead/", "dead"), ("flat/", "flat")),
          ylim=(-0.03, 1.03)),
    Panel("curvature", "lr · λ_max", (("lr_lambda_max", "lr · λ_max"),
                                      ("stability_limit", "stability limit 2(1 + β)"))),
)


def columns(history: list[dict]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each quantity's (steps, values) over the steps that measured it, in the order the keys
    first appear (layers and sites by depth); non-finite values as NaN (a gap), anything that
    is not a number (in a session stored by another version) left out."""
    found: dict[str, tuple[list, list]] = {}
    for record in history:
        for key, value in record.items():
            try:
                value = float(value)  # a loss may still be a 0-d tensor
            except (TypeError, ValueError):
                continue
            if key != "step":
                steps, values = found.setdefault(key, ([], []))
                steps.append(record["step"])
                values.append(value)
    return {key: (np.asarray(steps), np.where(np.isfinite(values), values, np.nan))
            for key, (steps, values) in found.items()}


def panel_lines(panel: Panel, measured: dict) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(label, line style, steps, values) of each line a panel draws from what was measured: its
    keys in the panel's order, a "prefix/" key's layers or sites by depth."""
    lines = []
    for i, (wanted, label) in enumerate(panel.keys):
        style = ("-", "--", ":")[i % 3]
        for key, (steps, values) in measured.items():
            if key == wanted or (wanted.endswith("/") and key.startswith(wanted)):
                lines.append((f"{label} {key.removeprefix(wanted)}".strip()
                              if wanted.endswith("/") else label, style, steps, values))
    return lines


def onsets(verdicts) -> dict[int, list[str]]:
    """Each onset step with the verdicts that began there, from `Verdict`s or their JSON
    (a verdict with no onset, "healthy", is not marked)."""
    found: dict[int, list[str]] = {}
    for verdict in verdicts:
        verdict = verdict if isinstance(verdict, dict) else asdict(verdict)
        if verdict.get("onset_step") is not None:
            found.setdefault(int(verdict["onset_step"]), []).append(verdict["name"])
    return dict(sorted(found.items()))


def figure(history: list[dict], verdicts, title: str = ""):
    """The history as stacked panels sharing the step axis, with a dotted line labelled by name
    at each verdict's onset on every panel; None when nothing was measured."""
    from gradfail.plotting import new_grid

    measured = columns(history)
    drawn = [(p, lines) for p in PANELS if (lines := panel_lines(p, measured))]
    if not drawn:
        return None
    fig, axes = new_grid(len(drawn), 1, width=9.0, height=2.1)
    began = onsets(verdicts)
    for ax, (panel, lines) in zip(axes[:, 0], drawn, strict=True):
        draw_panel(ax, panel, lines)
        for step, names in began.items():
            ax.axvline(step, color=ONSET, ls=":", lw=1.2, gid="onset", label=", ".join(names))
            ax.annotate("\n".join(names), (step, 1.0), xycoords=ax.get_xaxis_transform(),
                        xytext=(-2, -2), textcoords="offset points", rotation=90, ha="right",
                        va="top", fontsize=7, color=ONSET)  # a column per name, left of it
        if ax is not axes[0, 0]:
            ax.sharex(axes[0, 0])
    axes[-1, 0].set_xlabel("step")
    if title:
        fig.suptitle(title)
    return fig


def draw_panel(ax, panel: Panel, lines: list) -> None:
    """One panel's lines (those of a "prefix/" key coloured by depth, the first few named), its
    reference level, scale and legend."""
    from matplotlib import colormaps

    layered = any(wanted.endswith("/") for wanted, _ in panel.keys)
    colours = colormaps["viridis"](np.linspace(0, 0.9, len(lines)))
    named = range(len(lines)) if len(lines) <= MOST_LABELS else (0, len(lines) - 1)
    for i, (label, style, steps, values) in enumerate(lines):
        ax.plot(steps, values, style, color=colours[i] if layered else f"C{i}",
                marker="o" if len(steps) < FEW_POINTS else None, ms=3, lw=1.2,
                label=label if i in named else "_" + label)
    if panel.reference is not None:
        ax.axhline(panel.reference[0], color="0.5", lw=0.8, ls="--",
                   label=panel.reference[1] or "_reference")
    values = np.concatenate([line[3] for line in lines])
    values = values[np.isfinite(values)]
    wide = values.size > 0 and values.min() > 0 and values.max() >= 10 * values.min()
    if panel.scale == "symlog":
        ax.set_yscale("symlog", linthresh=1e-2)
    elif panel.scale == "log" or (panel.scale == "auto" and wide):
        ax.set_yscale("log")
    if panel.ylim is not None:
        ax.set_ylim(*panel.ylim)
    ax.set(title=panel.title, ylabel=panel.ylabel)
    ax.legend(handles=[h for h in ax.lines if h.get_gid() != "onset"
                       and not h.get_label().startswith("_")],
              fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def png(history: list[dict], verdicts, title: str = "") -> bytes | None:
    """The figure as PNG bytes (None when nothing was measured)."""
    from gradfail.perform import png_bytes

    fig = figure(history, verdicts, title)
    return None if fig is None else png_bytes(fig)


def data_uri(history: list[dict], verdicts, title: str = "") -> str | None:
    """The figure as a data: URI, for a page that stands alone (None when nothing was
    measured)."""
    import base64

    data = png(history, verdicts, title)
    return None if data is None else "data:image/png;base64," + base64.b64encode(data).decode()


def plot(history: list[dict], verdicts, path: str | Path, title: str = "") -> Path:
    """Write the figure to `path`, in the format its suffix names (PNG without one)."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path = path if path.suffix else path.with_suffix(".png")
    fig = figure(history, verdicts, title)
    if fig is None:
        raise DoctorError("nothing to plot: the doctor has measured no step yet")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    except (ValueError, OSError) as error:  # a format matplotlib does not write; no such place
        raise DoctorError(f"cannot write the doctor's figure to {path}: {error}") from None
    finally:
        plt.close(fig)
    return path
