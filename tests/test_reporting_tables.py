import json
import math
import shutil

import pandas as pd
import pytest
from reporting_support import write_demo_results

from amcf.io import write_json
from compendium.methods.registry import ABLATIONS, BASELINES, method_info
from compendium.report.collect import collect
from compendium.report.stats import paired_comparison
from compendium.report.tables import (
    results_table,
    results_table_latex,
    summary_table,
    summary_table_latex,
    write_tables,
)
from compendium.summaries import group_frame, group_summary, write_group_summary
from compendium.timings import metrics_digest


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return write_demo_results(tmp_path_factory.mktemp("r") / "results")


@pytest.fixture(scope="module")
def frame(results):
    return collect(results)


def test_collect_reads_every_run_as_written(results, frame):
    # 2 targets x 10 methods x 3 seeds
    assert len(frame) == 60
    path = results / "digits" / "finetune-mnist" / "seed2" / "metrics.json"
    metrics = json.loads(path.read_text())
    row = frame[(frame.target == "digits") & (frame.method == "finetune-mnist") & (frame.seed == 2)]
    assert row.test_acc.item() == metrics["test_acc"]
    assert row.best_test_acc.item() == metrics["best_test_acc"]
    assert row.model_epochs.item() == metrics["model_epochs"]
    assert row.label.item() == "Fine-tune (mnist)" and row.family.item() == "baseline"
    amcf = frame[(frame.target == "digits") & (frame.method == "amcf")]
    search = json.loads((results / "digits" / "search.json").read_text())
    assert (amcf.search_evaluations == search["evaluations"]).all()
    assert frame.loc[frame.method == "scratch", "search_evaluations"].isna().all()


def test_collect_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        collect(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="no results"):
        collect(tmp_path)
    bad = tmp_path / "t" / "amcf" / "seed0" / "metrics.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        collect(tmp_path)
    write_json(bad, {"test_acc": 0.5})
    with pytest.raises(ValueError, match="lacks"):
        collect(tmp_path)


def test_results_table_equals_collected_numbers(frame):
    table = results_table(frame, "digits").set_index("method")
    for method, runs in frame[frame.target == "digits"].groupby("method"):
        row = table.loc[method]
        assert row.test_mean == pytest.approx(runs.test_acc.mean())
        assert row.test_std == pytest.approx(runs.test_acc.std(ddof=1))
        assert row.best_test_mean == pytest.approx(runs.best_test_acc.mean())
        assert row.model_epochs == pytest.approx(runs.model_epochs.mean())
        assert row.n == len(runs)
    ref = table.reference.iloc[0]
    val_means = frame[(frame.target == "digits") & frame.single_source].groupby("method").val_acc
    assert ref == val_means.mean().idxmax()
    cmp = paired_comparison(frame, "digits", "amcf", ref)
    assert table.loc["amcf"].delta == pytest.approx(cmp.mean_diff)
    assert table.loc["amcf"].p_value == pytest.approx(cmp.p_value)
    assert math.isnan(table.loc[ref].delta)
    # baselines before ablations before AMCF
    families = table.family.tolist()
    assert families == sorted(families, key=["baseline", "ablation", "amcf"].index)


def test_latex_and_csv_show_the_same_numbers(frame, tmp_path):
    from compendium.report.tables import paired_results_table

    written = write_tables(frame, tmp_path)
    table = paired_results_table(frame, "omniglot-small")
    csv = pd.read_csv(written["omniglot-small.csv"])
    assert csv.test_mean.to_numpy() == pytest.approx(table.test_mean.to_numpy())
    tex = written["omniglot-small.tex"].read_text()
    assert tex == results_table_latex(table)
    assert tex.count(r"\toprule") == 1 and tex.count(r"\bottomrule") == 1
    amcf = table.set_index("method").loc["amcf"]
    amcf_line = next(line for line in tex.splitlines() if line.startswith("AMCF &"))
    cells = [c.strip() for c in amcf_line.rstrip(" \\").split("&")]
    assert cells[1] == f"{100 * amcf.test_mean:.1f} $\\pm$ {100 * amcf.test_std:.1f}"
    assert cells[2].startswith(f"{100 * amcf.final_test_mean:.1f} ")
    assert cells[3].startswith(f"{100 * amcf.best_test_mean:.1f} ")
    assert cells[4] == f"{100 * amcf.delta:+.1f}"
    assert cells[-1] == str(amcf.search_evaluations)
    ref_line = next(line for line in tex.splitlines() if "ref." in line)
    assert ref_line.startswith(table.set_index("method").loc[amcf.reference, "label"])


