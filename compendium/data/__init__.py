"""The compendium's data: the dataset registry, fetching, splits, preparing and cards.

- :func:`compendium.data.commands.fetch` / ``amcf data fetch``: raw inputs into ``data/``;
- :func:`compendium.stages.prepare.prepare_stage` / ``amcf data prepare`` / ``prepare@``: decoded
  tensors or file lists, split manifest and card into ``build/data/<name>/``, and the dataset's
  committed summary;
- :func:`compendium.data.prepared.load_splits`: a prepared dataset as :class:`amcf.datasets.Splits`
  for the trainer.

Import the module that defines a name: this package's ``__init__`` imports nothing, so the
``amcf`` command's error type (:mod:`compendium.data.errors`) loads no torch.
"""
