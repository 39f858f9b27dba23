"""The results tree: where each result file lies, its one writer and its one reader, and the
rule that ties a training seed to a search.

Layout under ``results/<profile>/`` (every file here is committed and holds no wall-clock
time, so a rerun writes the same bytes)::

    data/<dataset>/splits.json, card.md             prepare@<dataset> (+ samples.{png,pdf})
    sources/<name>/layers.json, draws.json          pretrain@<source>
    sources/<name>/draws/draw<d>/metrics.json,      one draw of it (+ curves.{png,pdf})
                                 history.csv
    <target>/searches.json                          search@<target>: every search's row
    <target>/searches/seed<k>/search.json,          one search: its calls; its headline
                              search-summary.json
    <target>/search.json, search-summary.json       the first search's, again (its figures)
    <target>/<method>/seed<k>/metrics.json,         amcf@<target>: amcf, amcf-select
                              history.csv, test_predictions.csv
    <target>/<group>/<method>/seed<k>/...           baselines@, ablations@ (group = the stage)
    <target>/<group>/<method>/grid.json             a settings grid chosen on validation
    <target>/<group>/<method>/subsets.json          the K ablation's sources chosen on val
    <target>/<group>/<method>/search.json           a method's own search (ALS)
    <target>/<group>-summary.json                   a stage's headline numbers (DVC metric)
    timings.csv                                     wall times (compendium.timing_summary; not here)

**The seed-to-search rule**: ``searches.json`` lists the searches in ``search.search_seeds``'
order, and training seed s uses the search at position s mod n of that list
(:func:`search_for_seed`), whatever the seeds' values: training and the report both call it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from amcf import numerics
from amcf.io import copy_file, read_json, write_json, write_text
from amcf.train.records import write_history
from compendium import timings

if TYPE_CHECKING:
    import pandas as pd

    from amcf.search.result import SearchResult
    from amcf.train.fit import TrainResult

T = TypeVar("T")

METRIC_KEYS = (
    "selected_epoch",
    "val_acc",
    "test_acc",
    "best_test_acc",
    "final_test_acc",
    "epochs",
    "num_models",
    "model_epochs",
    "trainable_params",
)
SEARCHES = "searches.json"
SEARCH = "search.json"
SEARCH_SUMMARY = "search-summary.json"
_SEED_DIR = re.compile(r"seed(\d+)\Z")


# ---- the seed-to-search rule ---------------------------------------------------------------

def search_for_seed(searches: Sequence[T], seed: int) -> T:
    """The search (or its scheme) that training seed ``seed`` uses: position ``seed mod n`` in
    ``search.search_seeds``' order, the order ``searches.json`` keeps."""
    if not searches:
        raise ValueError("no searches recorded; run the search stage first")
    return searches[int(seed) % len(searches)]


# ---- paths ---------------------------------------------------------------------------------

def run_dir(results_dir: str | os.PathLike, target: str, group: str, method: str,
            seed: int) -> Path:
    """Where one run of ``method`` publishes (``group``: the stage's folder, "" for amcf@)."""
    return Path(results_dir) / target / group / method / f"seed{seed}"


def find_run(results_dir: str | os.PathLike, target: str, method: str, seed: int) -> Path:
    """The folder of one published run, in whichever group it lies; a clear error if absent."""
    root = Path(results_dir) / target
    grouped = sorted(root.glob(f"*/{method}/seed{seed}"))
    path = root / method / f"seed{seed}" if not grouped else grouped[0]
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist; run {method} on {target}, seed {seed}")
    return path


def method_dir(results_dir: str | os.PathLike, target: str, group: str, method: str) -> Path:
    """The folder of all of ``method``'s seeds (where grid.json, subsets.json lie)."""
    return Path(results_dir) / target / group / method


# ---- a training run: metrics.json, history.csv, test_predictions.csv -----------------------

def publish_files(out: Path, results_dir: Path, timings_dir: Path, result: TrainResult,
                  metrics: dict[str, Any], shared_by: int = 1) -> Path:
    """Write one published run: its history, its metrics (last: they mark completion), and
    its wall time into the timing record, keyed by the run's path under the results."""
    out.mkdir(parents=True, exist_ok=True)
    write_history(out / "history.csv", result.history, result.metrics["num_models"])
    write_json(out / "metrics.json", {**metrics, "numerics": numerics.name()})
    if result.timing:
        timings.write_record(timings_dir, out.relative_to(results_dir), out / "metrics.json",
                             result.timing, shared_by)
    return out


def publish_run(out: Path, results_dir: Path, timings_dir: Path, method: str, seed: int,
                result: TrainResult, extra: dict[str, Any] | None = None,
                shared_by: int = 1) -> Path:
    """Publish a trained run into ``out``: its test predictions, history and metrics."""
    out.mkdir(parents=True, exist_ok=True)
    src = result.out_dir / "test_predictions.csv"
    if src.exists():
        copy_file(src, out / src.name)
    clean = {k: v for k, v in result.metrics.items() if k != "identity"}
    return publish_files(out, results_dir, timings_dir, result,
                         {"method": method, "seed": seed, **clean, **(extra or {})}, shared_by)


