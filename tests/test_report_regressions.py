"""Regressions of the paper profile's first run: the report stage and the paper build."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import timm
import yaml
from reporting_support import DEMO_PARAMS, demo_plan, write_demo_results

from amcf.io import write_json
from amcf.layers import layer_table
from compendium.report.layers import source_layer_tables
from compendium.report.paper_inputs import write_paper_inputs

ROOT = Path(__file__).resolve().parents[1]


def _results_paths(stage: dict) -> list[str]:
    paths = []
    for key in ("deps", "outs", "metrics", "plots"):
        for entry in stage.get(key, []):
            paths.extend(entry if isinstance(entry, dict) else [entry])
    return [p for p in paths if p.startswith("results")]


def test_every_stage_writes_and_reads_only_its_profiles_results():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        body = stage.get("do", stage)
        for path in _results_paths(body):
            assert path == "results/${profile}" or path.startswith("results/${profile}/"), (
                name, path)
        for flag in re.findall(r"--\w+_dir (results\S*)", body["cmd"]):
            assert flag.startswith("results/${profile}"), (name, flag)
    assert "results/${profile}" in stages["report"]["deps"]


def test_report_of_one_profile_ignores_another_profiles_results(tmp_path):
    """The paper profile's report once collected the embedded targets too, and the schemes
    table raised because their source sets differ."""
    embedded = write_demo_results(tmp_path / "results" / "embedded", targets=("digits",),
                                  sources=("mnist", "animals", "twemoji"))
    paper = write_demo_results(tmp_path / "results" / "paper",
                               targets=("stanford-dogs", "mit-indoor67"),
                               sources=("imagenet", "cifar100"))
    assert embedded.is_dir()
    params = {**DEMO_PARAMS, "sources": ["imagenet", "cifar100"]}
    written = write_paper_inputs(paper, tmp_path / "paper", "paper", params,
                                 featured_target="stanford-dogs",
                                 plan=demo_plan(["stanford-dogs", "mit-indoor67"]))
    schemes = written["table:schemes"].read_text()
    assert "stanford-dogs" in schemes and "digits" not in schemes
    summary = written["results-tables"].read_text()
    assert "digits" not in summary
    mixed = tmp_path / "one-results-folder"  # the old layout: both profiles in one tree
    write_demo_results(mixed, targets=("digits",), sources=("mnist", "animals", "twemoji"))
    write_demo_results(mixed, targets=("stanford-dogs",), sources=("imagenet", "cifar100"))
    with pytest.raises(ValueError, match="one source set"):
        write_paper_inputs(mixed, tmp_path / "mixed", "paper", params,
                           featured_target="stanford-dogs",
                           plan=demo_plan(["digits", "stanford-dogs"]))


def test_hub_source_without_a_pretrain_stage_gets_its_architectures_layer_table(tmp_path):
    """The paper's ImageNet source has no pretrain stage, so no layers.json; the report
    raised FileNotFoundError looking for one."""
    arch = "test_resnet.r160_in1k"
    results = write_demo_results(tmp_path / "results", targets=("stanford-dogs",),
                                 sources=("imagenet", "cifar100"))
    (results / "layers.json").unlink()
    own = [{"index": 0, "start": "conv1.0.weight", "module": "conv1.0", "params": 7}]
    write_json(results / "sources" / "cifar100" / "layers.json", {"layers": own})
    sources = {"imagenet": {"arch": arch, "weights": "hub"},
               "cifar100": {"arch": arch, "weights": "build/sources/cifar100.pt"}}
    tables = source_layer_tables(results, sources)
    expected = [row.__dict__ for row in layer_table(timm.create_model("test_resnet"))]
    assert tables["imagenet"] == expected and len(expected) == 12
    assert tables["cifar100"] == own  # a pretrained source's own table wins
    params = {**DEMO_PARAMS, "sources": list(sources)}
    written = write_paper_inputs(results, tmp_path / "paper", "paper", params,
                                 layer_tables=tables, featured_target="stanford-dogs",
                                 plan=demo_plan(["stanford-dogs"]))
    assert written["figure:scheme"].is_file()


def _paper_steps() -> str:
    # the paper profile's steps, linked from the README
    readme = (ROOT / "docs" / "profiles.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    [steps] = [b for b in blocks if "cp profiles/paper.yaml params.yaml" in b]
    return steps


def test_readmes_paper_steps_install_tex_before_the_pipeline():
    """`paper` needs latexmk and pdflatex, which the paper steps never installed."""
    steps = _paper_steps()
    assert "make paper-setup" in steps
    assert steps.index("make paper-setup") < steps.index("dvc repro")
    plan = subprocess.run(["make", "-n", "paper-setup"], cwd=ROOT, capture_output=True,
                          text=True)
    assert plan.returncode == 0, plan.stderr
    assert "latexmk" in plan.stdout
