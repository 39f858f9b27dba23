"""amcf: Adaptive Multi-source domain Collaborative Fine-tuning (Feng et al., PeerJ Computer
Science 2024), the method and nothing else.

K pretrained source models are fine-tuned together on one target: AMLS, a particle swarm,
chooses how many bottom layers of each stay frozen (:func:`run_amls`), the MC-loss
(:class:`MCLoss`) pulls their logits towards their mean, and their summed logits predict.
In short::

    import amcf
    sources = [amcf.SourceSpec(name="a", arch="resnet18", weights="hub"), ...]
    search = amcf.run_amls(sources, splits, amcf.SwarmSettings(), amcf.FitnessConfig())
    models = amcf.build_frozen(sources, search.best, splits)
    amcf.fit(models, splits, amcf.TrainConfig(), amcf.MCLoss(0.2))
    predicted = amcf.evaluate(models, splits.test)["predictions"]

The names below are imported on first use, so ``import amcf.numerics`` (the CPU numerical
policy) loads nothing else. The method is written up in docs/method.md; the compendium that
regenerates the paper with it is the sibling package ``compendium``.
"""

from amcf._exports import lazy

__version__ = "0.1.0"

_EXPORTS = {
    # data the trainer takes: three splits of a labelled image dataset
    "Splits": "amcf.datasets",
    "TensorImageDataset": "amcf.datasets",
    "BatchAugment": "amcf.datasets",
    # source models and the paper's layer convention
    "SourceSpec": "amcf.models.build",
    "build_model": "amcf.models.build",
    "build_frozen": "amcf.models.build",
    "save_checkpoint": "amcf.models.checkpoint",
    "freeze_bottom": "amcf.layers",
    "num_layers": "amcf.layers",
    "layer_table": "amcf.layers",
    # the MC-loss and what the trainer optimises
    "collaborative_loss": "amcf.loss",
    "fused_logits": "amcf.loss",
    "Objective": "amcf.objective",
    "MCLoss": "amcf.objective",
    # AMLS: the fitness of a scheme and the swarm that searches it
    "run_amls": "amcf.amls",
    "make_fitness": "amcf.amls",
    "SwarmSettings": "amcf.search.settings",
    "SearchResult": "amcf.search.result",
    # the trainer
    "TrainConfig": "amcf.train.config",
    "FitnessConfig": "amcf.train.config",
    "fit": "amcf.train.fit",
    "TrainResult": "amcf.train.fit",
    "evaluate": "amcf.train.evaluate",
    # amcf-select: the fused prediction over the sources chosen on validation
    "SubsetSelection": "amcf.source_selection",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy(__name__, _EXPORTS)
