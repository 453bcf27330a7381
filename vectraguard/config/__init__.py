"""Configuration: reading YAML layers, validating them, resolving profiles."""
