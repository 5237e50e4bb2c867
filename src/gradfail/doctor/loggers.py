"""Where the doctor speaks while training goes: a line on stderr when a verdict begins, the
measured quantities and the verdicts to TensorBoard (`torch.utils.tensorboard`'s SummaryWriter:
scalars, and the verdicts as text) and to MLflow (metrics, and a verdicts JSON artifact), or to
a trainer's own loggers; a plain `on_verdict(verdict)` callback; and the verdicts that stop
training (`abort_on`).

A destination that cannot be written (a folder that cannot be made, an MLflow server that does
not answer) is one warning, and the doctor goes on without it. Options a Doctor is not given
(these and its `config`) are taken from `defaults(...)`: that is how `gradfail doctor --log-to`
reaches the doctors an unchanged script's optimizers get. Without either it is silent, logs
nowhere, stops nothing, and judges at the default thresholds.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict

import torch

from gradfail.doctor import output, rules
from gradfail.doctor.config import DoctorConfig
from gradfail.errors import GradfailError

EXPERIMENT = "gradfail-doctor"  # the MLflow experiment of the runs the doctor starts itself
_DEFAULTS: ContextVar[dict] = ContextVar("gradfail_doctor_defaults", default={})


class DoctorError(GradfailError):
    """A model, loss or script the doctor cannot watch."""


class DoctorAbort(DoctorError):
    """A verdict named in `abort_on` began: training stops at the end of the step it was named."""

    def __init__(self, verdict: rules.Verdict, step: int):
        super().__init__(f"the doctor stopped training at step {step}: {verdict.name} (since step "
                         f"{verdict.onset_step}): {verdict.evidence}")
        self.verdict, self.step = verdict, step


class DoctorWarning(RuntimeWarning):
    """Something the doctor could not do; training goes on."""


def warn(message: str) -> None:
    warnings.warn(f"gradfail doctor: {one_line(message)}", DoctorWarning, stacklevel=3)


def one_line(text) -> str:
    return " ".join(str(text).split())


@contextmanager
def defaults(**options) -> Iterator[None]:
    """Within: the options (live, log_to, on_verdict, abort_on, config) of every Doctor made
    without them."""
    token = _DEFAULTS.set({**_DEFAULTS.get(), **options})
    try:
        yield
    finally:
        _DEFAULTS.reset(token)


def given(name: str, value=None):
    """A Doctor's option: the value given, else the one of `defaults(name=...)`, else None."""
    return value if value is not None else _DEFAULTS.get().get(name)


def configured(config: DoctorConfig | dict | None) -> DoctorConfig:
    """A Doctor's thresholds: its `config` (a dict is validated into a DoctorConfig: a bad value
    is one DoctorError naming the field), else the one of `defaults(config=...)`, else the
    defaults (gradfail.doctor.config)."""
    given = config if config is not None else _DEFAULTS.get().get("config")
    return DoctorConfig.model_validate({} if given is None else given)


class Calm:
    """Keeps the doctor out of a trainer's loop: an error inside `calm(doing)` is one warning
    (the first; the others pass in silence), and training goes on; only DoctorAbort passes."""

    def __init__(self):
        self.warned = False

    @contextmanager
    def __call__(self, doing: str) -> Iterator[None]:
        try:
            yield
        except DoctorAbort:
            raise  # the doctor's one way to stop training, on purpose
        except Exception as error:
            if not self.warned:
                self.warned = True
                warn(f"{doing} failed ({type(error).__name__}: {error}); training goes on")


def quantities(record: dict) -> dict[str, float]:
    """The numbers of a measured step worth plotting (the step's index and the activation
    sites' kind and order codes are labels, not measurements)."""
    return {key: float(value) for key, value in record.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
            and key != "step" and not key.startswith(("kind/", "order/"))}


