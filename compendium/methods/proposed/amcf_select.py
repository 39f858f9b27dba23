"""AMCF (the headline result) and amcf-select, both published by one training of ``amcf@``
(:func:`compendium.stages.amcf.run_amcf_and_select`): amcf-select is AMCF's fused prediction
over the sources chosen on validation after every epoch (:mod:`amcf.source_selection`)."""

from compendium.methods.entry import Method

METHODS = (
    Method("amcf-select", "AMCF, sources selected on validation", "amcf", order=150,
           run="amcf", decisive=("amcf-select",), searched=True),
    Method("amcf", "AMCF", "amcf", order=160, run="amcf", decisive=("amcf",),
           searched=True),
)
