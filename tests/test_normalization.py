"""Running statistics of the on-policy normalisers: the merge of batches equals the statistics of all samples, and a
single env's step (a batch of one row) gives exactly the numbers of the general merge."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlzoo.normalization import RunningMeanStd


def general_merge(stats: RunningMeanStd, batch: np.ndarray) -> None:
    """Chan et al.'s parallel update with numpy's batch mean and variance, whatever the batch size."""
    b_mean, b_var, b_count = batch.mean(axis=0), batch.var(axis=0), batch.shape[0]
    delta = b_mean - stats.mean
    total = stats.count + b_count
    stats.mean = stats.mean + delta * b_count / total
    stats.var = (stats.var * stats.count + b_var * b_count + delta**2 * stats.count * b_count / total) / total
    stats.count = total


@given(sizes=st.lists(st.integers(1, 5), min_size=1, max_size=30), seed=st.integers(0, 2**16))
@settings(max_examples=40, deadline=None)
def test_a_stream_of_batches_gives_the_mean_and_variance_of_all_samples(sizes, seed):
    rng = np.random.default_rng(seed)
    batches = [rng.normal(3.0, 2.0, size=(n, 4)) for n in sizes]
    stats = RunningMeanStd((4,))
    for batch in batches:
        stats.update(batch)
    samples = np.concatenate(batches)
    # the samples pooled with the prior: mean 0 and variance 1 with the weight of 1e-4 samples
    n, c, mean = len(samples), 1e-4, samples.mean(axis=0)
    np.testing.assert_allclose(stats.mean, n * mean / (n + c), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(stats.var, (c + n * samples.var(axis=0) + c * n * mean**2 / (n + c)) / (n + c),
                               rtol=1e-9, atol=1e-12)  # fmt: skip
    assert stats.count == pytest.approx(n + c, rel=1e-15)


def test_one_row_at_a_time_gives_the_general_merge_s_numbers_exactly():
    rng = np.random.default_rng(0)
    fast, general = RunningMeanStd((17,)), RunningMeanStd((17,))
    for _ in range(500):
        row = rng.normal(5.0, 3.0, size=(1, 17))
        fast.update(row)
        general_merge(general, row)
    assert np.array_equal(fast.mean, general.mean) and np.array_equal(fast.var, general.var)
    scalar_fast, scalar_general = RunningMeanStd(()), RunningMeanStd(())  # the reward scaler's, one env
    for value in rng.normal(size=200):
        scalar_fast.update(np.array([value]))
        general_merge(scalar_general, np.array([value]))
    assert scalar_fast.mean == scalar_general.mean and scalar_fast.var == scalar_general.var