# -- destinations ---------------------------------------------------------------------------------
class Sink:
    """A destination: the quantities at each measured step, each verdict as it begins, and the
    doctor's document (gradfail.doctor.output) when it closes."""

    label = "a logger"

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None: ...

    def verdict(self, prefix: str, verdict: rules.Verdict, step: int) -> None: ...

    def text(self, prefix: str, key: str, text: str, step: int) -> None: ...

    def close(self, prefix: str, document: dict) -> None: ...


class TensorBoard(Sink):
    """Scalars `doctor/NAME/QUANTITY`, `doctor/NAME/verdict/VERDICT` (its confidence, at its
    onset), the verdicts as text (`doctor/NAME/verdicts`) and the end-of-run table
    (`doctor/NAME/report`). Its own SummaryWriter in `log_dir`, or a trainer's writer."""

    def __init__(self, log_dir: str | None = None, writer=None):
        self.owned = writer is None
        if writer is None:
            from torch.utils.tensorboard import SummaryWriter
            writer = SummaryWriter(log_dir=log_dir)
        self.writer = writer
        self.label = f"tensorboard:{writer.log_dir}"

    def scalars(self, prefix, values, step):
        for key, value in values.items():
            self.writer.add_scalar(f"{prefix}/{key}", value, step)

    def verdict(self, prefix, verdict, step):
        self.writer.add_scalar(f"{prefix}/verdict/{verdict.name}", verdict.confidence, step)
        self.writer.add_text(f"{prefix}/verdicts", output.verdict_markdown(verdict, step), step)
        self.writer.flush()

    def text(self, prefix, key, text, step):
        self.writer.add_text(f"{prefix}/{key}", text, step)
        self.writer.flush()

    def close(self, prefix, document):
        self.writer.add_text(f"{prefix}/report", output.document_markdown(document),
                             document["steps"])
        self.writer.flush()
        if self.owned:
            self.writer.close()


class MLflow(Sink):
    """Metrics `doctor/NAME/QUANTITY` and `doctor/NAME/verdict/VERDICT`, and the artifact
    `doctor/NAME/verdicts.json`: the verdicts as they began, then the doctor's document. Into a
    run of its own (experiment "gradfail-doctor") at `uri`; without a URI, into the active run
    (a trainer's, or the user's) where there is one; or into a trainer's client and run."""

    def __init__(self, uri: str | None = None, run_name: str = "run", client=None,
                 run_id: str | None = None):
        import mlflow

        self.owned = client is None and (uri is not None or mlflow.active_run() is None)
        if client is None and not self.owned:
            client, run_id = mlflow.MlflowClient(), mlflow.active_run().info.run_id
        elif client is None:
            answers(uri)
            client = mlflow.MlflowClient(tracking_uri=uri)
            found = client.get_experiment_by_name(EXPERIMENT)
            experiment = found.experiment_id if found else client.create_experiment(EXPERIMENT)
            run_id = client.create_run(experiment, run_name=run_name).info.run_id
        self.client, self.run_id, self.began = client, run_id, []
        self.label = f"mlflow:{uri or client.tracking_uri} (run {run_id})"

    def scalars(self, prefix, values, step):
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(metric_key(f"{prefix}/{key}"), value, now, step)
                   for key, value in values.items()]
        for first in range(0, len(metrics), 1000):  # MLflow's limit per batch
            self.client.log_batch(self.run_id, metrics=metrics[first:first + 1000])

    def verdict(self, prefix, verdict, step):
        self.client.log_metric(self.run_id, metric_key(f"{prefix}/verdict/{verdict.name}"),
                               verdict.confidence, step=step)
        self.began.append(asdict(verdict) | {"layers": list(verdict.layers), "step": step})
        self.client.log_dict(self.run_id, {"began": self.began}, f"{prefix}/verdicts.json")

    def text(self, prefix, key, text, step):
        self.client.set_tag(self.run_id, metric_key(f"{prefix}/{key}"), text[:5000])

    def close(self, prefix, document):
        self.client.log_dict(self.run_id, document | {"began": self.began},
                             f"{prefix}/verdicts.json")
        if self.owned:
            self.client.set_terminated(self.run_id)


