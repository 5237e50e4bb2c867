"""Errors with one-line messages. The CLI prints them without a traceback and exits 2."""


class GradfailError(Exception):
    """Base of every error gradfail reports to a user as one line."""


class UnknownExperiment(GradfailError):
    """An experiment name that is not registered."""


class ConfigError(GradfailError):
    """A setting that is unknown, of the wrong type or out of range."""


def require_known(kind: str, name: str, known) -> str:
    """`name`, or a one-line error when it is not among the `known` names of this kind."""
    if name not in known:
        raise ConfigError(f"unknown {kind} {name!r}; choose one of {', '.join(known)}")
    return name


class DeviceError(GradfailError):
    """A device that this machine does not have."""


class StoreError(GradfailError):
    """A results store that cannot be opened, written or trusted."""


class Diverged(GradfailError):
    """A training loss turned NaN or infinite; the run is stored as `diverged`."""
