"""The paper profile: the AdaFilter suite used by Feng et al. (2024), fetched from the
official URLs on a GPU machine with internet, read as files with the 224-px recipe."""
