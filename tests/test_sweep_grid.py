"""The sweep grid: value syntax (ranges, lists, single values), axes, cell order, seed pairing."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nascsim.config import SearchConfig
from nascsim.sweep.grid import CELL_ORDER, Grid, parse_range, parse_values


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
        ("threshold_ms", "0", "positive"),
        ("threshold_ms", "-5", "positive"),
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
