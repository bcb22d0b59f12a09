"""rlzoo test suite (fast tier by default; `pytest -m slow` for the slow tier)."""
