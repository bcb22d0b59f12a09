"""Benchmarks run with: pytest benchmarks/ --benchmark-only (add --benchmark-autosave to keep JSON, then
--benchmark-compare to compare a later run with it). Torch runs one thread, as ``python -m rlzoo.train`` does."""

import pytest
import torch

import rlzoo  # noqa: F401  (registers envs)


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
