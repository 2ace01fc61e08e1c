"""The sweep grid: value syntax (ranges, lists, single values), axes, cell order, seed pairing."""

from decimal import Context, Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nascsim.config import SearchConfig
from nascsim.sweep.grid import (
    CELL_ORDER,
    MAX_RANGE_VALUES,
    MAX_RUNS,
    MAX_RUNS_FORCED,
    Grid,
    check_size,
    parse_range,
    parse_values,
)


def test_threshold_range_includes_the_stop_on_the_grid():
    assert parse_values("threshold_ms", "10:40:5") == (10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0)


def test_loss_range_has_no_float_drift():
    assert parse_values("loss", "0:0.5:0.1") == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
    assert parse_values("loss", "0.1:0.3:0.1")[-1] == 0.3  # 0.1 + 0.1 + 0.1 != 0.3 in floats


def test_range_stops_at_the_last_value_below_an_off_grid_stop():
    assert parse_values("threshold_ms", "10:22:5") == (10.0, 15.0, 20.0)


def test_lists_mix_ranges_and_single_values_and_drop_duplicates():
    assert parse_values("threshold_ms", "10:20:5,20,35") == (10.0, 15.0, 20.0, 35.0)
    assert parse_values("threshold_ms", "30") == (30.0,)
    assert parse_values("method", "nasc,hwnas") == ("nasc", "hwnas")


def test_typed_fields_parse_their_own_values():
    assert parse_values("steps", "none,100") == (None, 100)
    assert parse_values("lam", "2:6:2") == (2, 4, 6)
    assert parse_values("Delta_max", "inf,5") == (float("inf"), 5.0)
    assert parse_values("split_search", "true,false") == (True, False)
    assert parse_values("loss_set", "0/0.5,0:0.2:0.1") == ((0.0, 0.5), (0.0, 0.1, 0.2))


@pytest.mark.parametrize(
    "text, message",
    [
        ("10:5:5", "'10:5:5'"),
        ("a:b", "'a:b'"),
        ("1:5:0", "positive step"),
        ("1:5:-1", "positive step"),
        ("1:2:3:4", "malformed range"),
        ("x", "'x'"),
        ("10,,20", "empty item"),
        ("nan", "'nan'"),
    ],
)
def test_malformed_values_raise_a_value_error_naming_them(text, message):
    with pytest.raises(ValueError, match=message):
        parse_values("threshold_ms", text)


def test_integer_fields_refuse_fractions():
    with pytest.raises(ValueError, match="integer"):
        parse_values("lam", "2.5")


@pytest.mark.parametrize(
    "field, text, message",
    [
        ("threshold_ms", "0", r"\(0, 1000000\].*got 0.0"),
        ("threshold_ms", "-5", r"\(0, 1000000\].*got -5.0"),
        ("threshold_ms", "inf", "got inf"),
        ("steps", "9223372036854775808", "9223372036854775808"),
        ("steps", "1e30", "got 1000000000000000000000000000000"),
        ("lam", "1099511627776", "1099511627776"),
        ("delta0", "inf", "delta0"),
        ("Delta_max", "0.5", "Delta_max"),
        ("alpha", "0.5", "alpha"),
        ("bits", "inf", "bits"),
        ("bandwidth", "inf", "bandwidth"),
        ("eps_lat", "nan", "'nan'"),
        ("eps_loss", "inf", "eps_loss"),
        ("seed", "-1", "seed"),
        ("fixed_split", "23", "fixed_split"),
        ("loss", "1", r"\[0, 1\)"),
        ("loss", "-0.1", r"\[0, 1\)"),
        ("method", "nasc,foo", "'foo'"),
        ("head", "jetson", "'jetson'"),
        ("tail", "tpu", "'tpu'"),
        ("space", "darts", "'darts'"),
        ("loss_set", "0/1.5", "1.5"),
    ],
)
def test_grid_refuses_values_outside_a_fields_domain(field, text, message):
    with pytest.raises(ValueError, match=message):
        Grid.build(**{field: text})


def test_unknown_option_is_refused():
    with pytest.raises(ValueError, match="'colour'"):
        parse_values("colour", "red")


# -- fuzzing the range parser ---------------------------------------------------------------------

decimals = st.decimals(min_value=Decimal("-1000"), max_value=Decimal("1000"), places=3, allow_nan=False,
                       allow_infinity=False)
steps = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("100"), places=3)


@settings(max_examples=300, deadline=None)
@given(start=decimals, step=steps, n=st.integers(0, 200), frac=st.decimals(min_value=0, max_value=Decimal("0.999"), places=3))
def test_range_values_are_exact_decimal_steps_up_to_the_stop(start, step, n, frac):
    stop = start + n * step + frac * step  # frac = 0: stop on the grid
    values = parse_range(f"{start}:{stop}:{step}")
    assert len(values) == n + 1
    assert values == [start + i * step for i in range(n + 1)]
    floats = parse_values("bits", f"{start}:{stop}:{step}") if start > 0 else None
    if floats is not None:
        assert list(floats) == list(dict.fromkeys(float(v) for v in values))


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789.:,-e+ abinf", max_size=20))
def test_range_parser_returns_numbers_or_raises_value_error(text):
    try:
        values = parse_values("threshold_ms", text)
    except ValueError:
        return
    assert len(values) >= 1
    assert all(isinstance(v, float) for v in values)