def test_latex_escapes_labels(frame):
    odd = frame.assign(label=frame.label.where(frame.method != "scratch", "from_scratch & 100%"))
    tex = results_table_latex(results_table(odd, "digits"))
    assert r"from\_scratch \& 100\%" in tex


def test_summary_table_means_over_targets(frame):
    summary = summary_table(frame).set_index("method")
    per_target = [results_table(frame, t).set_index("method") for t in ("digits", "omniglot-small")]
    expected = (per_target[0].loc["amcf"].test_mean + per_target[1].loc["amcf"].test_mean) / 2
    assert summary.loc["amcf", "mean_test"] == pytest.approx(expected)
    assert summary.loc["amcf", "digits:test_mean"] == pytest.approx(
        per_target[0].loc["amcf"].test_mean)
    above = sum(p.loc["amcf"].delta > 0 for p in per_target)
    assert summary.loc["amcf", "targets_above_reference"] == above
    tex = summary_table_latex(summary.reset_index())
    assert r"\texttt{omniglot-small}" in tex
    # a method missing on one target gets no mean over targets
    partial = frame[~((frame.method == "scratch") & (frame.target == "digits"))]
    assert math.isnan(summary_table(partial).set_index("method").loc["scratch", "mean_test"])



def _grouped(results, root):
    """The demo tree laid out as the pipeline does: each stage group's runs in its folder."""
    folders = {"baseline": "baselines", "ablation": "ablations", "amcf": ""}
    for run in sorted((results / "digits").glob("*/seed*")):
        group = folders[method_info(run.parent.name).family]
        shutil.copytree(run, root / "digits" / group / run.parent.name / run.name)
    return root


def test_group_summary_is_the_stage_metric_of_its_family(frame, results, tmp_path):
    root = _grouped(results, tmp_path / "grouped")
    summary = group_summary(group_frame(root, "digits", "baselines"))
    baselines = frame[(frame.target == "digits") & (frame.family == "baseline")]
    assert set(summary) == set(baselines.method)
    scratch = baselines[baselines.method == "scratch"]
    assert summary["scratch"]["test_acc"] == pytest.approx(scratch.test_acc.mean())
    assert summary["scratch"]["test_acc_std"] == pytest.approx(scratch.test_acc.std())
    assert summary["scratch"]["seeds"] == len(scratch)
    assert set(group_summary(group_frame(root, "digits", "ablations"))) == {"amcf-lam0"}
    one_seed = group_frame(root, "digits", "baselines")
    one_seed = group_summary(one_seed[one_seed.seed == 0])
    assert one_seed["scratch"]["test_acc_std"] is None  # no spread from one seed
    path = write_group_summary(root, "digits", "baselines")
    assert path == root / "digits" / "baselines-summary.json"
    assert json.loads(path.read_text()) == summary
    with pytest.raises(ValueError, match="group must be one of"):
        group_frame(root, "digits", "baseline")


def test_a_group_stage_sees_only_its_own_runs(results, tmp_path):
    """baselines@ and ablations@ write into one folder beside amcf@'s runs; what one stage
    plots must not depend on whether the others happened to run before it."""
    root = _grouped(results, tmp_path / "grouped")
    rows = group_frame(root, "digits", "ablations", ABLATIONS)
    assert set(rows.method) == {"amcf-lam0"} and set(rows.family) == {"ablation"}
    assert len(list((root / "digits").glob("*/*/seed*"))) > len(rows)  # others were there
    assert set(group_frame(root, "digits", "baselines", BASELINES).family) == {"baseline"}
    assert set(group_frame(root, "digits", "amcf").method) == {"amcf"}  # amcf@'s own
    with pytest.raises(ValueError, match="group must be one of"):
        group_frame(root, "digits", "amcf-select")


