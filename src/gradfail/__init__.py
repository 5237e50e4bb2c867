"""gradfail: a laboratory for the ways gradient-based deep learning fails."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gradfail")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
