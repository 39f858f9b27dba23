"""``amcf bench [--out FILE]``: amcf against the authors' loop, side by side (see
:mod:`amcf.sidebyside`); this module only parses the command, so ``amcf`` starts fast."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="amcf against the authors' loop, side by side (speed)",
                       description="Runs benchmarks/reference.py (the authors' loop) and amcf "
                       "on the same models, data, seed and steps; prints and writes the ratios.")
    p.add_argument("--out", help="also write the figures as JSON to this file")
    p.add_argument("--target", default="digits", help="embedded target (default: digits)")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--prepared-dir", default="build/data")
    p.add_argument("--epochs", type=int, default=4, help="epochs of the training comparison")
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=None,
                   help="the reference's DataLoader workers (default: cores, at most 8)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads of both loops (default: the machine's cores)")
    p.add_argument("--no-search", action="store_true", help="skip the search comparison")
    p.add_argument("--notebooks", default="build/notebooks",
                   help="executed stage notebooks to read the per-stage costs from")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from amcf.io import write_json
    from amcf.sidebyside import embedded_setup, render, run_bench
    from amcf.stage_costs import stage_costs

    setup = embedded_setup(args.target, args.params, args.prepared_dir)
    report = run_bench(setup, device=args.device, epochs=args.epochs, workers=args.workers,
                       threads=args.threads, search=not args.no_search,
                       stages=lambda: stage_costs(args.notebooks), log=print)
    print(render(report))
    if args.out:
        write_json(args.out, report)
        print(f"wrote {args.out}")
    return 0


