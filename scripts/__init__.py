"""CI helpers run from a checkout (no part of the packages): the rehearsal, the results
comparison of the cluster check and of chaos."""
