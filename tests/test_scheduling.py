"""How blocks of rows are spread over the worker threads (results never depend on it;
the balance of the threads does)."""

from __future__ import annotations

import numpy as np
import pytest

from fastlstm._runner import schedule_blocks


@pytest.mark.parametrize("n_workers", [1, 2, 3, 8])
def test_every_block_runs_once_and_the_load_is_balanced(n_workers):
    rng = np.random.default_rng(n_workers)
    for n_blocks in [0, 1, n_workers - 1, n_workers, n_workers + 1, 5 * n_workers + 3]:
        costs = rng.integers(0, 1000, max(n_blocks, 0))
        worker_ptr, worker_blocks = schedule_blocks(costs, n_workers)
        assert worker_ptr.dtype == worker_blocks.dtype == np.int64
        assert worker_ptr.shape == (n_workers + 1,) and worker_ptr[0] == 0 and worker_ptr[-1] == len(costs)
        assert np.all(np.diff(worker_ptr) >= 0)
        assert sorted(worker_blocks.tolist()) == list(range(len(costs)))
        loads = [costs[worker_blocks[worker_ptr[w] : worker_ptr[w + 1]]].sum() for w in range(n_workers)]
        if len(costs) <= n_workers:
            assert np.all(np.diff(worker_ptr) <= 1)  # nobody waits on a second block
        if len(costs):
            # greedy longest-first bound: no worker exceeds the average load by more than one block
            assert max(loads) <= costs.sum() / n_workers + costs.max()


def test_the_two_costliest_blocks_go_to_different_workers():
    worker_ptr, worker_blocks = schedule_blocks(np.array([5, 90, 7, 80]), 2)
    owners = {int(b): w for w in range(2) for b in worker_blocks[worker_ptr[w] : worker_ptr[w + 1]]}
    assert owners[1] != owners[3]
    assert sorted(owners.values()).count(owners[1]) == 1  # the 90 runs alone; 80 + 7 + 5 = 92 beside it