def read_metrics(path: str | os.PathLike) -> dict[str, Any]:
    """One run's ``metrics.json``, checked for the keys every run writes."""
    path = Path(path)
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path} is not valid JSON ({err}); delete it and re-run the stage that writes it"
        ) from err
    missing = [k for k in METRIC_KEYS if k not in metrics]
    if missing:
        raise ValueError(
            f"{path} lacks {missing}: it was written by an older trainer; re-run that stage"
        )
    return metrics


def metrics_files(results_dir: str | os.PathLike, target: str = "*",
                  group: str | None = None) -> list[tuple[str, str, int, Path]]:
    """Every published run as (target, method, seed, metrics path), sorted by path.

    ``group`` None: runs of every group and of none; "" the runs outside any group (amcf@'s);
    a name: that stage group's runs only."""
    root = Path(results_dir)
    if group is None:
        found = [*root.glob(f"{target}/*/seed*/metrics.json"),
                 *root.glob(f"{target}/*/*/seed*/metrics.json")]
    elif group == "":
        found = list(root.glob(f"{target}/*/seed*/metrics.json"))
    else:
        found = list(root.glob(f"{target}/{group}/*/seed*/metrics.json"))
    out = []
    for path in sorted(found):
        match = _SEED_DIR.match(path.parent.name)
        if match:
            out.append((path.relative_to(root).parts[0], path.parent.parent.name,
                        int(match.group(1)), path))
    return out


def history_frame(run: str | os.PathLike) -> pd.DataFrame:
    """A run's ``history.csv`` as a data frame."""
    import pandas as pd

    return pd.read_csv(Path(run) / "history.csv")


def predictions_frame(run: str | os.PathLike) -> pd.DataFrame:
    """A run's ``test_predictions.csv`` as a data frame."""
    import pandas as pd

    return pd.read_csv(Path(run) / "test_predictions.csv")


def final_test_acc(metrics: Mapping[str, Any], run: Path) -> float:
    """The last epoch's test accuracy; a member published from a joint run leaves it null,
    and then it is the last row of the joint history's column for that member (NaN when
    there is no history)."""
    if metrics.get("final_test_acc") is not None:
        return float(metrics["final_test_acc"])
    member = metrics.get("history_member")
    column = "test_acc" if member is None else f"test_acc_m{member}"
    if not (run / "history.csv").is_file():
        return float("nan")
    frame = history_frame(run)
    return float(frame[column].iloc[-1]) if column in frame and len(frame) else float("nan")


# ---- searches ------------------------------------------------------------------------------

def write_search(out: str | os.PathLike, sources: Sequence[str], result: SearchResult) -> None:
    """One search's ``search.json`` (its result and every call) and ``search-summary.json``
    (the headline numbers, a DVC metric)."""
    out = Path(out)
    write_json(out / SEARCH, {"sources": list(sources), **result.to_dict()})
    write_json(out / SEARCH_SUMMARY, {
        "best_fitness": result.best_fitness, "calls": result.calls,
        "evaluations": result.evaluations,
        **{f"k_{s}": k for s, k in zip(sources, result.best, strict=True)}})


def search_dir(out: str | os.PathLike, seed: int) -> Path:
    """Where the search of search seed ``seed`` keeps its files."""
    return Path(out) / "searches" / f"seed{seed}"


def write_searches(out: str | os.PathLike, sources: Sequence[str],
                   rows: Sequence[Mapping[str, Any]]) -> None:
    """``searches.json``: one row per search, in ``search.search_seeds``' order (the order
    :func:`search_for_seed` reads); the first search's files are copied beside it."""
    out = Path(out)
    for name in (SEARCH, SEARCH_SUMMARY):
        copy_file(search_dir(out, rows[0]["seed"]) / name, out / name)
    write_json(out / SEARCHES, {"sources": list(sources), "searches": list(rows),
                                "numerics": numerics.name()})