class Metrics(Sink):
    """Any logger with `log_metrics(metrics, step)` (Lightning's CSV, W&B, ... loggers): the
    quantities, and each verdict's confidence at its onset."""

    def __init__(self, log_metrics: Callable[[dict, int], object], label: str):
        self.log_metrics, self.label = log_metrics, label

    def scalars(self, prefix, values, step):
        self.log_metrics({f"{prefix}/{key}": value for key, value in values.items()}, step)

    def verdict(self, prefix, verdict, step):
        self.log_metrics({f"{prefix}/verdict/{verdict.name}": verdict.confidence}, step)


def metric_key(key: str) -> str:
    """MLflow's metric names take letters, digits, _ - . / : and spaces."""
    return re.sub(r"[^\w\-./: ]", "_", key)


def answers(uri: str | None) -> None:
    """An MLflow server that does not answer in 3 s is an error here, not minutes of retries
    inside the training loop (a database or folder URI needs no server)."""
    if uri and uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=3):
                pass
        except urllib.error.HTTPError:
            pass  # it answered (an error status, e.g. it wants credentials: MLflow's to judge)


def destinations(log_to) -> list:
    """`log_to` as a list of destinations: "tensorboard:DIR", "mlflow", "mlflow:URI" or Sinks
    (a bad one is a DoctorError, before training begins)."""
    specs = [] if log_to is None else [log_to] if isinstance(log_to, str | Sink) else list(log_to)
    for spec in specs:
        kind, _, where = spec.partition(":") if isinstance(spec, str) else ("sink", "", "")
        if kind not in ("tensorboard", "mlflow", "sink") or (kind == "tensorboard"
                                                             and not where):
            raise DoctorError(f"the doctor logs to tensorboard:DIR or mlflow[:URI], not {spec!r}")
    return specs


def verdict_names(names) -> frozenset[str]:
    """`abort_on` as a set of verdict names (a name that is no verdict is a DoctorError)."""
    names = frozenset([names] if isinstance(names, str) else names or ())
    unknown = sorted(names - set(rules.VERDICTS))
    if unknown:
        raise DoctorError(f"abort_on names verdicts; {unknown[0]!r} is none of: "
                          f"{', '.join(rules.VERDICTS)}")
    return names


def opened(spec, name: str) -> Sink | None:
    """The destination, opened; one warning and None when it cannot be."""
    if isinstance(spec, Sink):
        return spec
    kind, _, where = spec.partition(":")
    try:
        return TensorBoard(where) if kind == "tensorboard" else MLflow(where or None, name)
    except Exception as error:
        warn(f"cannot log to {spec} ({type(error).__name__}: {error}); the doctor goes on "
             "without it")
        return None


