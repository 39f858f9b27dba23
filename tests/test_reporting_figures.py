import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest
from reporting_support import write_demo_results

from compendium.plots.curves import plot_per_class_errors, plot_training_curves
from compendium.plots.methods import plot_method_accuracies
from compendium.plots.search import plot_layer_scheme, plot_swarm
from compendium.report.collect import collect
from compendium.report.figures import plot_paired_differences


def _history():
    return pd.DataFrame({
        "epoch": [1, 2, 3, 4], "train_loss": [2.0, 1.0, 0.5, 0.4], "lr": 0.01, "seconds": 1.0,
        "val_acc": [0.5, 0.8, 0.8, 0.7], "test_acc": [0.4, 0.6, 0.9, 0.7],
        "val_acc_m0": [0.4, 0.7, 0.7, 0.6], "test_acc_m0": [0.3, 0.5, 0.8, 0.6],
    })


def test_training_curves_writes_pdf_and_png_and_marks_first_best_val_epoch(tmp_path):
    fig = plot_training_curves(_history(), tmp_path / "curves")
    assert (tmp_path / "curves.pdf").read_bytes().startswith(b"%PDF")
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.pdf", "curves.png"]
    acc_axis = fig.axes[1]
    vline = [line for line in acc_axis.lines if line.get_linestyle() == "--"][0]
    assert vline.get_xdata()[0] == 2  # val ties at epochs 2 and 3: the first, as the trainer
    fused_test = [line for line in acc_axis.lines if line.get_label() == "fused test"][0]
    assert np.allclose(fused_test.get_ydata(), [40, 60, 90, 70])


def test_training_curves_rejects_wrong_file():
    with pytest.raises(ValueError, match="lacks columns"):
        plot_training_curves(pd.DataFrame({"epoch": [1]}))


def test_per_class_errors_match_hand_count(tmp_path):
    # class 0: 1 of 4 wrong; class 1: 2 of 2 wrong; class 2: 0 of 3 wrong
    pred = pd.DataFrame({"index": range(9), "label": [0, 0, 0, 0, 1, 1, 2, 2, 2],
                         "prediction": [0, 0, 0, 2, 0, 2, 2, 2, 2]})
    pred.to_csv(tmp_path / "p.csv", index=False)
    fig = plot_per_class_errors(tmp_path / "p.csv", tmp_path / "errors")
    heights = [patch.get_height() for patch in fig.axes[0].patches]
    assert heights == pytest.approx([100.0, 25.0, 0.0])  # sorted by error
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["1", "0", "2"]
    matrix = fig.axes[1].images[0].get_array()
    assert np.allclose(matrix, [[0.75, 0, 0.25], [0.5, 0, 0.5], [0, 0, 1]])


def test_per_class_errors_skip_matrix_for_many_classes():
    labels = np.arange(40).repeat(2)
    fig = plot_per_class_errors(pd.DataFrame({"label": labels, "prediction": labels[::-1]}))
    assert len([ax for ax in fig.axes if ax.images]) == 0


def test_layer_scheme_greys_exactly_the_frozen_layers():
    tables = {"a": [(i, f"conv{i}", "m", 10 ** (i + 1)) for i in range(5)],
              "b": [{"index": i, "params": 100} for i in range(3)]}
    fig = plot_layer_scheme(tables, [2, 0])
    for ax, frozen, total in zip(fig.axes, [2, 0], [5, 3], strict=True):
        bars = ax.patches[:total]
        grey = [mcolors.same_color(b.get_facecolor(), "lightgrey") for b in bars]
        assert grey == [i < frozen for i in range(total)]
        assert len(ax.patches) == total + 1  # + the always-trained head
    assert fig.axes[0].patches[3].get_height() == pytest.approx(4.0)  # log10 of 10^4 params
    with pytest.raises(ValueError, match="freezes 6 layers of 'a'"):
        plot_layer_scheme(tables, [6, 0])
    with pytest.raises(ValueError, match="one table per source"):
        plot_layer_scheme(tables, [1])


def test_swarm_plots_each_particle_and_running_best():
    rows = []
    fitness = {0: [0.5, 0.7], 1: [0.6, 0.4]}
    for it in range(2):
        for p in range(2):
            rows.append({"iteration": it, "particle": p, "position": [it + p, 2.0 * p],
                         "velocity": [0, 0], "scheme": [it + p, 2 * p],
                         "fitness": fitness[p][it], "cached": it == 1 and p == 1,
                         "inertia": 1.4})
    fig = plot_swarm({"history": rows}, dim_names=["x", "y"])
    assert [ax.get_title() for ax in fig.axes] == ["x", "y", "fitness per scheme"]
    assert len(fig.axes[0].lines) == 2  # one line per particle
    assert np.allclose(fig.axes[1].lines[1].get_ydata(), [2.0, 2.0])
    best = fig.axes[2].lines[-1].get_ydata()
    assert np.allclose(best, [50, 60, 70, 70])  # call order: (0,0) (0,1) (1,0) (1,1)
    with pytest.raises(ValueError, match="dim_names"):
        plot_swarm({"history": rows}, dim_names=["x"])


def test_method_accuracies_rows_are_sorted_group_means(tmp_path):
    frame = collect(write_demo_results(tmp_path / "r", targets=["digits"], seeds=2))
    fig = plot_method_accuracies(frame, tmp_path / "acc")
    assert (tmp_path / "acc.png").read_bytes().startswith(b"\x89PNG")
    ax = fig.axes[0]
    means = frame.groupby("method")["test_acc"].mean().sort_values()
    labels = frame.groupby("method")["label"].first()
    assert [t.get_text() for t in ax.get_yticklabels()] == labels[means.index].tolist()
    amcf_row = means.index.get_loc("amcf")
    xs = {}
    for container in ax.containers:
        x, y = container.lines[0].get_data()
        xs.update(dict(zip(y, x, strict=True)))
    assert xs[amcf_row] == pytest.approx(100 * means["amcf"])
    assert ax.get_xlabel() and ax.get_ylabel()
    with pytest.raises(ValueError, match="no column"):
        plot_method_accuracies(frame, column="flops")


def test_paired_differences_one_row_per_comparison_with_intervals(tmp_path):
    table = pd.DataFrame({
        "scope": ["t1", "t2", "pooled", "t1", "t2", "pooled"],
        "method_a": ["amcf"] * 6, "method_b": ["ensemble"] * 3 + ["amcf-lam0"] * 3,
        "mean_diff": [0.02, 0.04, 0.03, -0.01, 0.0, -0.005],
        "ci_low": [0.01, 0.02, 0.02, -0.03, -0.02, -0.02],
        "ci_high": [0.03, 0.06, 0.04, 0.01, 0.02, 0.01],
        "verdict": ["higher", "higher", "higher"] + ["no clear difference"] * 3,
    })
    fig = plot_paired_differences(table, tmp_path / "diff", labels={"amcf": "AMCF"})
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks == ["AMCF\nminus ensemble", "AMCF\nminus amcf-lam0"]
    assert any(line.get_xdata()[0] == 0 for line in ax.get_lines())  # the zero line
    pooled = [c for c in ax.collections if c.get_offsets().shape[0]
              and abs(c.get_offsets()[0][1] - 0.35) < 1e-9]
    assert pooled and pooled[0].get_offsets()[0][0] == pytest.approx(3.0)  # in points
    assert "percentage points" in ax.get_xlabel() and ax.get_ylabel()
    with pytest.raises(ValueError, match="lacks columns"):
        plot_paired_differences(table.drop(columns="ci_low"))