def _metrics(final, **extra):
    return {"selected_epoch": 2, "val_acc": 0.8, "test_acc": 0.7, "best_test_acc": 0.75,
            "final_test_acc": final, "epochs": 3, "num_models": 2, "model_epochs": 6,
            "trainable_params": 10, **extra}


def _timed_file(root, run: str):
    """The file a timing row is tied to: a run's metrics, a search's search.json."""
    parts = run.split("/")
    if parts[-1].startswith("seed") and parts[-2] == "search":
        return root.joinpath(*parts[:-2], "searches", parts[-1], "search.json")
    if parts[-1] == "search":
        return root.joinpath(*parts[:-1], "search.json")
    return root / run / "metrics.json"


def _timings(root, runs: dict[str, float]):
    rows = ["run,wall_time_s,shared_by,machine,metrics_sha256"]
    for run, seconds in runs.items():
        path = _timed_file(root, run)
        digest = metrics_digest(path) if path.is_file() else ""
        rows.append(f"{run},{seconds},1,synthetic,{digest}")
    (root / "timings.csv").write_text("\n".join(rows) + "\n")


def test_collect_reads_a_members_final_accuracy_from_the_joint_history(tmp_path):
    run = tmp_path / "t" / "baselines" / "finetune-a" / "seed0"
    write_json(run / "metrics.json", _metrics(None, history_member=1))
    (run / "history.csv").write_text("epoch,test_acc,test_acc_m0,test_acc_m1\n"
                                     "1,0.5,0.4,0.3\n2,0.6,0.55,0.62\n")
    write_json(tmp_path / "t" / "amcf" / "seed0" / "metrics.json", _metrics(0.71))
    write_json(tmp_path / "t" / "amcf" / "seed1" / "metrics.json", _metrics(None))
    frame = collect(tmp_path).set_index(["method", "seed"])
    assert frame.loc[("finetune-a", 0), "final_test_acc"] == pytest.approx(0.62)
    assert frame.loc[("amcf", 0), "final_test_acc"] == pytest.approx(0.71)
    assert math.isnan(frame.loc[("amcf", 1), "final_test_acc"])  # no history: unknown


def test_collect_adds_each_seeds_search_to_the_cost_of_searched_schemes(tmp_path):
    for method in ("amcf", "ablations/amcf-full", "ablations/amcf-lam0", "baselines/ensemble"):
        for seed in range(3):
            write_json(tmp_path / "t" / method / f"seed{seed}" / "metrics.json", _metrics(0.7))
    write_json(tmp_path / "t" / "searches.json", {"searches": [
        {"seed": 1, "best": [1, 2], "evaluations": 20, "model_epochs": 200, "calls": 30},
        {"seed": 0, "best": [3, 4], "evaluations": 10, "model_epochs": 100, "calls": 30}]})
    for seed, best in ((1, [1, 2]), (0, [3, 4])):  # each search's own file, its time tied to it
        write_json(tmp_path / "t" / "searches" / f"seed{seed}" / "search.json",
                   {"best": best, "history": []})
    _timings(tmp_path, {"t/amcf/seed0": 2.0, "t/amcf/seed1": 3.0, "t/amcf/seed2": 4.0,
                        "t/search/seed0": 50.0, "t/search/seed1": 70.0})
    frame = collect(tmp_path).set_index(["method", "seed"])
    # training seed s uses the search at position s mod 2 of search_seeds (here [1, 0], the
    # order searches.json keeps): seed 1 the search of seed 0, seed 2 that of seed 1
    assert frame.loc[("amcf", 1), "total_model_epochs"] == 6 + 100
    assert frame.loc[("amcf", 2), "total_model_epochs"] == 6 + 200
    assert frame.loc[("amcf", 1), "total_wall_time_s"] == pytest.approx(53.0)
    # a search whose file changed since it was timed has no time
    write_json(tmp_path / "t" / "searches" / "seed0" / "search.json",
               {"best": [3, 4], "history": [{}]})
    stale = collect(tmp_path).set_index(["method", "seed"])
    assert math.isnan(stale.loc[("amcf", 1), "total_wall_time_s"])
    assert stale.loc[("amcf", 2), "total_wall_time_s"] == pytest.approx(74.0)
    assert frame.loc[("amcf", 2), "search_evaluations"] == 20
    assert frame.loc[("amcf-lam0", 1), "search_model_epochs"] == 100
    assert math.isnan(frame.loc[("amcf-lam0", 1), "total_wall_time_s"])  # run itself untimed
    for method in ("amcf-full", "ensemble"):  # no searched scheme: no search cost
        assert frame.loc[(method, 0), "total_model_epochs"] == 6
        assert pd.isna(frame.loc[(method, 0), "search_evaluations"])


