"""Every result of the engine before the speed work (commit 4968e2b, frozen in
tests/fixtures/engine_v1/) is reproduced bit for bit: θ, Δ, γ, the number of updates, the choice,
and the method record's arch, split and accuracy."""

import numpy as np
import pytest
from engine_v1 import frozen_outputs, frozen_sets

from nascsim.config import SearchConfig
from nascsim.methods import run_search

CASES = frozen_outputs()["cases"]


def _id(case):
    return f"{case['name']}-seed{case['config']['seed']}"


@pytest.fixture(scope="module")
def sets():
    return frozen_sets()


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_search_reproduces_the_frozen_engine_exactly(case, sets):
    cfg = SearchConfig.from_dict(case["config"])
    rec = run_search(cfg, sets[case["surrogates"]])
    want = case["record"]
    assert rec["arch_idx"] == want["arch_idx"]
    assert rec["split"] == want["split"]
    assert rec["accuracy"] == want["accuracy"] and rec["l_sc"] == want["l_sc"] and rec["T_ms"] == want["T_ms"]
    engine = case["engine"]
    if "theta" in engine:
        assert rec["Delta"] == engine["Delta"]
        assert rec["n_updates"] == engine["n_updates"]
