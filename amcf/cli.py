"""The ``amcf`` console script.

    amcf data fetch   [--profile embedded|paper] [--mirror DIR] [--only NAME ...] [--data-dir DIR]
    amcf data prepare [--profile embedded|paper] [--only NAME ...] [--data-dir DIR]
                      [--out build/data] [--params params.yaml]
    amcf data list    [--profile embedded|paper]
    amcf notebook NOTEBOOK OUTPUT [--name value ...]   (a pipeline stage; see amcf.pipeline)
    amcf params check [FILE ...]                       (validate params.yaml / a profile)
    amcf gpu-run [STAGE ...] --gpus 0,1,...            (paper profile: stages on several GPUs)
"""

from __future__ import annotations

import argparse
import sys
import time

from amcf.data.errors import DataError


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
    prep = cmds.add_parser("prepare", help="decode, split and describe datasets")
    common(prep)
    prep.add_argument("--out", default="build/data", help="output root (default: build/data)")
    prep.add_argument("--params", help="YAML with `datasets:` entries of kind folder")
    lst = cmds.add_parser("list", help="list known datasets")
    lst.add_argument("--profile", choices=["embedded", "paper"], default=None)
    return parser


def _list(profile: str | None) -> None:
    from amcf.data.commands import table

    rows = table(profile)
    cols = ["name", "profile", "role", "classes", "train", "val", "test", "licence"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str("?" if r[c] in (None, -1) else r[c]).ljust(widths[c]) for c in cols))


def run(argv: list[str]) -> None:
    args = _parser().parse_args(argv)
    from amcf.data import commands

    if args.command == "list":
        _list(args.profile)
    elif args.command == "fetch":
        start = time.perf_counter()
        commands.fetch(args.profile, args.only, args.data_dir, args.mirror)
        print(f"fetch done in {time.perf_counter() - start:.1f} s")
    elif args.command == "prepare":
        from amcf.data.folder import load_entries, prepare_folder

        entries = load_entries(args.params) if args.params else []
        wanted = set(args.only or [])
        own = [e for e in entries if not wanted or e.name in wanted]
        registered = [n for n in (args.only or []) if n not in {e.name for e in entries}]
        if registered or not args.only:
            commands.prepare(args.profile, registered or None,
                             args.data_dir or commands.DATA_DIRS[args.profile], args.out)
        for entry in own:
            print(f"prepared {entry.name} -> {prepare_folder(entry, args.out)}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # these two take free-form flags (a notebook's parameters, DVC stage names), so they
    # parse their own arguments
    if argv[:1] == ["notebook"]:
        from amcf.pipeline.notebook import main as notebook_main

        return notebook_main(argv[1:])
    if argv[:1] == ["params"]:
        from amcf.config import main as params_main

        return params_main(argv[1:])
    if argv[:1] == ["gpu-run"]:
        from amcf.pipeline.gpu import main as gpu_main

        return gpu_main(argv[1:])
    try:
        run(argv)
    except DataError as exc:
        print(f"amcf: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