def read_searches(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The searches of a ``searches.json`` (each with its calls, read from its own
    ``search.json`` beside) in the file's order, or a one-search ``search.json`` (a method's
    own search, or an older layout)."""
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    if "searches" not in data:
        return [{**data, "seed": data.get("settings", {}).get("seed", 0)}]
    searches = [dict(s) for s in data["searches"]]
    if not searches:
        raise ValueError(f"{path} lists no searches; re-run the search stage")
    for search in searches:
        own = search_dir(path.parent, search.get("seed", 0)) / SEARCH
        if "history" not in search and own.is_file():
            search["history"] = json.loads(own.read_text(encoding="utf-8"))["history"]
    return searches


def target_searches(results_dir: str | os.PathLike, target: str) -> list[dict[str, Any]]:
    """The AMLS searches of ``target`` (``searches.json``, or an older one-search
    ``search.json``), in search-seed order."""
    root = Path(results_dir) / target
    for name in (SEARCHES, SEARCH):
        if (root / name).is_file():
            return read_searches(root / name)
    raise FileNotFoundError(f"{root}/{SEARCHES} (or {SEARCH}) is missing; run the search "
                            f"stage of {target}")


def schemes_of(searches_json: str | os.PathLike) -> tuple[tuple[int, ...], ...]:
    """The schemes of ``searches.json`` in search-seed order (what ``Setting.schemes`` takes)."""
    path = Path(searches_json)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the search stage (dvc repro "
                                f"search@<target>) first")
    return tuple(tuple(row["best"]) for row in read_json(path)["searches"])


def write_method_search(method_folder: Path, payload: Mapping[str, Any]) -> Path:
    """A method's own search (ALS's genetic search) beside its seeds."""
    return write_json(method_folder / SEARCH, dict(payload))


# ---- choices made on validation ------------------------------------------------------------

def write_grid(method_folder: Path, payload: Mapping[str, Any]) -> Path:
    """``grid.json``: a settings grid's points, their validation accuracies, the choice."""
    return write_json(method_folder / "grid.json", dict(payload))


def write_subsets(method_folder: Path, payload: Mapping[str, Any]) -> Path:
    """``subsets.json``: the K ablation's candidate source subsets and the choice."""
    return write_json(method_folder / "subsets.json", dict(payload))


# ---- a stage group's headline numbers ------------------------------------------------------

def group_summary_path(results_dir: str | os.PathLike, target: str, group: str) -> Path:
    return Path(results_dir) / target / f"{group}-summary.json"


def write_group_summary(results_dir: str | os.PathLike, target: str, group: str,
                        summary: Mapping[str, Any]) -> Path:
    return write_json(group_summary_path(results_dir, target, group), dict(summary))


def read_group_summary(results_dir: str | os.PathLike, target: str,
                       group: str) -> dict[str, Any]:
    return read_json(group_summary_path(results_dir, target, group))


# ---- pretraining: a source model's metrics, history and layer table ------------------------

def publish_source(out: str | os.PathLike, name: str, dataset: str, result: TrainResult,
                   timings_dir: str | os.PathLike, draw: int = 0) -> dict[str, Any]:
    """One draw of a pretrained source: its ``history.csv`` and ``metrics.json`` in ``out``
    (:func:`source_draw_dir`), and its timing record (run ``sources/<name>/draws/draw<d>``).
    Returns the metrics (without the run's identity)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_history(out / "history.csv", result.history, 1)
    metrics = {k: v for k, v in result.metrics.items() if k != "identity"}
    write_json(out / "metrics.json", {"source": name, "draw": draw, "dataset": dataset,
                                      **metrics, "numerics": numerics.name()})
    if result.timing:
        timings.write_record(timings_dir, f"sources/{name}/draws/draw{draw}",
                             out / "metrics.json", result.timing)
    return metrics


def source_dir(results_dir: str | os.PathLike, source: str) -> Path:
    """Where ``pretrain@<source>`` publishes."""
    return Path(results_dir) / "sources" / source


def source_draw_dir(source_dir: str | os.PathLike, draw: int) -> Path:
    """Where draw ``draw`` of a source publishes, in its :func:`source_dir`."""
    return Path(source_dir) / "draws" / f"draw{draw}"


def write_source_draws(out: str | os.PathLike, source: str, dataset: str,
                       draws: Sequence[Mapping[str, Any]], seeds: Sequence[int]) -> Path:
    """``draws.json`` in a source's :func:`source_dir`: each draw's seed and accuracies (the
    stage's DVC metric)."""
    keep = ("selected_epoch", "val_acc", "test_acc", "final_test_acc")
    return write_json(Path(out) / "draws.json", {
        "source": source, "dataset": dataset,
        "draws": [{"draw": d, "seed": seed, **{k: m.get(k) for k in keep}}
                  for d, (m, seed) in enumerate(zip(draws, seeds, strict=True))]})


def write_layers(out: str | os.PathLike, source: str, arch: str,
                 rows: Sequence[Mapping[str, Any]]) -> Path:
    """A source's layer table (``layers.json`` in its :func:`source_dir`), which the
    paper's scheme figure reads."""
    return write_json(Path(out) / "layers.json", {"source": source, "arch": arch,
                                                  "layers": list(rows)})


def read_layers(out: str | os.PathLike) -> list[dict[str, Any]] | None:
    """The layer rows a pretrain stage wrote into ``out`` (None when it wrote none)."""
    path = Path(out) / "layers.json"
    return read_json(path)["layers"] if path.is_file() else None


# ---- a prepared dataset's committed summary ------------------------------------------------

def write_data_summary(out: str | os.PathLike, dataset: str, sizes: Mapping[str, Any],
                       card: str) -> None:
    """``splits.json`` (the split sizes, a DVC metric) and ``card.md`` of one dataset."""
    out = Path(out)
    write_json(out / "splits.json", {"dataset": dataset, **sizes})
    write_text(out / "card.md", card)
