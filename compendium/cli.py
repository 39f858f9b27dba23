"""amcf: fetch and prepare data, run and check the pipeline's stages.

Every command is an argparse subcommand with a one-line help (``amcf --help``,
``amcf COMMAND --help``); a command whose work lives elsewhere has its handler in its own
module, and its subparser here only parses.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from compendium.data.errors import DataError

# what the compendium needs beyond the method's own dependencies (pyproject.toml's extra)
COMPENDIUM_ONLY = frozenset({"yaml", "dvc", "papermill", "nbformat", "pandas", "matplotlib",
                             "scipy", "sklearn", "pooch", "filelock", "PIL", "ray", "mlxtend"})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="amcf", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="group", required=True)
    data = sub.add_parser("data", help="fetch, prepare and list datasets")
    cmds = data.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, only: bool = True) -> None:
        p.add_argument("--profile", choices=["embedded", "paper"], default="embedded")
        if only:
            p.add_argument("--only", nargs="+", metavar="NAME",
                           help="just these datasets (default: the whole profile)")
        p.add_argument("--data-dir", default=None,
                       help="raw inputs (default: data, or downloads for --profile paper)")

    fetch = cmds.add_parser("fetch", help="fetch raw inputs into data/, verified")
    common(fetch)
    fetch.add_argument("--mirror", help="local mirror folder (default: $AMCF_DATA_MIRROR)")
    fetch.add_argument("--dry-run", action="store_true",
                       help="print the disk plan (every copy of the data) and stop")
    prep = cmds.add_parser("prepare", help="decode, split and describe datasets")
    common(prep)
    prep.add_argument("--out", default="build/data", help="output root (default: build/data)")
    prep.add_argument("--params", help="YAML with `datasets:` entries of kind folder")
    prep.add_argument("--results", default=None,
                      help="the datasets' committed summaries (splits.json, card.md, samples); "
                      "default: results/<profile>/data, as the prepare@ stages")
    prep.add_argument("--max-damaged", type=int, default=None, metavar="N",
                      help="images that cannot be decoded a dataset may leave out (default: "
                      "0.1 %% of its images, at least one)")
    lst = cmds.add_parser("list", help="list known datasets")
    lst.add_argument("--profile", choices=["embedded", "paper"], default=None)
    data.set_defaults(handler=run_data)

    nb = sub.add_parser("notebook", help="run a parameterised notebook (one pipeline stage)",
                        description="Execute NOTEBOOK with papermill into OUTPUT; the flags "
                        "after the two paths become its parameters, typed by the notebook's "
                        "defaults (as dvc.yaml unpacks a params.yaml section into them).")
    nb.add_argument("notebook")
    nb.add_argument("output")
    nb.add_argument("flags", nargs=argparse.REMAINDER, metavar="--name value",
                    help="notebook parameters")
    nb.set_defaults(handler=_notebook)

    params = sub.add_parser("params", help="validate params.yaml or a profile")
    pcmds = params.add_subparsers(dest="command", required=True)
    check = pcmds.add_parser("check", help="check params files against the schema "
                             "(compendium/params.py), weights files included, and that "
                             "this machine has the device their recipes require")
    check.add_argument("files", nargs="*", default=["params.yaml"], metavar="FILE")
    check.add_argument("--no-device", action="store_true",
                       help="check the schema only, not that this machine has the device the "
                       "recipes require (e.g. the paper profile's CUDA)")
    params.set_defaults(handler=lambda a: _params_check(a.files, not a.no_device))

    num = sub.add_parser("numerics", help="the numerical policy: same CPU results on any "
                         "x86-64 CPU with AVX2 (amcf/numerics.py)")
    ncmds = num.add_subparsers(dest="command", required=True)
    ncmds.add_parser("check", help="fail at once when this CPU cannot honour the policy")
    nrun = ncmds.add_parser("run", help="run a command under the policy (e.g. `amcf numerics "
                            "run jupyter lab`: its kernels inherit it)")
    nrun.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND ...")
    num.set_defaults(handler=_numerics)

    pipe = sub.add_parser("pipeline", help="check dvc.yaml's deps and dvc.lock")
    pcmds = pipe.add_subparsers(dest="command", required=True)
    check_lock = pcmds.add_parser("check-lock", help="fail when dvc.lock does not match the "
                                  "committed code, params, commands and results")
    check_lock.add_argument("--prune", action="store_true", help="first remove the entries of "
                            "stages that dvc.yaml no longer defines")
    pcmds.add_parser("check-deps", help="fail when a stage misses an amcf module its "
                     "notebook imports")
    pipe.set_defaults(handler=_pipeline)

    from compendium.pipeline.cluster import add_arguments as cluster_arguments

    cluster = sub.add_parser(
        "cluster-run", help="run the out-of-date stages as Ray tasks, committing each as it ends")
    cluster_arguments(cluster)
    cluster.set_defaults(handler=_cluster_run)

    from compendium.timing_summary import add_parser as add_timings

    add_timings(sub)
    _bench_parser(sub)
    return parser


def _bench_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="amcf against the authors' loop, side by side (speed)",
                       description="Runs benchmarks/reference.py (the authors' loop) and amcf "
                       "on the same models, data, seed and steps; prints and writes the ratios. "
                       "Needs a checkout: the benchmark's code lives in benchmarks/.")
    p.add_argument("--out", help="also write the figures as JSON to this file")
    p.add_argument("--target", action="append", metavar="TARGET",
                   help="an embedded target (repeat for more; default: every target)")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--prepared-dir", default="build/data")
    p.add_argument("--epochs", type=int, default=4,
                   help="epochs of the training comparisons (default: 4)")
    p.add_argument("--device", default="auto")
    p.add_argument("--trainings", type=int, default=4,
                   help="independent trainings of the side-by-side comparison (0: skip it)")
    p.add_argument("--workers", type=int, default=None,
                   help="local worker processes that run them side by side (default: as a "
                   "stage, one per core, at least 2)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads of both loops in this process (default: the cores)")
    p.add_argument("--no-search", action="store_true", help="skip the search comparison")
    p.add_argument("--notebooks", default="build/notebooks",
                   help="executed stage notebooks to read the per-stage costs from")
    p.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    # the benchmark is no part of the packages: it runs from the checkout's benchmarks/
    from compendium.pipeline import at_project_root

    sys.path.insert(0, str(at_project_root()))
    from benchmarks.bench import main as bench_main

    return bench_main(args)


def _notebook(args: argparse.Namespace) -> int:
    from compendium.pipeline.notebook import main as notebook_main

    return notebook_main([args.notebook, args.output, *args.flags])


def _params_check(files: list[str], device: bool = True) -> int:
    from compendium.params import check

    return check(files, device)


def _numerics(args: argparse.Namespace) -> int:
    import os

    from amcf import numerics

    try:
        numerics.check_cpu()
    except numerics.NumericsError as err:
        print(f"amcf numerics: error: {err}", file=sys.stderr)
        return 2
    if args.command == "check":
        print(f"numerics: {numerics.name()} on {numerics.cpu_name()}: ok")
        return 0
    if not args.cmd:
        print("amcf numerics run: give a command to run", file=sys.stderr)
        return 2
    numerics.set_environment()
    os.execvp(args.cmd[0], args.cmd)


def _pipeline(args: argparse.Namespace) -> int:
    if args.command == "check-lock":
        from compendium.pipeline.lock import main as check_lock

        return check_lock(prune=args.prune)
    from compendium.pipeline.deps import main as check_deps

    return check_deps()


def _cluster_run(args: argparse.Namespace) -> int:
    from compendium.pipeline.cluster import main as cluster_main

    return cluster_main(args) or 0


def _list(profile: str | None) -> None:
    from compendium.data.commands import table

    rows = table(profile)
    cols = ["name", "profile", "role", "classes", "train", "val", "test", "licence"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str("?" if r[c] in (None, -1) else r[c]).ljust(widths[c]) for c in cols))


def run_data(args: argparse.Namespace) -> int:
    from compendium.data import commands

    if args.command == "list":
        _list(args.profile)
    elif args.command == "fetch":
        start = time.perf_counter()
        from compendium.hub_weights import hub_assets

        commands.fetch(args.profile, args.only, args.data_dir, args.mirror,
                       dry_run=args.dry_run, extra=hub_assets(args.profile))
        if not args.dry_run:
            print(f"fetch done in {time.perf_counter() - start:.1f} s")
    elif args.command == "prepare":
        from compendium.data.folder import load_entries
        from compendium.stages.prepare import prepare_stage

        entries = load_entries(args.params) if args.params else []
        wanted = set(args.only or [])
        own = [e for e in entries if not wanted or e.name in wanted]
        registered = [n for n in (args.only or []) if n not in {e.name for e in entries}]
        names = (commands.select(args.profile, registered or None)
                 if registered or not args.only else [])
        assets, _ = commands.catalog_assets()
        data_dir = args.data_dir or commands.DATA_DIRS[args.profile]
        results_dir = args.results or f"results/{args.profile}/data"
        # the prepare@ stage's own function: the same outputs, summary included
        for name, folder in [*((n, None) for n in names if n not in assets),
                             *((e.name, e) for e in own)]:
            start = time.perf_counter()
            done = prepare_stage(name, args.profile, data_dir, args.out, results_dir,
                                 folder=folder, max_damaged=args.max_damaged)
            print(f"prepared {name} -> {done['prepared']} and {Path(results_dir) / name} in "
                  f"{time.perf_counter() - start:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    if extra and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    try:
        return args.handler(args)
    except DataError as exc:
        print(f"amcf: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        # `pip install .` installs the method alone; the command needs the compendium's extra
        if (exc.name or "").split(".")[0] not in COMPENDIUM_ONLY:
            raise
        print(f"amcf: error: {exc.name} is not installed: the amcf command regenerates the "
              "paper and needs the compendium's dependencies. Fix: pip install "
              "'amcf[compendium]' (or `make setup` in a checkout)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
