"""params.yaml and the paper profile: both follow one schema, and bad values stop early."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from compendium.params import ParamsError, check, load_params

ROOT = Path(__file__).resolve().parents[1]
PROFILES = {"embedded": ROOT / "params.yaml", "paper": ROOT / "profiles" / "paper.yaml",
            "rehearsal": ROOT / "profiles" / "rehearsal.yaml"}


def _keys(tree, depth=2, prefix=""):
    """Key paths of a params tree, down to ``depth`` (below that, values may differ)."""
    if not isinstance(tree, dict) or depth == 0:
        return {prefix}
    return set().union(*(_keys(v, depth - 1, f"{prefix}.{k}") for k, v in tree.items()))


@pytest.mark.parametrize("name", PROFILES)
def test_profile_validates(name):
    params = load_params(PROFILES[name])
    assert params.profile == name


@pytest.mark.parametrize("other", ["paper", "rehearsal"])
def test_profiles_share_the_structure_dvc_yaml_reads(other):
    embedded, paper = (yaml.safe_load(PROFILES[p].read_text()) for p in ("embedded", other))
    fixed = ("amcf", "search", "final", "baselines", "ablations", "report")
    for section in fixed:
        assert _keys(embedded[section], 1) == _keys(paper[section], 1), section
    assert set(embedded) == set(paper)
    for tree in (embedded, paper):  # each prepare@ stage depends on its dataset's `raw`
        assert all("raw" in entry for entry in tree["datasets"].values())


def test_paper_profile_keeps_the_papers_numbers():
    p = load_params(PROFILES["paper"])
    assert (p.search.pso.particles, p.search.pso.iterations, p.search.pso.v_max) == (10, 5, 5.0)
    assert (p.search.pso.w_start, p.search.pso.w_end, p.search.pso.c1) == (1.4, 0.7, 1.5)
    assert p.search.fitness.epochs == 5 and p.amcf.lam == 0.2
    t = p.final.train
    assert (t.epochs, t.lr, t.momentum, t.weight_decay, t.step_size, t.gamma, t.batch_size) == (
        110, 0.01, 0.9, 5e-4, 30, 0.1, 64)
    cifar = p.pretrain["cifar100"]
    assert (cifar.train.epochs, cifar.train.batch_size, cifar.init) == (70, 100, "hub")
    assert cifar.arch == "resnet50.tv_in1k" and p.report.image_size == 224
    assert len(p.targets) == 7


def _broken(tmp_path, edit) -> Path:
    tree = yaml.safe_load(PROFILES["embedded"].read_text())
    edit(tree)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t["datasets"].update({"omniglott": {}}), "omniglot"),
    (lambda t: t["targets"].update({"digits2": {"shots": 3}}), "not under `datasets:`"),
    (lambda t: t["targets"].update({"digits": {}}), r"targets.digits.shots"),
    (lambda t: t["targets"].update({"digits": {"shots": 0}}), r"targets.digits.shots"),
    (lambda t: t["amcf"].update({"lam": -1}), "amcf.lam"),
    (lambda t: t["final"]["train"].update({"epochs": 0}), "final.train.epochs"),
    (lambda t: t["final"]["train"].update({"epoch": 3}), "final.train.epoch"),
    (lambda t: t["baselines"].update({"methods": ["l2-sp"]}), "baselines.methods"),
    (lambda t: t["baselines"].update({"seeds": [0]}), r"baselines.seeds: unknown key"),
    (lambda t: t["baselines"].update({"few_seeds": 0}), "baselines.few_seeds"),
    (lambda t: t["search"]["pso"].update({"seed": 3}), "search.search_seeds"),
    (lambda t: t["search"].update({"search_seeds": [1, 1]}), "distinct"),
    (lambda t: t["ablations"]["options"].update({"amcf-dml": {"temperature": 0}}),
     r"ablations\.options: amcf-dml\.temperature: .*greater than 0"),
    (lambda t: t["search"]["pso"].update({"particles": 0}), "search.pso.particles"),
    (lambda t: t["amcf"]["sources"]["mnist"].update({"arch": "resnet5O"}), "resnet5O"),
    (lambda t: t["report"].update({"featured_target": "mnist"}), "featured_target"),
    (lambda t: t["datasets"]["mnist"].update({"raw": "data/animals"}),
     r"datasets.mnist.raw .*Fix: set raw: data/mnist"),
    (lambda t: t["datasets"]["twemoji"].update({"raw": "data/twemoji"}),
     r"data/emoji/emoji.json.*Fix: set raw: data\b"),
    (lambda t: t["datasets"].update({"mine": {"folder": {"path": "x/y"}, "raw": "x"}}),
     "Fix: set raw: x/y"),
    (lambda t: t["baselines"]["options"].update({"l2sp": {"alpha": [0.01, -1.0]}}),
     r"baselines\.options: l2sp\.alpha\.1: .*greater than or equal to 0"),
    (lambda t: t["baselines"]["options"].update({"childtune-d": {"p": [0.3, 1.5]}}),
     r"childtune-d\.p\.1: .*less than or equal to 1"),
    (lambda t: t["baselines"]["options"].update({"childtune-f": {"q": 0.3}}),
     r"childtune-f has no setting \['q'\]; it accepts \['p'\]"),
    (lambda t: t["baselines"]["options"].update({"l2-sp": {"alpha": 0.1}}),
     r"'l2-sp' is no baseline run id"),
    # source draws: as many per source, a divisor of the searches, each file built or present
    (lambda t: t["amcf"]["sources"]["mnist"]["weights"].pop(),
     r"amcf.sources: the sources list different numbers of draws .*'mnist': 4"),
    (lambda t: t["search"].update({"search_seeds": [0, 1, 2]}),
     r"5 draws, which do not divide the 3 searches"),
    (lambda t: t["amcf"]["sources"]["twemoji"]["weights"].__setitem__(
        4, "build/sources/twemoji/draw7.pt"),  # pretrain@twemoji builds draws 0-4 only
     r"amcf.sources.twemoji.weights\[4\]: build/sources/twemoji/draw7.pt does not exist \(nor "
     r"is it built by a pretrain@ stage\)"),
    (lambda t: t["pretrain"]["mnist"].update({"draws": 0}), "pretrain.mnist.draws"),
    (lambda t: t["amcf"]["sources"]["mnist"].update({"weights": []}),
     r"empty list\(s\) at amcf.sources.mnist.weights"),
])
def test_bad_values_are_named(tmp_path, edit, message):
    with pytest.raises((ParamsError, ValueError), match=message):
        load_params(_broken(tmp_path, edit))


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t["final"].update({"seeds": [0, 0, 1]}),
     r"final\.seeds must be distinct seeds, but \[0, 0, 1\] repeats \[0\]: .*publish the "
     r"same run twice\. Fix: list each seed once"),
    (lambda t: t["search"].update({"search_seeds": [4, 3, 4]}),
     r"search\.search_seeds must be distinct seeds, but \[4, 3, 4\] repeats \[4\]: .*Fix: "
     r"list each seed once"),
])
def test_duplicate_seeds_are_refused_by_params_check(tmp_path, capsys, edit, message):
    """A repeated seed would publish one run (or one search) twice: `amcf params check`
    refuses it with a message naming the list, the repeated seed and the fix."""
    path = _broken(tmp_path, edit)
    assert check([str(path)]) == 2
    assert re.search(message, capsys.readouterr().err.replace("\n  ", " "))
    assert check([str(PROFILES["embedded"])]) == 0  # distinct seeds pass


def test_unreadable_or_missing_file(tmp_path, capsys):
    with pytest.raises(ParamsError, match="does not exist"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("amcf: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)
    assert check([str(bad)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_dry_run_of_the_paper_profile_lists_every_stage(tmp_path):
    """`dvc repro --dry --force` with profiles/paper.yaml as params.yaml (a dry run of stages
    whose inputs do not exist yet needs --force, or DVC stops at the first missing input)."""
    for name in ("dvc.yaml", "notebooks", "amcf", "compendium", "paper"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    shutil.copy(PROFILES["paper"], tmp_path / "params.yaml")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=tmp_path, check=True, env=env)
    (tmp_path / "data").mkdir()
    out = subprocess.run(["dvc", "repro", "--dry", "--force"], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    listed = subprocess.run(["dvc", "stage", "list", "--name-only"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, check=True).stdout.split()
    paper = load_params(PROFILES["paper"])
    expected = ({f"prepare@{d}" for d in paper.datasets}
                | {"pretrain@cifar100", "report", "paper"}
                | {f"{kind}@{t}" for kind in ("search", "amcf", "baselines", "ablations")
                   for t in paper.targets})
    assert set(listed) == expected
    assert out.returncode == 0, out.stderr
    for stage in expected:
        assert f"Running stage '{stage}'" in out.stdout, stage


def test_settings_grids_stay_small_and_the_rehearsal_trains_none():
    """A grid of n points costs n - 1 extra runs per target (select_options)."""
    from compendium.methods.entry import by_run, option_grid
    from compendium.methods.registry import BASELINES

    def extra_runs(name):
        options = load_params(PROFILES[name]).baselines.options
        return sum(len(option_grid(by_run(BASELINES, m), o)) - 1 for m, o in options.items())

    assert extra_runs("embedded") == 6 and extra_runs("paper") == 3
    assert extra_runs("rehearsal") == 0


def test_compare_scores_are_checked(tmp_path):
    path = _broken(tmp_path, lambda t: t["search"].update({"compare_scores": ["los"]}))
    with pytest.raises((ParamsError, ValueError), match="compare_scores: unknown fitness score"):
        load_params(path)
