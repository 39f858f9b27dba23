"""``amcf bench [--out FILE]``: amcf against the authors' loop, side by side (see
:mod:`benchmarks.sidebyside`); the command's flags are parsed by ``compendium.cli``."""

from __future__ import annotations

import argparse


def main(args: argparse.Namespace) -> int:
    from amcf.io import write_json
    from benchmarks.sidebyside import embedded_setup, render, run_bench
    from benchmarks.stage_costs import stage_costs

    setup = embedded_setup(args.target, args.params, args.prepared_dir)
    report = run_bench(setup, device=args.device, epochs=args.epochs, workers=args.workers,
                       threads=args.threads, search=not args.no_search,
                       stages=lambda: stage_costs(args.notebooks), log=print)
    print(render(report))
    if args.out:
        write_json(args.out, report)
        print(f"wrote {args.out}")
    return 0


