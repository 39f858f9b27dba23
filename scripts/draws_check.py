"""Does the primary comparison hold under a fresh, disjoint set of draws?

``python -m scripts.draws_check [--out build/draws-check.json]`` (``make draws-check``; about
14 minutes of the embedded default on 2 cores) reruns, in a scratch copy of this checkout
(``build/draws-check``), everything the primary comparison depends on under draws that share
nothing with the committed results: the sources pretrained under other seeds (``pretrain.*.
train.seed`` moved past every committed draw), other search seeds, and training seeds
``final.seeds`` moved past the committed ones; only the methods of the primary comparison
train (AMCF, and the ensemble from ``baselines@``'s fine-tuning). It then prints the primary
comparison of both sets side by side, per target and pooled, with the plan's interval and
equivalence verdict, and writes them to ``--out``.

This checkout's results must be up to date (`dvc repro` first): they are the first set.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

SCRATCH = Path("build/draws-check")
PRIMARY_STAGES = ("amcf", "baselines")
KEEP = ("scope", "method_a", "resolved_b", "n", "mean_diff", "ci_low", "ci_high", "boot_low",
        "boot_high", "interval", "p", "p_holm", "verdict", "equivalence", "group")


def fresh_params(params: dict[str, Any]) -> dict[str, Any]:
    """The params of the second set: every seed moved past the first set's, the primary
    comparison's methods only."""
    out = json.loads(json.dumps(params))
    draws = max(e.get("draws", 1) for e in out["pretrain"].values())
    for entry in out["pretrain"].values():
        entry["train"]["seed"] = entry["train"].get("seed", 0) + draws
    searches = out["search"]["search_seeds"]
    out["search"]["search_seeds"] = [max(searches) + 1 + i for i in range(len(searches))]
    seeds = out["final"]["seeds"]
    out["final"]["seeds"] = [max(seeds) + 1 + i for i in range(len(seeds))]
    out["baselines"]["methods"] = ["finetune"]  # the ensemble comes from its run
    return out


def _copy_checkout(scratch: Path) -> None:
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "build").mkdir(parents=True)
    files = subprocess.run(["git", "ls-files", "-z"], check=True, capture_output=True).stdout
    for name in files.decode().split("\0"):
        if name and Path(name).is_file():
            target = scratch / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(name, target)
    # the raw data, DVC's own files (its config is tracked too) and the prepared data
    shutil.copytree("data", scratch / "data", symlinks=True, dirs_exist_ok=True)
    shutil.copytree(".dvc", scratch / ".dvc", ignore=shutil.ignore_patterns("tmp"),
                    dirs_exist_ok=True)
    shutil.copytree("build/data", scratch / "build" / "data")
    subprocess.run(["git", "init", "-q", "."], cwd=scratch, check=True)


def primary_rows(root: Path) -> list[dict[str, Any]]:
    """The primary comparison's rows of the results under ``root`` (per target and pooled),
    under the analysis plan of ``root/params.yaml``."""
    from compendium.params import load_params
    from compendium.report.claims import claim_comparisons
    from compendium.report.collect import collect

    params = load_params(root / "params.yaml")
    results_dir = root / "results" / params.profile
    table = claim_comparisons(collect(results_dir), params.analysis_plan,
                              results_dir=results_dir)
    table = table[table["group"] == "primary"]
    return [{k: (None if isinstance(v, float) and v != v else v)
             for k, v in row.items() if k in KEEP} for row in table.to_dict("records")]


def _fmt(row: dict[str, Any]) -> str:
    """One row in points: the difference, the plan's interval, the verdict, equivalence."""
    low, high = (("boot_low", "boot_high") if row["interval"] == "bootstrap"
                 else ("ci_low", "ci_high"))
    pts = [100 * row[k] if row.get(k) is not None else float("nan")
           for k in ("mean_diff", low, high)]
    return (f"{row['scope']:<16} n={row['n']:<3} {pts[0]:+6.2f} [{pts[1]:+6.2f}, {pts[2]:+6.2f}]"
            f" ({row['interval']})  {row.get('verdict') or '-':<22} {row['equivalence']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="build/draws-check.json")
    parser.add_argument("--scratch", default=str(SCRATCH))
    args = parser.parse_args(argv)
    scratch = Path(args.scratch)
    params = yaml.safe_load(Path("params.yaml").read_text(encoding="utf-8"))
    first = primary_rows(Path("."))  # stops at once when the results lack the comparison
    _copy_checkout(scratch)
    fresh = fresh_params(params)
    (scratch / "params.yaml").write_text(yaml.safe_dump(fresh, sort_keys=False),
                                         encoding="utf-8")
    stages = [f"{kind}@{t}" for kind in PRIMARY_STAGES for t in fresh["targets"]]
    print(f"draws-check: {' '.join(stages)} in {scratch}, seeds {fresh['final']['seeds']}, "
          f"search seeds {fresh['search']['search_seeds']}", flush=True)
    subprocess.run(["dvc", "repro", *stages], cwd=scratch, check=True)
    second = primary_rows(scratch)
    sets = {"first": {"seeds": params["final"]["seeds"], "rows": first},
            "second": {"seeds": fresh["final"]["seeds"],
                       "search_seeds": fresh["search"]["search_seeds"],
                       "pretrain_seeds": {n: e["train"]["seed"]
                                          for n, e in fresh["pretrain"].items()},
                       "rows": second}}
    for name, entry in sets.items():
        print(f"{name} set (seeds {entry['seeds'][0]}-{entry['seeds'][-1]}):")
        for row in entry["rows"]:
            print("  " + _fmt(row))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(sets, indent=2, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
