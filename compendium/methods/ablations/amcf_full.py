"""AMCF with the full fine-tuning scheme (every k = 0) instead of the searched one."""

from compendium.methods.entry import Method

METHODS = (Method("amcf-full", "AMCF, full fine-tuning scheme", "ablation", order=110,
                  run="amcf-full", decisive=("amcf-full",)),)
