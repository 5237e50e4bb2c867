"""The doctor: a monitor for any PyTorch training loop that measures gradient noise, per-layer
gradient flow, activation flatness and curvature, and names the failure it sees."""

from gradfail.doctor.monitor import Doctor, DoctorError, watch
from gradfail.doctor.verdicts import VERDICTS, Verdict

__all__ = ["VERDICTS", "Doctor", "DoctorError", "Verdict", "watch"]
