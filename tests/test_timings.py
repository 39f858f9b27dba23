"""Wall times: recorded outside the results, summarised into them only on purpose."""

from __future__ import annotations

import json
import math

import pytest

from amcf.io import write_json
from compendium.cli import main
from compendium.report.collect import collect
from compendium.report.tables import results_table
from compendium.timing_summary import SUMMARY_NAME, read_summary, write_summary
from compendium.timings import write_record


def _metrics(acc: float) -> dict:
    return {"selected_epoch": 1, "val_acc": acc, "test_acc": acc, "best_test_acc": acc,
            "final_test_acc": acc, "epochs": 1, "num_models": 1, "model_epochs": 1,
            "trainable_params": 10, "device": "cpu"}


@pytest.fixture
def tree(tmp_path):
    """Two seeds of one method, each with a timing record as a run would leave it."""
    results, timings = tmp_path / "results", tmp_path / "timings"
    for seed, (acc, seconds) in enumerate([(0.5, 3.0), (0.7, 5.0)]):
        path = write_json(results / f"t/scratch/seed{seed}/metrics.json", _metrics(acc))
        write_record(timings, f"t/scratch/seed{seed}", path,
                     {"wall_time_s": seconds, "epoch_seconds": [seconds]})
    return results, timings


def test_no_summary_means_no_wall_time_and_a_dash(tree):
    results, _ = tree
    frame = collect(results)
    assert frame["wall_time_s"].isna().all()
    assert math.isnan(results_table(frame, "t")["wall_time_s"].iloc[0])


def test_summary_carries_the_recorded_times_into_the_report(tree):
    results, timings = tree
    path, origin = write_summary(results, timings)
    assert path == results / SUMMARY_NAME
    assert origin == {"recorded": ["t/scratch/seed0", "t/scratch/seed1"], "kept": [],
                      "missing": []}
    frame = collect(results)
    assert frame["wall_time_s"].tolist() == [3.0, 5.0]
    assert results_table(frame, "t")["wall_time_s"].iloc[0] == 4.0
    # writing it again from the same record gives the same bytes
    before = path.read_bytes()
    write_summary(results, timings)
    assert path.read_bytes() == before


def test_a_timing_never_attaches_to_a_result_it_was_not_measured_with(tree):
    results, timings = tree
    write_summary(results, timings)
    write_json(results / "t/scratch/seed1/metrics.json", _metrics(0.9))  # a new result
    frame = collect(results)
    assert frame["wall_time_s"].tolist()[0] == 3.0 and math.isnan(frame["wall_time_s"][1])
    # a partial record keeps the summary's rows that still match, drops the stale one
    (timings / "t/scratch/seed0.json").unlink()
    _, origin = write_summary(results, timings)
    assert origin == {"recorded": [], "kept": ["t/scratch/seed0"], "missing": ["t/scratch/seed1"]}
    assert set(read_summary(results)) == {"t/scratch/seed0"}


def test_record_command_refuses_when_nothing_matches(tree, tmp_path, capsys):
    results, _ = tree
    none = tmp_path / "none"
    assert main(["timings", "record", "--results", str(results), "--timings", str(none)]) == 2
    assert "run the pipeline on this machine first" in capsys.readouterr().err
    assert not (results / SUMMARY_NAME).exists()


def test_record_command_reports_what_it_wrote(tree, capsys):
    results, timings = tree
    assert main(["timings", "record", "--results", str(results), "--timings", str(timings)]) == 0
    out = capsys.readouterr().out
    assert "2 runs timed on this machine, 0 kept" in out
    rows = (results / SUMMARY_NAME).read_text().splitlines()
    assert rows[0] == "run,wall_time_s,shared_by,machine,metrics_sha256"
    assert rows[1].startswith("t/scratch/seed0,3.000,1,")
    assert json.loads((timings / "t/scratch/seed0.json").read_text())["shared_by"] == 1


# ---- the measured `make reproduce` ---------------------------------------------------------

def test_a_reproduction_time_is_committed_only_for_the_results_it_produced(tree, tmp_path):
    from compendium.timing_summary import (
        REPRODUCE_NAME,
        commit_reproduce_time,
        read_reproduce_time,
        write_reproduce_record,
    )

    results, timings = tree
    assert commit_reproduce_time(results, timings) == "missing"
    write_reproduce_record(timings, results, started=1000.0, setup_included=True,
                           finished=2041.5)
    # a summary of wall times beside the results does not change what they are
    write_summary(results, timings)
    assert commit_reproduce_time(results, timings) == "recorded"
    record = read_reproduce_time(results)
    assert record["wall_time_s"] == 1041.5 and record["setup_included"] is True
    assert record["command"] == "make reproduce" and record["machine"]
    (timings / "reproduce.json").unlink()
    assert commit_reproduce_time(results, timings) == "kept"
    # a result changes: the committed time no longer describes these results
    write_json(results / "t/scratch/seed1/metrics.json", _metrics(0.9))
    assert read_reproduce_time(results) is None
    assert commit_reproduce_time(results, timings) == "missing"
    assert (results / REPRODUCE_NAME).is_file()  # left as it was, and unused
    with pytest.raises(ValueError, match="before it starts"):
        write_reproduce_record(timings, results, started=10.0, setup_included=False,
                               finished=5.0)


def test_reproduce_command_reads_the_start_make_wrote(tree, tmp_path, capsys):
    results, timings = tree
    since = tmp_path / "reproduce.started"
    since.write_text("garbage\n")
    args = ["timings", "reproduce", "--since", str(since), "--results", str(results),
            "--timings", str(timings)]
    assert main(args) == 2
    assert "should hold" in capsys.readouterr().err
    since.write_text("1.5 1\n")  # the epoch's first seconds: a long run, set-up included
    assert main(args) == 0
    record = json.loads((timings / "reproduce.json").read_text())
    assert record["setup_included"] is True and record["wall_time_s"] > 1e6
    assert main(["timings", "record", "--results", str(results), "--timings",
                 str(timings)]) == 0
    assert "recorded from this machine" in capsys.readouterr().out


def test_make_reproduce_starts_its_clock_before_the_set_up_and_records_at_the_end():
    import shutil
    import subprocess
    from pathlib import Path

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(["make", "-n", "--no-print-directory", "reproduce-clock",
                           "reproduce"], cwd=root, capture_output=True, text=True, timeout=60,
                          check=True)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    clock = next(i for i, line in enumerate(lines) if "reproduce.started" in line)
    check = next(i for i, line in enumerate(lines) if "amcf numerics check" in line)
    repro = next(i for i, line in enumerate(lines) if "dvc repro --force" in line)
    record = next(i for i, line in enumerate(lines) if "amcf timings reproduce" in line)
    assert clock < check < repro < record
    assert "--since build/timings/reproduce.started" in lines[record]
