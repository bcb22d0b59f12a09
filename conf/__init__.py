"""Hydra configuration tree of rlzoo, shipped as package data (``pkg://rlzoo.conf``).

Hydra imports this package before it reads a config from it; importing it stores every algorithm's schema
defaults in Hydra's ConfigStore (``schema/algo/<name>``), which ``algo/<name>.yaml`` extends.
"""

from rlzoo.config import register_configs

register_configs()
