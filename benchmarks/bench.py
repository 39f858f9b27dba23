"""``amcf bench [--target T ...] [--out FILE]``: amcf against the authors' loop, side by side
(see :mod:`benchmarks.sidebyside`), on every target of params.yaml unless told; the command's
flags are parsed by ``compendium.cli``."""

from __future__ import annotations

import argparse


def main(args: argparse.Namespace) -> int:
    from amcf.io import write_json
    from benchmarks.sidebyside import embedded_setup, render, run_bench
    from benchmarks.stage_costs import stage_costs
    from compendium.params import load_params

    targets = args.target or list(load_params(args.params).targets)
    setups = [embedded_setup(t, args.params, args.prepared_dir) for t in targets]
    report = run_bench(setups, device=args.device, epochs=args.epochs, threads=args.threads,
                       search=not args.no_search, trainings=args.trainings,
                       workers=args.workers, stages=lambda: stage_costs(args.notebooks),
                       log=print)
    print(render(report))
    if args.out:
        write_json(args.out, report)
        print(f"wrote {args.out}")
    return 0
