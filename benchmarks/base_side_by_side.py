"""Today's embedded default run by issue 19's base commit, to time the two side by side.

Issue 19 asks for ``dvc repro --force`` of the embedded default to run at least twice as fast
as the code at its base commit (fae98cd). That commit predates the five targets, the per-seed
few-shot draws and the five source draws, so it cannot read today's ``params.yaml``. This
script gives it the same work in the form it understands:

- each target becomes an image folder with ``train/``, ``val/`` and ``test/`` (the base's
  ``folder:`` datasets): validation and test as today, training as today's draw 0 of
  ``shots`` images per class (every draw has the same number of images, so the same work);
- each source draw d becomes a pretrain stage of its own under seed ``train.seed + d``
  (the base trains one model per stage); the training stages use draw 0, as the base has
  one checkpoint per source;
- the final recipe, the fitness recipe, the seeds, the swarm and every baseline and ablation
  setting are copied from today's ``params.yaml``.

The base then runs one stage per draw (12 more stage start-ups than today's three
``pretrain@`` stages), which the comparison reports apart.

    python -m benchmarks.base_side_by_side prepare ../amcf-base   # after `make inputs`
    (cd ../amcf-base && make setup && .venv/bin/amcf data fetch && \\
     PATH=$PWD/.venv/bin:$PATH dvc repro --force)
    dvc repro --force                                              # here, nothing else running
    python -m benchmarks.base_side_by_side compare ../amcf-base .  # papermill's durations
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

BASE = "fae98cd"  # issue 19's base commit
ROOT = Path(__file__).resolve().parents[1]
FOLDERS = "data/today"  # where the targets' image folders go in the base's tree


def export_target(name: str, shots: int | None, prepared: Path, out: Path) -> dict[str, int]:
    """``out/<split>/c<label>/<i>.png`` for the target's draw 0, as today trains it."""
    import numpy as np
    from PIL import Image

    from compendium.data.prepared import load_splits
    from compendium.stages.fewshot import with_shots

    splits = with_shots(load_splits(name, prepared), shots, 0)
    sizes = {}
    for split in ("train", "val", "test"):
        data = getattr(splits, split)
        images, labels = data.images.numpy(), data.labels.numpy()
        if images.shape[1] != 1:
            raise SystemExit(f"{name}: {images.shape[1]} channels; the embedded targets are grey")
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            folder = out / split / f"c{int(label):03d}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image[0].astype(np.uint8), mode="L").save(folder / f"{i:05d}.png")
        sizes[split] = len(labels)
    return sizes


def base_params(base: dict, today: dict) -> dict:
    """The base's params.yaml carrying today's work (see the module's docstring)."""
    params = dict(base)
    sources = {n: {k: v for k, v in e.items() if k != "draws"}
               for n, e in today["pretrain"].items()}
    params["datasets"] = {name: today["datasets"][e["dataset"]] for name, e in sources.items()}
    params["pretrain"] = {}
    for name, entry in sources.items():
        for d in range(today["pretrain"][name].get("draws", 1)):
            train = {**entry["train"], "seed": entry["train"].get("seed", 0) + d}
            params["pretrain"][name if d == 0 else f"{name}-d{d}"] = {**entry, "train": train}
    for target in today["targets"]:
        folder = f"{FOLDERS}/{target}"
        params["datasets"][target] = {"folder": {"path": folder, "image_size": 28,
                                                 "channels": 1}, "raw": folder}
    params["targets"] = {t: {} for t in today["targets"]}
    params["amcf"] = {**base["amcf"], "lam": today["amcf"]["lam"],
                      "freeze_bn_stats": today["amcf"]["freeze_bn_stats"]}
    params["search"] = {**base["search"], **{k: today["search"][k] for k in
                                              ("search_seeds", "compare_scores", "pso")},
                        "fitness": today["search"]["fitness"]}
    params["final"] = today["final"]
    for group in ("baselines", "ablations"):  # the base knows no test_eval: every epoch
        params[group] = {k: v for k, v in today[group].items() if k != "test_eval"}
    params["report"] = {**base["report"], "featured_target": today["report"]["featured_target"]}
    return params


def prepare(base_dir: Path) -> None:
    if not base_dir.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base_dir),
                        BASE], check=True)
    today = yaml.safe_load((ROOT / "params.yaml").read_text())
    for target, entry in today["targets"].items():
        sizes = export_target(target, entry.get("shots"), ROOT / "build" / "data",
                              base_dir / FOLDERS / target)
        print(f"{target}: {sizes}")
    path = base_dir / "params.yaml"
    base = yaml.safe_load(subprocess.run(["git", "-C", str(base_dir), "show",
                                          f"{BASE}:params.yaml"], capture_output=True,
                                         text=True, check=True).stdout)
    path.write_text(yaml.safe_dump(base_params(base, today), sort_keys=False))
    print(f"wrote {path}; next: cd {base_dir} && make setup && .venv/bin/amcf data fetch && "
          "PATH=$PWD/.venv/bin:$PATH dvc repro --force")


def compare(base_dir: Path, new_dir: Path) -> None:
    """Papermill's seconds per stage kind of both trees (``stage_costs`` reads them)."""
    from benchmarks.stage_costs import stage_costs

    trees = {name: stage_costs(tree / "build" / "notebooks", tree / "build" / "work",
                               measure=False)["kinds"]
             for name, tree in (("base", base_dir), ("new", new_dir))}
    seconds = {name: {kind: (c["mean_stage_s"] * c["stages"], c["stages"])
                      for kind, c in kinds.items()} for name, kinds in trees.items()}
    print(f"{'stage kind':12s} {'base s (stages)':>17s} {'new s (stages)':>16s} {'ratio':>6s}")
    for kind in sorted(set(seconds["base"]) | set(seconds["new"])):
        base, nb = seconds["base"].get(kind, (0.0, 0))
        new, nn = seconds["new"].get(kind, (0.0, 0))
        ratio = f"{base / new:6.2f}" if new else "     -"
        print(f"{kind:12s} {base:10.1f} ({nb:3d}) {new:9.1f} ({nn:3d}) {ratio}")
    base, new = (sum(s for s, _ in seconds[n].values()) for n in ("base", "new"))
    print(f"{'notebooks':12s} {base:10.1f}       {new:9.1f}       {base / new:6.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare").add_argument("base_dir", type=Path)
    cmp = sub.add_parser("compare")
    cmp.add_argument("base_dir", type=Path)
    cmp.add_argument("new_dir", type=Path, nargs="?", default=ROOT)
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare(args.base_dir)
    else:
        compare(args.base_dir, args.new_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
