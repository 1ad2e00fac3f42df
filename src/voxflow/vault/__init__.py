"""The vault: secrets encrypted at rest with envelope encryption (see `crypto`)."""
