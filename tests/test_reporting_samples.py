"""The sample sheet of a dataset card: every group of classes shows, no empty frames."""

from __future__ import annotations

import torch

from compendium.plots.samples import _short_label, _spread, plot_samples


class _Images(torch.utils.data.Dataset):
    def __init__(self, labels: list[int]):
        self.labels = torch.tensor(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return torch.full((1, 8, 8), float(self.labels[i])), self.labels[i]


def test_classes_are_spread_over_the_whole_list():
    assert _spread(list(range(40)), 5) == [0, 10, 20, 29, 39]
    assert _spread([3, 4], 5) == [3, 4]


def test_long_names_are_wrapped_at_the_slash_and_shortened():
    assert _short_label("Japanese_(katakana)/character02") == "Japanese_(katak…\ncharacter02"
    assert _short_label("7") == "7"


def test_a_three_shot_set_gets_three_columns_and_every_row_a_label():
    labels = [c for c in range(20) for _ in range(3)]
    fig = plot_samples(_Images(labels), [f"group{c // 10}/char{c}" for c in range(20)],
                       max_classes=4)
    axes = fig.get_axes()
    assert len(axes) == 4 * 3
    rows = [ax.get_ylabel() for ax in axes if ax.get_ylabel()]
    assert rows == ["group0\nchar0", "group0\nchar6", "group1\nchar13", "group1\nchar19"]
    assert all(ax.images for ax in axes)  # no frame without an image
