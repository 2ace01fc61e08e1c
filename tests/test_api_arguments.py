"""The arguments of ``nascsim.query``, ``search`` and ``sweep``: one name per meaning across the
three, a misspelt or foreign keyword refused with the name it was probably meant to be, and an
integer argument that takes integers only (no bools, no floats, not even 2.0, no text)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nascsim
from nascsim._args import integers, numbers_array, suggestion

ARCH = ["k3_e6"] * 8 + ["skip"] * 14


@pytest.fixture(scope="module")
def sur():
    """The shipped dropout surrogate (in the checkout; fitting a stand-in would take longer than
    these tests)."""
    return nascsim.default_surrogates("fbnet")["dropout"]


def query(**kw):
    return nascsim.query(ARCH, **{"split": 8, "surrogate": None, **kw})


def search(**kw):
    return nascsim.search("nasc", **{"steps": 20, **kw})


def sweep(**kw):
    base = {"threshold_ms": [30], "loss": [0.0], "method": ["nasc"], "steps": 20, "jobs": 1}
    return nascsim.sweep(**{**base, **({} if "seed" in kw else {"seeds": 1}), **kw})


CALLS = {"query": query, "search": search, "sweep": sweep}


# -- names -------------------------------------------------------------------------------------

def test_search_and_sweep_take_the_same_names_and_query_names_the_loss_rate_p():
    """``sweep`` takes ``search``'s arguments (each one value or an axis); ``query``'s loss rate
    is ``p`` because its result's ``loss`` is the surrogate's loss in nats."""
    s = inspect.signature(nascsim.search).parameters
    w = inspect.signature(nascsim.sweep).parameters
    q = inspect.signature(nascsim.query).parameters
    assert list(s)[:4] == ["method", "threshold_ms", "loss", "seed"]
    assert list(w)[:4] == ["threshold_ms", "loss", "method", "seeds"]  # the positional order of old
    shared = ["surrogate", "surrogate_dropout", "surrogate_no_dropout", "tables"]  # space: a sweep axis
    assert all(n in s and n in w for n in shared)
    assert "p" in q and "loss" not in q and {"space", "surrogate", "tables", "head", "tail", "bits"} <= set(q)


@pytest.mark.parametrize("function, wrong, meant", [
    ("query", "loss", "p"),
    ("query", "ps", "p"),
    ("query", "splits", "split"),
    ("query", "surogate", "surrogate"),
    ("search", "seeds", "seed"),
    ("search", "p", "loss"),
    ("search", "losses", "loss"),
    ("search", "thresholds", "threshold_ms"),
    ("search", "threshold", "threshold_ms"),
    ("search", "methods", "method"),
    ("search", "lamb", "lam"),
    ("search", "step", "steps"),
    ("search", "splits", "fixed_split"),
    ("sweep", "los", "loss"),
    ("sweep", "p", "loss"),
    ("sweep", "loss_rates", "loss"),
    ("sweep", "threshold", "threshold_ms"),
    ("sweep", "workers", "jobs"),
    ("sweep", "n_jobs", "jobs"),
    ("sweep", "eps_lan", "eps_lat"),
])
def test_a_misspelt_keyword_is_refused_naming_it_and_the_meant_name(function, wrong, meant):
    with pytest.raises(TypeError) as exc:
        CALLS[function](**{wrong: 1})
    assert str(exc.value) == f"{function}() got an unexpected keyword argument {wrong!r}; did you mean {meant!r}?"


@pytest.mark.parametrize("function", list(CALLS))
def test_a_keyword_close_to_nothing_is_refused_without_a_guess(function):
    with pytest.raises(TypeError) as exc:
        CALLS[function](colour="red")
    assert str(exc.value) == f"{function}() got an unexpected keyword argument 'colour'"


@pytest.mark.parametrize("name, old, value", [("threshold_ms", "thresholds", [25]), ("loss", "losses", [0.2]),
                                              ("method", "methods", ["hwnas"])])
def test_sweep_refuses_a_value_given_under_its_name_and_its_older_name(name, old, value):
    with pytest.raises(TypeError, match=f"'{name}' and its older name '{old}'"):
        nascsim.sweep(**{name: value, old: value})


def test_sweep_refuses_a_seed_count_and_seeds_together():
    with pytest.raises(TypeError, match="'seeds'.*'seed'"):
        nascsim.sweep(seeds=2, seed=[0, 1])


def test_sweep_runs_one_loss_rate_when_given_search_s_loss(sur):
    """The issue: ``sweep(loss=0.2)`` ran all six loss rates of the default grid."""
    runs = nascsim.sweep(loss=0.2, threshold_ms=30, method="nasc", seed=[3, 5], steps=40, surrogate=sur, jobs=1)
    assert runs.select("loss", "threshold_ms", "method").unique().rows() == [(0.2, 30.0, "nasc")]
    assert sorted(runs["seed"]) == [3, 5]


def test_sweep_s_older_names_give_the_same_runs_as_its_names(sur):
    new = nascsim.sweep(threshold_ms=[25, 30], loss=[0.0], method=["nasc"], seed=[0, 1], steps=40, surrogate=sur, jobs=1)
    old = nascsim.sweep(thresholds=[25, 30], losses=[0.0], methods=["nasc"], seeds=2, steps=40, surrogate=sur, jobs=1)
    by_position = nascsim.sweep([25, 30], [0.0], ["nasc"], 2, steps=40, surrogate=sur, jobs=1)
    assert new["config_hash"].to_list() == old["config_hash"].to_list() == by_position["config_hash"].to_list()


def test_sweep_s_signature_shows_the_default_grid():
    params = inspect.signature(nascsim.sweep).parameters
    assert [repr(params[n].default) for n in ("threshold_ms", "loss", "method", "seeds")] == [
        "'10:40:5'", "'0:0.5:0.1'", "('nasc', 'hwnas', 'hwnas-dropout')", "25"]


# -- integer values ----------------------------------------------------------------------------

NOT_INTEGERS = [True, False, 1.7, 2.0, np.float64(3.0), "3", None, np.bool_(True)]
INTEGER_ARGUMENTS = [
    ("query", "split", {}),
    ("query", "classes", {}),
    ("search", "seed", {}),
    ("search", "steps", {}),
    ("search", "lam", {}),
    ("search", "minibatch", {}),
    ("search", "fixed_split", {"split_search": False}),
    ("sweep", "seeds", {}),
    ("sweep", "seed", {}),
    ("sweep", "steps", {}),
    ("sweep", "lam", {}),
    ("sweep", "jobs", {}),
]


def refused(function: str, name: str, value) -> bool:
    """Whether ``value`` is outside the domain of the integer argument: None is the default of
    some, and a sweep axis also takes text in the CLI's syntax (``seed="0,1,2"``)."""
    if value is None and name in ("classes", "steps", "fixed_split", "jobs"):
        return False
    return not (isinstance(value, str) and function == "sweep" and name not in ("seeds", "jobs"))