# -- the voice ------------------------------------------------------------------------------------
class Speaker:
    """One doctor's voice: the quantities of each measured step to its destinations, and each
    verdict once, when it begins (again only if it was dropped and began anew): a line on stderr
    (`live`), the destinations (`log_to`), `on_verdict(verdict)`, and, for a name in `abort_on`,
    the abort its doctor raises at the end of the step."""

    def __init__(self, name: str, *, live: bool | None = None, log_to=None,
                 on_verdict: Callable[[rules.Verdict], object] | None = None, abort_on=None):
        given = _DEFAULTS.get()
        self.name, self.prefix = name, f"doctor/{name}"
        self.live = bool(given.get("live", False) if live is None else live)
        self.on_verdict = on_verdict if on_verdict is not None else given.get("on_verdict")
        self.abort_on = verdict_names(abort_on if abort_on is not None
                                      else given.get("abort_on"))
        specs = destinations(log_to if log_to is not None else given.get("log_to"))
        self.sinks = [sink for sink in (opened(spec, name) for spec in specs) if sink]
        self.spoken: dict[str, int] = {}  # verdict -> the onset already spoken
        self.abort: tuple[rules.Verdict, int] | None = None
        self.calm = Calm()

    def measured(self, step: int, record: dict) -> None:
        if self.sinks:
            values = quantities(record)
            self._each(lambda sink: sink.scalars(self.prefix, values, step))

    def checked(self, step: int, timeline: rules.Timeline, steps: int) -> None:
        """After a check at `step`: speak the verdicts that began at it."""
        begun = {name for name, onset in timeline.raised.items()
                 if self.spoken.get(name) != onset}
        self.spoken = dict(timeline.raised)
        for verdict in timeline.standing(steps) if begun else ():
            if verdict.name not in begun:
                continue
            if self.live:
                with self.calm("printing a verdict"):
                    output.say(self.name, step, verdict)
            self._each(lambda sink, verdict=verdict: sink.verdict(self.prefix, verdict, step))
            if self.on_verdict is not None:
                with self.calm("on_verdict"):
                    self.on_verdict(verdict)
            if verdict.name in self.abort_on and self.abort is None:
                self.abort = (verdict, step)

    def note(self, key: str, text: str, step: int) -> None:
        """A line for the destinations' text (why training stopped)."""
        self._each(lambda sink: sink.text(self.prefix, key, text, step))

    def take_abort(self) -> tuple[rules.Verdict, int] | None:
        abort, self.abort = self.abort, None
        return abort

    def close(self, document: Callable[[], dict]) -> None:
        """The doctor's document to each destination, which is then closed."""
        if self.sinks:
            with self.calm("the doctor's last document"):
                found = document()
                self._each(lambda sink: sink.close(self.prefix, found))
        self.sinks = []

    def _each(self, action: Callable[[Sink], object]) -> None:
        for sink in list(self.sinks):
            try:
                action(sink)
            except Exception as error:
                warn(f"cannot log to {sink.label} ({type(error).__name__}: {error}); the "
                     "doctor goes on without it")
                self.sinks.remove(sink)


# -- what the trainer integrations share (gradfail.doctor.lightning, .transformers) -----------
def callback_settings(abort_on, log_to, on_verdict, live: bool, options: dict
                      ) -> tuple[dict, list]:
    """A framework callback's settings, checked now rather than mid-training: the options its
    doctors get and the extra destinations as a list."""
    verdict_names(abort_on), destinations(log_to)  # a bad name is a one-line error here
    if options.get("config") is not None:  # and so is a bad threshold
        options["config"] = configured(options["config"])
    doctor_options = dict(abort_on=abort_on, on_verdict=on_verdict, live=live, **options)
    return doctor_options, [] if log_to is None else [log_to] if isinstance(log_to, str) else log_to


def supported(framework: str, version: str, lowest: tuple[int, int], below: tuple[int, int],
              base: type, hooks: tuple[str, ...]) -> bool:
    """Whether a trainer's version is in [lowest, below) and its callback class has the hooks
    the doctor needs; if not, one line naming the supported range (the doctor stays off)."""
    numbers = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    missing = [hook for hook in hooks if not hasattr(base, hook)]
    if lowest <= numbers < below and not missing:
        return True
    warn(f"the doctor supports {framework} >={'.'.join(map(str, lowest))},"
         f"<{'.'.join(map(str, below))}; found {version}"
         + (f" without {', '.join(missing)}" if missing else "") + ": the doctor is off")
    return False


def unwrapped(optimizer):
    """The torch optimizer inside a trainer's wrapper (accelerate's AcceleratedOptimizer,
    Lightning's LightningOptimizer: both keep it as `.optimizer`)."""
    while isinstance(getattr(optimizer, "optimizer", None), torch.optim.Optimizer):
        optimizer = optimizer.optimizer
    return optimizer


def measuring(doctor) -> bool:
    """Whether the doctor's step in progress measures anything (else it costs a kept loss)."""
    return any(doctor.due(name) for name in doctor.quantities)
