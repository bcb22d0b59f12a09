"""Hydra configuration tree of rlzoo, shipped as package data (``pkg://rlzoo.conf``)."""