@pytest.mark.parametrize("function, name, extra, value", [
    pytest.param(f, n, e, v, id=f"{f}-{n}={v!r}") for f, n, e in INTEGER_ARGUMENTS for v in NOT_INTEGERS if refused(f, n, v)])
def test_an_integer_argument_refuses_what_is_not_an_integer_naming_it(function, name, extra, value):
    with pytest.raises(ValueError, match=rf"^{name}\b.*integer"):
        CALLS[function](**{**extra, name: value})


@pytest.mark.parametrize("function, name, value", [
    ("query", "split", [8, 9.5]),
    ("query", "split", [8, True]),
    ("query", "split", np.array([8.0, 9.0])),
    ("sweep", "seeds", [0, 1.5]),
    ("sweep", "seeds", [0, True]),
    ("sweep", "steps", [20, 40.0]),
])
def test_an_integer_argument_refuses_a_sequence_with_one_non_integer(function, name, value):
    with pytest.raises(ValueError, match=rf"^{name}\b.*integer"):
        CALLS[function](**{name: value})


@pytest.mark.parametrize("function, name, value", [
    ("query", "p", True), ("query", "p", "0.2"), ("query", "p", [0.1, None]), ("query", "bits", True),
    ("search", "threshold_ms", "30"), ("search", "loss", True), ("search", "eps_lat", "1"),
    ("sweep", "loss", [0.0, True]), ("sweep", "threshold_ms", [30, None]),
])
def test_a_number_argument_refuses_bools_text_and_none(function, name, value):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        CALLS[function](**{name: value})


def test_numpy_integers_are_integers(sur):
    r = nascsim.query(ARCH, split=np.int64(8), p=np.float32(0.5), classes=np.int16(10), surrogate=None)
    assert r == nascsim.query(ARCH, split=8, p=0.5, classes=10, surrogate=None)
    frame = nascsim.query([ARCH, ARCH], split=np.array([4, 8], dtype=np.uint8), surrogate=None)
    assert frame["split"].to_list() == [4, 8]
    a = nascsim.search("nasc", 30, 0.0, np.int64(4), steps=np.int32(40), surrogate=sur)
    b = nascsim.search("nasc", 30, 0.0, 4, steps=40, surrogate=sur)
    assert (a["seed"], a["steps"], a["arch"]) == (4, 40, b["arch"])
    runs = nascsim.sweep([30], [0.0], ["nasc"], np.int64(2), steps=np.int64(40), jobs=np.int8(1), surrogate=sur)
    assert sorted(runs["seed"]) == [0, 1]


def test_search_records_the_value_it_was_given_never_a_rounded_one(sur):
    rec = nascsim.search("nasc", 30, 0.25, 7, steps=40, surrogate=sur)
    assert (rec["threshold_ms"], rec["loss"], rec["seed"]) == (30.0, 0.25, 7)


# -- the checks as properties --------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True) | st.booleans() | st.text(max_size=3))
def test_no_float_bool_or_text_passes_as_a_seed_or_a_split(value):
    with pytest.raises(ValueError, match="^seed must be an integer"):
        nascsim.search("nasc", seed=value)
    with pytest.raises(ValueError, match="^split must be an integer"):
        nascsim.query(ARCH, split=value, surrogate=None)
    with pytest.raises(ValueError, match="^seeds must be a count"):
        nascsim.sweep(seeds=value)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-2**63, 2**63 - 1) | st.builds(np.int32, st.integers(-2**31, 2**31 - 1)), max_size=5))
def test_integers_keeps_every_integer_exactly(values):
    assert integers("x", values).tolist() == [int(v) for v in values]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-10, 10), min_size=1, max_size=5), st.integers(0, 4),
       st.sampled_from([1.5, 2.0, True, "2", None]))
def test_one_non_integer_anywhere_in_a_sequence_is_named(values, at, bad):
    values = values[:at] + [bad] + values[at:]
    with pytest.raises(ValueError) as exc:
        integers("x", values)
    assert str(exc.value).endswith(f"got {bad!r}")
    if not isinstance(bad, bool) and bad is not None and not isinstance(bad, str):
        assert numbers_array("x", values).tolist() == [float(v) for v in values]


@pytest.mark.parametrize("name, known, meant", [("los", ["loss", "lam"], "loss"), ("seeds", ["seed"], "seed"),
                                                ("seeds", ["jobs"], None), ("xyz", ["loss"], None)])
def test_a_suggestion_is_a_listed_near_miss_or_a_close_spelling_of_a_known_name(name, known, meant):
    assert suggestion(name, known) == meant
