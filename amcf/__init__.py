"""amcf: Adaptive Multi-source domain Collaborative Fine-tuning.

The package holds what the compendium's notebooks repeat: models and their layer
convention (:mod:`amcf.layers`, :mod:`amcf.models`), the MC-loss (:mod:`amcf.loss`),
the AMLS particle swarm (:mod:`amcf.search`), the trainer (:mod:`amcf.train`), the data
layer (:mod:`amcf.data`), the baselines (:mod:`amcf.baselines`), the method table
(:mod:`amcf.methods`), reporting (:mod:`amcf.reporting`) and wall-clock timings
(:mod:`amcf.timings`). The method itself is written up in docs/method.md.
"""

__version__ = "0.1.0"