def test_collect_derives_search_cost_from_a_single_search_file(tmp_path):
    write_json(tmp_path / "t" / "amcf" / "seed0" / "metrics.json", _metrics(0.7))
    write_json(tmp_path / "t" / "baselines" / "als" / "seed0" / "metrics.json", _metrics(0.7))
    write_json(tmp_path / "t" / "search.json", {
        "best": [1, 2], "evaluations": 4, "calls": 9,
        "settings": {"seed": 0, "dims": 2, "context": {"train": {"epochs": 3}}}})
    write_json(tmp_path / "t" / "baselines" / "als" / "search.json", {
        "best": [1], "evaluations": 5, "calls": 9,
        "settings": {"seed": 0, "dims": 1, "context": {"train": {"epochs": 3}}}})
    _timings(tmp_path, {"t/baselines/als/seed0": 1.0, "t/baselines/als/search": 9.0})
    frame = collect(tmp_path).set_index(["method", "seed"])
    assert frame.loc[("amcf", 0), "search_model_epochs"] == 4 * 3 * 2
    assert frame.loc[("als", 0), "total_model_epochs"] == 6 + 5 * 3
    assert frame.loc[("als", 0), "total_wall_time_s"] == pytest.approx(10.0)


# ---- paired tables: methods on different seeds compare only on the seeds they share ---------

def _constructed(seed_sets: dict[tuple[str, str], range]) -> pd.DataFrame:
    """A collected frame by hand: seeds 0-2 are easy (+10 points) for every method; l2sp is 2
    points below AMCF on every seed, the reference 5 points below."""
    offset = {"finetune-a": -0.05, "l2sp": -0.02, "amcf-k1": 0.01, "amcf": 0.0}
    info = {"finetune-a": ("Fine-tune (a)", "baseline", True, 1),
            "l2sp": ("L2-SP", "baseline", False, 2), "amcf-k1": ("K = 1", "ablation", False, 3),
            "amcf": ("AMCF", "amcf", False, 9)}
    rows = []
    for (target, method), seeds in seed_sets.items():
        label, family, single, order = info[method]
        for seed in seeds:
            acc = 0.6 + 0.1 * (seed < 3) + 0.003 * seed + offset[method]
            rows.append({"target": target, "method": method, "seed": seed, "label": label,
                         "family": family, "single_source": single, "order": order,
                         "test_acc": acc, "best_test_acc": acc + 0.01, "final_test_acc": acc,
                         "val_acc": acc, "model_epochs": 10.0, "wall_time_s": 1.0,
                         "search_evaluations": pd.NA, "total_model_epochs": 10.0,
                         "total_wall_time_s": 1.0})
    frame = pd.DataFrame(rows)
    frame["search_evaluations"] = frame["search_evaluations"].astype("Int64")
    return frame


