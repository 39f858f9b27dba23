"""Each layer search's wall time: recorded beside the runs' (never in the results), tied to the
search.json it produced, summarised by `amcf timings record`, and read into the search cost of
the runs that use it; a resumed search is not timed short."""

from __future__ import annotations

import hashlib
import itertools
import json
import math

import pytest

from amcf.io import write_json
from amcf.search.result import SearchResult
from amcf.train.config import FitnessConfig
from compendium import results
from compendium.report.claims import cost_claim
from compendium.report.collect import collect
from compendium.stages import search as search_stage
from compendium.timing_summary import current_wall_times, read_summary, write_summary

SEARCH_SEEDS = [4, 3]
FOUND = {4: ((3, 0), 7, 0.91), 3: ((0, 2), 5, 0.83)}


def _fake_search(splits, sources, pso, fitness, lam, out_dir, work_dir, freeze_bn_stats=False):
    """The per-seed search without training: a fixed result, written as the real one is."""
    best, evaluations, acc = FOUND[pso["seed"]]
    history = [{"scheme": list(best), "fitness": acc, "val_acc": acc, "val_loss": 0.3}]
    result = SearchResult("pso", best, acc, 4, evaluations, history, {"seed": pso["seed"]})
    results.write_search(out_dir, [s.name for s in sources], result)
    return result


class _Clock:
    """perf_counter stand-in: each search seems to take `step` seconds."""

    def __init__(self, step: float):
        self.ticks = itertools.count(0.0, step / 2)

    def perf_counter(self) -> float:
        return next(self.ticks)


def _metrics(acc: float, scheme) -> dict:
    return {"selected_epoch": 1, "val_acc": acc, "test_acc": acc, "best_test_acc": acc,
            "final_test_acc": acc, "epochs": 1, "num_models": 2, "model_epochs": 2,
            "trainable_params": 10, "device": "cpu", "scheme": list(scheme)}


@pytest.fixture
def searched(digits, sources, tmp_path, monkeypatch):
    monkeypatch.setenv("AMCF_LOCAL_WORKERS", "1")  # in this process, where the fakes are
    monkeypatch.setattr(search_stage, "run_search", _fake_search)
    monkeypatch.setattr(search_stage, "time", _Clock(12.0))
    root, work = tmp_path / "results", tmp_path / "work"
    fitness = FitnessConfig(epochs=2, batch_size=128, progress=False)
    args = (digits, sources, {"particles": 2, "iterations": 1}, fitness, 0.2, SEARCH_SEEDS,
            root / "digits", work)
    search_stage.run_searches(*args)
    return root, tmp_path / "timings", args


def test_each_search_records_its_wall_time_tied_to_its_search_json(searched):
    root, timings, _ = searched
    for seed in SEARCH_SEEDS:
        record = json.loads((timings / "digits" / "search" / f"seed{seed}.json").read_text())
        search_json = results.search_dir(root / "digits", seed) / results.SEARCH
        assert record["run"] == f"digits/search/seed{seed}"
        assert record["wall_time_s"] == pytest.approx(6.0)  # two ticks of the fake clock
        assert record["metrics_sha256"] == hashlib.sha256(search_json.read_bytes()).hexdigest()
    # the results hold no wall time
    assert "wall" not in (root / "digits" / "searches.json").read_text()


def test_the_summary_carries_search_times_into_the_runs_cost(searched):
    root, timings, _ = searched
    for seed in range(4):  # AMCF runs: seed s uses the search at position s mod 2
        scheme = FOUND[SEARCH_SEEDS[seed % 2]][0]
        write_json(root / "digits" / "amcf" / f"seed{seed}" / "metrics.json",
                   _metrics(0.5 + seed / 100, scheme))
    _, origin = write_summary(root, timings)
    assert {"digits/search/seed4", "digits/search/seed3"} <= set(origin["recorded"])
    assert current_wall_times(root)["digits/search/seed3"] == pytest.approx(6.0)
    frame = collect(root)
    assert frame["search_wall_time_s"].tolist() == pytest.approx([6.0] * 4)
    # the runs themselves were not timed, so the total stays unknown rather than understated
    assert frame["total_wall_time_s"].isna().all()
    assert "was not recorded for every run" in cost_claim(frame)
    timed = frame.assign(wall_time_s=2.0, total_wall_time_s=8.0)
    assert "8.0 s of wall time, of which the search took 6.0 s" in cost_claim(timed)


def test_a_changed_search_loses_its_time(searched):
    root, timings, _ = searched
    write_summary(root, timings)
    path = results.search_dir(root / "digits", 3) / results.SEARCH
    data = json.loads(path.read_text())
    write_json(path, {**data, "best_fitness": 0.5})
    times = current_wall_times(root)
    assert "digits/search/seed4" in times and "digits/search/seed3" not in times
    assert set(read_summary(root)) >= {"digits/search/seed3"}  # the row stays, unused


def test_a_resumed_search_is_not_timed_short(searched, monkeypatch):
    root, timings, args = searched
    record = timings / "digits" / "search" / "seed4.json"
    before = record.read_bytes()
    # the swarm's state exists now, as after a killed search: the rerun takes 100 s of which
    # only a part would be the search's; its time must not replace the full one
    state, _ = search_stage.search_dirs(*args[:2], {**args[2], "seed": 4},
                                        args[3].model_copy(update={"seed": 4}), args[4],
                                        args[7], False)
    write_json(state, {"resumed": True})
    monkeypatch.setattr(search_stage, "time", _Clock(200.0))
    search_stage.run_searches(*args)
    assert record.read_bytes() == before
    seed3 = json.loads((timings / "digits" / "search" / "seed3.json").read_text())
    assert seed3["wall_time_s"] == pytest.approx(100.0)  # no state: timed afresh
    assert not math.isnan(seed3["wall_time_s"])
