"""AMCF with a random scheme: each k drawn uniformly from the search's range, per seed."""

from compendium.methods.entry import Method

METHODS = (Method("amcf-random", "AMCF, random scheme", "ablation", order=120,
                  run="amcf-random", decisive=("amcf-random",)),)