wide = st.builds(lambda m, e: Decimal(m).scaleb(e), st.integers(-10**12, 10**12), st.integers(-320, 320))


@settings(max_examples=300, deadline=None)
@given(start=wide, stop=wide, step=wide)
def test_any_range_stays_within_its_ends_or_is_refused(start, stop, step):
    """Exact decimal steps over numbers of any magnitude: every value lies in [start, stop], the
    values rise by exactly ``step``, and a range too long or out of range is a ValueError."""
    try:
        values = parse_range(f"{start}:{stop}:{step}")
    except ValueError:
        return
    assert 1 <= len(values) <= MAX_RANGE_VALUES
    with localcontext(Context(prec=2000)):  # the test's own sums, exactly
        assert all(start <= v <= stop for v in values)
        assert all(b - a == step for a, b in zip(values, values[1:]))
        assert values[-1] + step > stop


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(set(CELL_ORDER))),
       text=st.one_of(st.text(max_size=30), st.lists(st.one_of(st.integers(), st.floats(), st.text(max_size=5),
                                                                st.none(), st.booleans()), max_size=5),
                      st.integers(), st.floats()))
def test_any_field_value_parses_to_values_within_the_rule_or_raises_value_error(name, text):
    """Whatever is given for whatever field: values that pass their rule, or one ValueError."""
    from nascsim.validate import check_field

    try:
        values = parse_values(name, text)
        for v in values:
            check_field(name, v)
    except ValueError:
        return
    assert 1 <= len(values) <= MAX_RANGE_VALUES


@pytest.mark.parametrize("text, message", [
    ("0:1e999999999:1", "out of range"),
    ("1:1e300:1", "more than 100,000"),
    ("1e-301", "out of range"),
    ("1." + "1" * 50, "digits"),
    ("0:1:0.00000001", "100,000,001 values"),
])
def test_huge_or_too_fine_numbers_are_refused_naming_them(text, message):
    with pytest.raises(ValueError, match=message):
        parse_values("threshold_ms", text)


def test_a_field_takes_at_most_a_bounded_number_of_values():
    with pytest.raises(ValueError, match="more than 100,000"):
        parse_values("seed", range(10**9))
    with pytest.raises(ValueError, match="more than 100,000"):
        parse_values("threshold_ms", ",".join(["1:60000:1"] * 2))


def test_grid_size_is_stated_and_refused_above_the_limits():
    check_size(MAX_RUNS)
    with pytest.raises(ValueError, match=r"100,001 runs \(7 threshold_ms\).*--force"):
        check_size(MAX_RUNS + 1, "7 threshold_ms")
    check_size(MAX_RUNS + 1, force=True)
    with pytest.raises(ValueError, match="10,000,000,000 runs.*split it"):
        check_size(10**10, force=True)
    with pytest.raises(ValueError, match=r"about 10\^20 runs"):
        check_size(10**20, force=True)
    assert MAX_RUNS_FORCED < 10**10


# -- grid cells -----------------------------------------------------------------------------------

def test_grid_size_is_the_product_of_its_axes_and_cells_are_unique():
    g = Grid.build(threshold_ms="10:40:5", loss="0:0.5:0.1", method="nasc,hwnas,hwnas-dropout", seed=range(3))
    cells = list(g.cells())
    assert len(g) == len(cells) == 7 * 6 * 3 * 3
    assert len({c.content_hash() for c in cells}) == len(cells)
    assert g.axes == ("seed", "threshold_ms", "loss", "method")


def test_cell_order_does_not_depend_on_how_values_are_given():
    a = Grid.build(method="nasc,hwnas", threshold_ms="10,20", seed=range(2))
    b = Grid.build(seed=[0, 1], threshold_ms="10:20:10", method="nasc,hwnas")
    assert list(a.cells()) == list(b.cells())
    assert CELL_ORDER[0] == "seed" and CELL_ORDER[-1] == "method"


def test_every_cell_holds_each_method_with_the_same_seed():
    g = Grid.build(threshold_ms="10,30", loss="0,0.3", method="nasc,hwnas,hwnas-dropout", seed=range(4),
                   eps_lat="0.5,1")
    by_cell: dict = {}
    for c in g.cells():
        key = c.with_(method="nasc").content_hash()
        by_cell.setdefault(key, []).append(c)
    assert len(by_cell) == 2 * 2 * 4 * 2
    for runs in by_cell.values():
        assert sorted(r.method for r in runs) == ["hwnas", "hwnas-dropout", "nasc"]
        assert len({r.seed for r in runs}) == 1


def test_any_search_option_is_an_axis():
    g = Grid.build(threshold_ms="30", loss="0.2", eps_lat="0.5,1,2", lam="2,4")
    configs = list(g.cells())
    assert len(configs) == 6
    assert {(c.eps_lat, c.lam) for c in configs} == {(e, l) for e in (0.5, 1.0, 2.0) for l in (2, 4)}
    assert all(c.threshold_ms == 30.0 and c.loss == 0.2 for c in configs)


def test_fields_not_given_keep_the_search_defaults():
    (c,) = Grid.build().cells()
    assert c == SearchConfig()


def test_grid_round_trips_through_its_toml_form():
    g = Grid.build(threshold_ms="10:20:5", steps="none,50", loss_set="0/0.5,0:0.5:0.1", Delta_max="inf")
    assert Grid.from_toml_dict(g.to_toml_dict()) == g
