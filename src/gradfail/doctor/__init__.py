"""The doctor: a monitor for any PyTorch training loop that measures gradient flow, gradient
noise, activations however they are written, the loss's inputs and curvature, and names the
failure it sees, with its onset, evidence and remedy, as it begins (gradfail.doctor.loggers) and
at the end. Trainers: gradfail.doctor.lightning and gradfail.doctor.transformers."""

from gradfail.doctor.config import DoctorConfig
from gradfail.doctor.loggers import DoctorAbort, DoctorWarning
from gradfail.doctor.monitor import Doctor, DoctorError, watch
from gradfail.doctor.rules import VERDICTS, Verdict

__all__ = ["VERDICTS", "Doctor", "DoctorAbort", "DoctorConfig", "DoctorError", "DoctorWarning",
           "Verdict", "watch"]
