"""AMCF on fewer sources: for each k < K, ``amcf-k<k>`` trains on the k sources chosen on
validation on its first seed (every k-subset trains there, with the searched scheme
restricted to it: 2^K - 2 runs, 4 extra for K = 3), recorded in ``amcf-k<k>/subsets.json``."""

from compendium.methods.entry import Method

METHODS = (Method("amcf-k{}", "AMCF, K = {}", "ablation", order=130, run="amcf-k",
                  searched=True),)
