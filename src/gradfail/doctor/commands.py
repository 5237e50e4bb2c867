"""`gradfail doctor`: a training script under the doctor (with `--html DIR`, also a page of each
doctor's measurements and verdicts, gradfail.doctor.page), or the doctor validated on the
failure zoo (`--zoo`) or on the benchmark of independent programs (`--bench`)."""

from __future__ import annotations

import sys

from gradfail.errors import GradfailError
from gradfail.terminal import console, print_json


def doctor_command(args) -> int:
    if args.zoo:
        return doctor_zoo(args)
    if args.bench:
        return doctor_bench(args)
    if not args.script:
        raise GradfailError("name a training script, or --zoo")
    from rich.console import Console

    from gradfail.doctor.budget import Budget
    from gradfail.doctor.loggers import defaults, destinations
    from gradfail.doctor.page import page_folder, write_page
    from gradfail.doctor.script import run_script
    from gradfail.store import Store

    log_to = destinations(args.log_to)  # a bad one is a one-line error before anything runs
    if args.overhead is not None:
        Budget(args.overhead)  # likewise a bad budget
    folder = page_folder(args.html) if args.html else None  # so is a page with no place
    store = Store(args.store)
    with defaults(live=True, log_to=log_to, overhead=args.overhead):  # every doctor the script's optimizers get
        doctors, wall_s = run_script(args.script, args.script_args, quiet_stdout=args.json)
    for doctor in doctors:
        doctor.report(store=store, console=Console(stderr=args.json))
    if folder is not None:
        index = write_page(doctors, folder, args.script)
        print(f"doctor page: {index}", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print_json({"doctors": [doctor.summary() for doctor in doctors], "wall_s": wall_s})
    return 0


def doctor_bench(args) -> int:
    from gradfail.doctor import bench
    from gradfail.doctor.bench.scoring import score
    from gradfail.doctor.bench.tables import print_bench
    from gradfail.runner import progress_bars

    chosen = bench.programs(args.split)
    with progress_bars(enabled=sys.stderr.isatty() and not args.json) as progress:
        outcomes = bench.evaluate_all(chosen, args.jobs, progress.task(
            f"the doctor on the benchmark ({args.split})", len(chosen)), budget=args.overhead)
    scores = score(outcomes)
    if args.json:
        print_json(scores)
        return 0
    wide = console()
    wide.width = max(wide.width, 140)
    print_bench(scores, f"The doctor's benchmark, {args.split} split ({len(chosen)} programs)",
                wide)
    return 0


def doctor_zoo(args) -> int:
    from gradfail.doctor import zoo
    from gradfail.doctor.bench.tables import print_zoo
    from gradfail.runner import progress_bars

    with progress_bars(enabled=sys.stdout.isatty() and not args.json) as progress:
        scores = zoo.validate(args.seeds, first_seed=args.first_seed, progress=progress.task(
            "the doctor on the failure zoo", len(zoo.CASES) * args.seeds))
    if args.json:
        print_json(scores)
        return 0
    wide = console()
    wide.width = max(wide.width, 110)  # the matrix's ten columns, even in a pipe
    print_zoo(scores, f"seeds {args.first_seed}-{args.first_seed + args.seeds - 1}", wide)
    return 0
