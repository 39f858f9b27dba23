"""One module per stage kind of ``dvc.yaml`` (prepare, pretrain, search, amcf, baselines,
ablations, report): each stage's notebook calls its module's ``*_stage`` function, which
writes every output the stage declares. The training stages never import the reporting
(:mod:`compendium.report`); ``tests/test_layering.py`` checks it."""
