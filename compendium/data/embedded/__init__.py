"""The embedded profile: small real datasets that reach any machine through PyPI, the mirror
or an OS package, decoded to 28x28 grey (see :mod:`compendium.data.images`)."""
