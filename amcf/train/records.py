"""Per-epoch history rows, model selection, and the CSV files a run leaves behind."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from typing import Any

import torch

from amcf.io import write_text


def history_columns(num_models: int) -> list[str]:
    """The columns of history.csv. A row in memory also holds its epoch's wall-clock
    ``seconds``, which history.csv leaves out so that a rerun writes the same bytes; the
    seconds go to the run's timing.json instead (see :func:`timing`)."""
    members = [f"{split}_acc_m{j}" for split in ("val", "test") for j in range(num_models)]
    return ["epoch", "train_loss", "lr", "val_acc", "test_acc", *members]


def timing(history: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The run's wall time and per-epoch seconds (empty when the rows carry no seconds)."""
    seconds = [r["seconds"] for r in history if r.get("seconds") is not None]
    if not history or len(seconds) != len(history):
        return {}
    return {"wall_time_s": sum(seconds), "epoch_seconds": seconds}


def make_row(epoch: int, train_loss: float, lr: float, val: tuple[float, list[float]],
             test: tuple[float, list[float]] | None, seconds: float) -> dict[str, Any]:
    row: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss, "lr": lr,
                           "val_acc": val[0], "test_acc": test[0] if test else None}
    for j, acc in enumerate(val[1]):
        row[f"val_acc_m{j}"] = acc
    for j in range(len(val[1])):
        row[f"test_acc_m{j}"] = test[1][j] if test else None
    row["seconds"] = seconds
    return row


def best_index(values: Sequence[float]) -> int:
    """Index of the largest value; the first one on ties (the earliest epoch wins)."""
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def _max_or_none(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def summarise(history: Sequence[dict[str, Any]], num_models: int) -> dict[str, Any]:
    """Model selection on the fused validation accuracy, and the accuracies it reports.

    ``test_acc`` is read at the selected epoch; ``best_test_acc`` is the maximum over epochs
    (the paper's way of reporting, kept for comparison); each member is selected on its own
    validation accuracy.
    """
    if not history:
        raise ValueError("no epochs in the history: nothing to select from")
    sel = best_index([r["val_acc"] for r in history])
    members = []
    for j in range(num_models):
        own = best_index([r[f"val_acc_m{j}"] for r in history])
        members.append({
            "selected_epoch": history[own]["epoch"],
            "val_acc": history[own][f"val_acc_m{j}"],
            "test_acc": history[own][f"test_acc_m{j}"],
            "best_test_acc": _max_or_none([r[f"test_acc_m{j}"] for r in history]),
        })
    return {
        "selected_epoch": history[sel]["epoch"],
        "val_acc": history[sel]["val_acc"],
        "test_acc": history[sel]["test_acc"],
        "best_test_acc": _max_or_none([r["test_acc"] for r in history]),
        "final_test_acc": history[-1]["test_acc"],
        "members": members,
    }


def write_history(path: str | os.PathLike, history: Sequence[dict[str, Any]],
                  num_models: int) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=history_columns(num_models), lineterminator="\n",
                            extrasaction="ignore")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    write_text(path, buf.getvalue())


def read_history(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a history.csv with numbers parsed back (empty cells -> None)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    parsed = []
    for row in rows:
        out: dict[str, Any] = {}
        for k, v in row.items():
            out[k] = None if v == "" else (int(v) if k == "epoch" else float(v))
        parsed.append(out)
    return parsed


def write_predictions(path: str | os.PathLike, predictions: torch.Tensor,
                      labels: torch.Tensor) -> None:
    lines = ["index,label,prediction"]
    lines += [f"{i},{y},{p}" for i, (y, p) in
              enumerate(zip(labels.tolist(), predictions.tolist(), strict=True))]
    write_text(path, "\n".join(lines) + "\n")
