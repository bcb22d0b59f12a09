"""Freed heap memory handed back to the operating system (glibc ``malloc_trim``)."""

from __future__ import annotations

import os
import sys

import pytest
import torch

from rlzoo.host_memory import PASS_MIN_TOKENS, release_after_pass, release_free_memory


def resident_bytes() -> int:
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc/self/statm: Linux only")
def test_release_free_memory_returns_freed_heap_pages_to_the_system():
    big = torch.ones(24 * 2**18)  # a freed 24 MiB block raises glibc's mmap threshold: smaller blocks go to the heap
    del big
    blocks = [torch.ones(2**18) for _ in range(256)]  # 256 blocks of 1 MiB
    last = blocks[-1]
    del blocks  # all freed but the last, which keeps the heap from shrinking at its top by itself
    before = resident_bytes()
    assert release_free_memory()
    assert resident_bytes() < before - 128 * 2**20, (before, resident_bytes())
    assert last.sum() == 2**18


def test_only_a_large_pass_is_followed_by_a_trim(monkeypatch):
    calls = []
    monkeypatch.setattr("rlzoo.host_memory._malloc_trim", lambda: calls.append)
    assert not release_after_pass(PASS_MIN_TOKENS - 1, "cpu") and calls == []
    assert not release_after_pass(PASS_MIN_TOKENS, "cuda") and calls == []  # a GPU pass: not the host's heap
    assert release_after_pass(PASS_MIN_TOKENS, "cpu") and calls == [0]
