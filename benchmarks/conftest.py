"""Benchmarks run with: pytest benchmarks/ --benchmark-only (add --benchmark-autosave to keep JSON)."""

import rlzoo  # noqa: F401  (registers envs)
