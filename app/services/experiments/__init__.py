"""A/B experiments: definitions, deterministic assignment, results and offline replay."""
