"""AMCF with other weights of the collaborative term: ``amcf-lam<lambda>`` for each lambda of
``ablations.lams`` (0 removes the term: the K models then train independently on the same
batches, with the searched scheme)."""

from compendium.methods.entry import Method

METHODS = (Method("amcf-lam{}", "AMCF, lambda = {}", "ablation", order=100, run="amcf-lam",
                  decisive=("amcf-lam0",), searched=True),)
