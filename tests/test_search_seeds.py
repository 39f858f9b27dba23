"""One rule ties a training seed to a search: seed s uses the search at position s mod n of
``search.search_seeds`` (``compendium.results.search_for_seed``). With the seeds out of order
(``[4, 3]``), position and value differ, so a reader that looked a search up by value would
disagree with training; training and the report must agree on every seed."""

from __future__ import annotations

import json

from amcf.search.result import SearchResult
from amcf.train.config import FitnessConfig, TrainConfig
from compendium import results
from compendium.report.collect import collect
from compendium.report.fitness import target_fitness_row
from compendium.stages import search as search_stage
from compendium.stages.runs import Setting, run_amcf_variant

SEARCH_SEEDS = [4, 3]
# each search's chosen scheme and its cost, distinct so that any mix-up shows
FOUND = {4: ((3, 0), 7, 0.91, 0.30), 3: ((0, 2), 5, 0.83, 0.45)}


def _fake_search(splits, sources, pso, fitness, lam, out_dir, work_dir, freeze_bn_stats=False):
    """The search stage's per-seed search, without its training: a fixed result per seed,
    written by the results module's writer as the real one is."""
    best, evaluations, acc, loss = FOUND[pso["seed"]]
    history = [{"scheme": list(best), "fitness": acc, "val_acc": acc, "val_loss": loss}]
    result = SearchResult("pso", best, acc, 4, evaluations, history, {"seed": pso["seed"]})
    results.write_search(out_dir, [s.name for s in sources], result)
    return result


def test_training_and_the_report_agree_on_each_seeds_scheme_and_search_cost(
        digits, sources, tmp_path, monkeypatch):
    monkeypatch.setenv("AMCF_LOCAL_WORKERS", "1")  # in this process, where the fake search is
    monkeypatch.setattr(search_stage, "run_search", _fake_search)
    root = tmp_path / "results"
    fitness = FitnessConfig(epochs=2, batch_size=128, progress=False)
    search_stage.run_searches(digits, sources, {"particles": 2, "iterations": 1}, fitness, 0.2,
                              SEARCH_SEEDS, root / "digits", tmp_path / "work")
    listed = json.loads((root / "digits" / "searches.json").read_text())["searches"]
    assert [row["seed"] for row in listed] == SEARCH_SEEDS  # the params' order, kept

    schemes = results.schemes_of(root / "digits" / "searches.json")
    setting = Setting(splits=digits, sources=sources, scheme=schemes[0], schemes=schemes,
                      train=TrainConfig(epochs=1, batch_size=128, lr=0.05, progress=False),
                      results_dir=root, work_dir=tmp_path / "work")
    for seed in range(4):
        run_amcf_variant(setting, seed)

    frame = collect(root).set_index(["method", "seed"])
    searches = results.target_searches(root, "digits")
    for seed in range(4):
        used = SEARCH_SEEDS[seed % len(SEARCH_SEEDS)]  # by position in search_seeds
        best, evaluations, _, _ = FOUND[used]
        metrics = json.loads((root / "digits" / "amcf" / f"seed{seed}" / "metrics.json")
                             .read_text())
        assert tuple(metrics["scheme"]) == best, seed  # what training used
        assert results.search_for_seed(searches, seed)["seed"] == used  # what the report reads
        row = frame.loc[("amcf", seed)]
        assert row["search_evaluations"] == evaluations, seed
        assert row["search_model_epochs"] == evaluations * fitness.epochs * len(sources), seed
    # the fitness study pairs each search's scheme with the seeds that trained it: two
    # schemes, each from two of the four seeds
    amcf = collect(root)
    amcf = amcf[amcf["method"] == "amcf"].sort_values("seed")
    study = target_fitness_row("digits", searches, amcf)
    assert (study["pairs"], study["seeds"]) == (2, 4)
