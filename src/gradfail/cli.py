"""The command line. Thin: parses, validates, calls the library, prints.

    gradfail list                         the catalogue
    gradfail run NAME [--scale S] [--set key=value]... [--seeds N] [--device D] [--json]
    gradfail reproduce [--scale S]        every experiment, then the report
    gradfail report [--out DIR]           the HTML report of what is stored
    gradfail claims [--json]              the claims table of what is stored
    gradfail runs                         what is stored

Errors a user can fix are one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from typing import NoReturn

from gradfail.errors import ConfigError, GradfailError
from gradfail.experiment import SCALES, is_sanity, parse_overrides
from gradfail.store import DEFAULT_PATH
from gradfail.terminal import (
    console,
    counted,
    markdown_claims,
    needs_attention,
    plain,
    print_json,
    print_costs_table,
    print_outcome,
    styled_status,
    styled_verdict,
)

ABSURD_JOBS_PER_CORE = 8  # more workers than this per core only slows every one of them


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2), like every other gradfail error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"gradfail: error: {message} (see `{self.prog} --help`)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def build_parser() -> Parser:
    parser = Parser(prog="gradfail", description="A laboratory for the failures of gradient-based "
                    "deep learning.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    def add_store(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--store", default=str(DEFAULT_PATH),
                         help="results store, one SQLite file (default: %(default)s)")

    def add_json(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--json", action="store_true", help="one JSON document on stdout")

    def add_execution(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--scale", choices=SCALES, default="default", help="quick (seconds, "
                         "for tests), default (minutes) or paper (the published budgets); "
                         "default: %(default)s")
        sub.add_argument("--seeds", type=positive_int, help="seeds trained together (default: "
                         "the experiment's for the scale)")
        sub.add_argument("--seed", type=int, default=0, help="base seed: every seed of a run "
                         "is drawn from it (default: %(default)s)")
        sub.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N "
                         "(default: %(default)s)")
        sub.add_argument("--backend", choices=("local", "ray"), default="local",
                         help="run here (default) or send each run to a Ray task")
        sub.add_argument("--ray-address", help="join this Ray cluster (host:port) instead of "
                         "starting a local one")
        sub.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1,
                         help="runs side by side in worker processes, one thread each (default: "
                         "this machine's cores; 1 runs them in turn in this process)")
        sub.add_argument("--dry-run", action="store_true", help="print each run's estimated "
                         "time (the cost model, gradfail.costs) and the plan's total with --jobs; "
                         "run nothing, touch no store")
        sub.add_argument("--stability", action="store_true", help="also run each experiment "
                         "with an empirical claim on a second, disjoint seed set; a verdict "
                         "that differs between the two is inconclusive")
        add_store(sub)
        add_json(sub)

    add_json(commands.add_parser("list", help="the catalogue of experiments"))
    run = commands.add_parser("run", help="run one experiment and store it")
    run.add_argument("name", help="the experiment (see `gradfail list`)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="change a config setting (repeatable); values are JSON or a,b,c")
    add_execution(run)
    reproduce = commands.add_parser("reproduce", help="run every experiment (or those named), "
                                    "then write the report")
    reproduce.add_argument("names", nargs="*", metavar="NAME", help="only these experiments")
    add_execution(reproduce)
    runs = commands.add_parser("runs", help="what the store holds")
    add_store(runs)
    add_json(runs)
    report = commands.add_parser("report", help="write the HTML report of what is stored")
    add_store(report)
    report.add_argument("--out", help="report folder (default: beside the store, report/)")
    report.add_argument("--compare", metavar="OTHER", help="another store (other scale, device "
                        "or seeds) set beside this one claim by claim, the differences marked")
    claims = commands.add_parser("claims", help="the claims of each experiment's latest run")
    claims.add_argument("--experiment", metavar="NAME", help="only this experiment's claims")
    claims.add_argument("--failing", action="store_true", help="only the empirical claims that "
                        "fail or are inconclusive, and broken sanity checks")
    claims.add_argument("--markdown", action="store_true", help="a Markdown table (empirical "
                        "claims, then sanity checks), as the README shows them")
    add_store(claims)
    add_json(claims)
    show = commands.add_parser("show", help="everything about one experiment, without running "
                               "it: description, settings at each scale, seeds, claims")
    show.add_argument("name", help="the experiment (see `gradfail list`)")
    add_json(show)
    export = commands.add_parser("export", help="the store as three tidy tables (runs, claims, "
                                 "metrics) for pandas, polars or DuckDB")
    export.add_argument("--format", choices=("csv", "parquet", "json"), default="csv",
                        help="csv, parquet (needs pip install 'gradfail[export]') or json (JSON "
                        "Lines, one object a row: runs.jsonl...); default: %(default)s")
    export.add_argument("--out", required=True, metavar="DIR", help="folder for runs, claims "
                        "and metrics files (created if missing; existing files are never "
                        "overwritten)")
    add_store(export)
    add_json(export)
    doctor = commands.add_parser("doctor", help="run a training script under the doctor, or "
                                 "validate the doctor on the failure zoo (--zoo)")
    doctor.add_argument("script", nargs="?", help="a Python training script")
    doctor.add_argument("script_args", nargs=argparse.REMAINDER, help="its arguments")
    doctor.add_argument("--zoo", action="store_true", help="validate on the failure zoo")
    doctor.add_argument("--bench", action="store_true", help="validate on the benchmark of "
                        "independent programs (gradfail/doctor/bench)")
    doctor.add_argument("--split", choices=("dev", "heldout", "fresh", "all"),
                        default="heldout", help="the benchmark's programs to run: dev (the "
                        "rules were set on it), heldout, fresh (written after the first "
                        "held-out evaluation) or all (default: heldout)")
    doctor.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1,
                        help="benchmark programs run side by side, one thread each "
                        "(default: the machine's cores)")
    doctor.add_argument("--seeds", type=positive_int, default=2, help="zoo seeds per case "
                        "(default: %(default)s)")
    doctor.add_argument("--first-seed", type=int, default=0, help="the zoo's first seed "
                        "(the thresholds were set on seeds 0-2; 3 and on are held out)")
    doctor.add_argument("--log-to", action="append", metavar="tensorboard:DIR|mlflow:URI",
                        help="also log the quantities and verdicts there as training goes "
                        "(repeatable; `mlflow` alone: the default tracking URI)")
    doctor.add_argument("--overhead", type=float, metavar="FRACTION", help="an overhead budget "
                        "(e.g. 0.1): the doctor times itself and spaces its measurements to fit")
    doctor.add_argument("--html", metavar="DIR", help="also write DIR/index.html: each doctor's "
                        "measurements over steps and its verdicts, one self-contained page")
    add_store(doctor)
    add_json(doctor)
    return parser


def interrupted_by_signal(number, frame) -> NoReturn:
    """SIGTERM ends gradfail as Ctrl-C does: the running run is stored `interrupted`."""
    raise KeyboardInterrupt(signal.Signals(number).name)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, interrupted_by_signal)
    try:
        return COMMANDS[args.command](args)
    except GradfailError as error:
        print(f"gradfail: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gradfail: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `gradfail ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


# --------------------------------------------------------------------------------------------
# Commands.


def cmd_list(args) -> int:
    from gradfail import registry

    experiments = registry.experiments().values()
    if args.json:
        print_json([{"name": e.name, "section": e.section, "title": e.title,
                     "version": e.version, "claims": [c.name for c in e.claims]}
                    for e in experiments])
        return 0
    from rich.table import Table

    table = Table(title="gradfail experiments")
    for column in ("name", "section", "title", "claims"):
        table.add_column(column)
    for e in experiments:
        table.add_row(e.name, plain(e.section), plain(e.title),
                      plain("\n".join(c.name for c in e.claims)))
    console().print(table)
    return 0


def cmd_run(args) -> int:
    from gradfail import registry

    experiment = registry.get(args.name)
    config = experiment.config(args.scale, parse_overrides(args.overrides))
    return execute([(experiment, config)], args)


def cmd_reproduce(args) -> int:
    from gradfail import registry

    chosen = [registry.get(name) for name in args.names] or registry.experiments().values()
    plan = [(e, e.config(args.scale)) for e in chosen]
    status = execute(plan, args)
    if args.dry_run:
        return status
    args.out = None
    path = write_report(args)
    print(f"report: {path}", file=sys.stderr if args.json else sys.stdout)
    return status


@contextlib.contextmanager
def stdout_to_stderr(enabled: bool):
    """File descriptor 1 pointed at standard error while enabled, for this process and the
    processes it starts (Ray's workers and agents inherit it)."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def execute(plan: list, args) -> int:
    """Run the plan (gradfail.runner.run_plan) and print its outcomes."""
    from gradfail.runner import checked_plan, run_plan
    from gradfail.store import Store

    checked_plan(plan, args.seeds, args.device, args.backend)  # refused before the store is touched
    if args.dry_run:
        return print_costs(plan, args)
    cores = os.cpu_count() or 1
    if args.jobs > ABSURD_JOBS_PER_CORE * cores:
        raise ConfigError(f"--jobs {args.jobs} is over {ABSURD_JOBS_PER_CORE}x this machine's "
                          f"{cores} cores; refusing an absurd number of workers")
    store = Store(args.store)
    with stdout_to_stderr(args.json):  # under --json, stdout carries the JSON alone
        outcomes = run_plan(plan, scale=args.scale, store=store, seed=args.seed,
                            seeds=args.seeds, device=args.device, backend=args.backend,
                            ray_address=args.ray_address,
                            progress=sys.stdout.isatty() and not args.json,
                            stability=args.stability, jobs=args.jobs)
    if args.json:
        print_json({"store": str(store.path), "runs": [o.as_json() for o in outcomes]})
    else:
        for outcome in outcomes:
            print_outcome(outcome)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def print_costs(plan: list, args) -> int:
    """The plan's estimated times (gradfail.costs), nothing run, no store written."""
    from pathlib import Path

    from gradfail.costs import plan_costs
    from gradfail.runner import planned_runs
    from gradfail.store import Store

    runs = planned_runs(plan, scale=args.scale, seed=args.seed, seeds=args.seeds,
                        stability=args.stability)
    store = Store(args.store, readonly=True) if Path(args.store).is_file() else None
    found = plan_costs(runs, args.jobs, args.device, store)
    if args.json:
        print_json({"scale": args.scale, **found})
    else:
        print_costs_table(found, args.scale, args.jobs)
    return 0


def cmd_runs(args) -> int:
    from gradfail.store import Store

    stored = Store(args.store, readonly=True).runs()
    if args.json:
        keep = ("id", "experiment", "version", "scale", "seed", "n_seeds", "device", "status",
                "error", "started_at", "finished_at", "wall_s", "config", "provenance", "claims",
                "figures")
        print_json([{k: run[k] for k in keep} for run in stored])
        return 0
    from rich.table import Table

    table = Table(title=f"runs in {plain(args.store)}")
    for column in ("id", "experiment", "scale", "seeds", "device", "status", "wall", "claims",
                   "started"):
        table.add_column(column)
    for run in stored:
        table.add_row(str(run["id"]), plain(run["experiment"]), run["scale"],
                      f"{run['seed']}+{run['n_seeds']}", run["device"], styled_status(run["status"]),
                      f"{run['wall_s']:.1f}s" if run["wall_s"] else "–",
                      counted(run["claims"]), run["started_at"])
    console().print(table)
    return 0


def write_report(args) -> str:
    from gradfail.report import write_report as render
    from gradfail.store import Store

    store, other = Store(args.store, readonly=True), getattr(args, "compare", None)
    if other is not None and not os.path.exists(other):
        raise ConfigError(f"--compare: no store at {other}")
    return str(render(store, args.out or store.path.parent / "report",
                      other and Store(other, readonly=True)))


def cmd_report(args) -> int:
    print(f"report: {write_report(args)}")
    return 0


def cmd_claims(args) -> int:
    from gradfail import registry
    from gradfail.report import latest_runs
    from gradfail.store import Store

    if args.experiment is not None:
        registry.get(args.experiment)  # an unknown name is a one-line error
    runs = [run | {"claims": [c for c in run["claims"] if not args.failing or needs_attention(c)]}
            for run in latest_runs(Store(args.store, readonly=True))
            if args.experiment in (None, run["experiment"])]
    if args.json:
        print_json([{"experiment": run["experiment"], "run": run["id"], "scale": run["scale"],
                     "status": run["status"], "later_attempt": run["later_attempt"],
                     "claims": run["claims"]} for run in runs])
        return 0
    if args.markdown:
        print(markdown_claims(runs))
        return 0
    from rich.table import Table

    table = Table(title=f"claims in {plain(args.store)}", show_lines=True)
    for column in ("experiment", "claim", "paper", "measured", "verdict"):
        table.add_column(column, overflow="fold")
    for run in runs:
        for claim in sorted(run["claims"], key=is_sanity):
            table.add_row(plain(f"{run['experiment']} ({run['scale']})"), plain(claim["name"]),
                          plain(claim["paper"]), plain(claim["detail"]), styled_verdict(claim))
    console().print(table)
    return 0


def cmd_show(args) -> int:
    from gradfail import registry
    from gradfail.show import describe, print_description

    found = describe(registry.get(args.name))
    (print_json if args.json else print_description)(found)
    return 0


def cmd_export(args) -> int:
    from gradfail.export import export, print_written

    written = export(args.store, args.out, args.format)
    (print_json if args.json else print_written)(written)
    return 0


def cmd_doctor(args) -> int:
    from gradfail.doctor.commands import doctor_command

    return doctor_command(args)


COMMANDS = {"list": cmd_list, "run": cmd_run, "reproduce": cmd_reproduce, "runs": cmd_runs,
            "report": cmd_report, "claims": cmd_claims, "show": cmd_show, "export": cmd_export,
            "doctor": cmd_doctor}


if __name__ == "__main__":
    sys.exit(main())