def test_paired_results_table_compares_each_group_on_its_own_seeds():
    from compendium.report.tables import paired_results_table

    frame = _constructed({("t", "finetune-a"): range(10), ("t", "amcf"): range(10),
                          ("t", "l2sp"): range(3)})
    plain = results_table(frame, "t").set_index("method")
    # the artefact: over their own seeds, l2sp looks better than AMCF though it never is
    assert plain.loc["l2sp", "test_mean"] > plain.loc["amcf", "test_mean"]
    table = paired_results_table(frame, "t")
    assert table["seed_group"].tolist() == [0, 0, 1, 1, 1]
    assert table["seeds"].tolist() == ["0-9", "0-9", "0-2", "0-2", "0-2"]
    few = table[table["seed_group"] == 1].set_index("method")
    assert few["restricted"].to_dict() == {"finetune-a": True, "l2sp": False, "amcf": True}
    amcf_easy = frame[(frame.method == "amcf") & (frame.seed < 3)]["test_acc"]
    assert few.loc["amcf", "test_mean"] == pytest.approx(amcf_easy.mean())
    assert few.loc["amcf", "n"] == 3
    # within the group, AMCF is above l2sp by the 2 points it is above on every seed
    assert few.loc["amcf", "test_mean"] - few.loc["l2sp", "test_mean"] == pytest.approx(0.02)
    # Δ stays paired with the reference on the seeds the row is over
    assert few.loc["amcf", "delta"] == pytest.approx(0.05)
    assert few.loc["amcf", "n_paired"] == 3 and few.loc["l2sp", "n_paired"] == 3
    assert table[table.seed_group == 0].set_index("method").loc["amcf", "n_paired"] == 10
    tex = results_table_latex(table)
    lines = tex.splitlines()
    first, second = lines.index(r"\multicolumn{10}{l}{\emph{Seeds 0--9}} \\"), \
        lines.index(r"\multicolumn{10}{l}{\emph{Seeds 0--2}} \\")
    assert first < second
    assert any(line.startswith("AMCF, on these seeds & ") for line in lines[second:])
    assert any(line.startswith("Fine-tune (a), on these seeds & ") for line in lines[second:])
    assert not any("on these seeds" in line for line in lines[:second])


def test_paired_results_table_is_one_group_when_every_method_ran_every_seed(frame):
    from compendium.report.tables import paired_results_table

    table = paired_results_table(frame, "digits")
    assert set(table["seed_group"]) == {0} and not table["restricted"].any()
    plain = results_table(frame, "digits")
    assert table["test_mean"].tolist() == pytest.approx(plain["test_mean"].tolist())


def test_paired_summary_groups_by_the_seeds_on_every_target():
    from compendium.report.tables import paired_summary_table

    frame = _constructed({
        ("t1", "finetune-a"): range(10), ("t1", "amcf"): range(10), ("t1", "l2sp"): range(3),
        ("t1", "amcf-k1"): range(3), ("t2", "finetune-a"): range(10),
        ("t2", "amcf"): range(10), ("t2", "l2sp"): range(3), ("t2", "amcf-k1"): range(5)})
    summary = paired_summary_table(frame)
    groups = summary.groupby("seed_group")["method"].apply(list).to_dict()
    # the k1 ablation ran other seeds on t2 than l2sp: a group of its own
    assert groups == {0: ["finetune-a", "amcf"], 1: ["finetune-a", "amcf-k1", "amcf"],
                      2: ["finetune-a", "l2sp", "amcf"]}
    k1 = summary[summary.seed_group == 1].set_index("method")
    assert k1.loc["amcf", "restricted"] and not k1.loc["amcf-k1", "restricted"]
    amcf = frame[frame.method == "amcf"]
    expected = (amcf[(amcf.target == "t1") & (amcf.seed < 3)].test_acc.mean()
                + amcf[(amcf.target == "t2") & (amcf.seed < 5)].test_acc.mean()) / 2
    assert k1.loc["amcf", "mean_test"] == pytest.approx(expected)
    assert k1.loc["amcf", "t1:seeds"] == "0-2" and k1.loc["amcf", "t2:seeds"] == "0-4"
    # the group's own comparison: K = 1 is 1 point above AMCF on the same seeds
    assert k1.loc["amcf-k1", "mean_test"] - k1.loc["amcf", "mean_test"] == pytest.approx(0.01)
    tex = summary_table_latex(summary)
    assert r"\emph{Seeds \texttt{t1} 0--2; \texttt{t2} 0--4}" in tex
    assert r"\emph{Seeds 0--9}" in tex and r"\emph{Seeds 0--2}" in tex
    assert tex.count("AMCF, on these seeds") == 2


def test_written_tables_are_the_paired_ones(tmp_path):
    from compendium.report.tables import paired_results_table, paired_summary_table

    frame = _constructed({("t", "finetune-a"): range(10), ("t", "amcf"): range(10),
                          ("t", "l2sp"): range(3)})
    written = write_tables(frame, tmp_path)
    assert written["t.tex"].read_text() == results_table_latex(paired_results_table(frame, "t"))
    assert written["summary.tex"].read_text() == summary_table_latex(paired_summary_table(frame))
    csv = pd.read_csv(written["t.csv"])
    assert csv["restricted"].tolist() == [False, False, True, False, True]
