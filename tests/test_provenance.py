"""Every output that shows an accuracy names its surrogates, the data their supernets were trained
on, and -- while their model cards say so -- that they are provisional: the sweep's printed summary
and summary.txt (also when redrawn by ``nascsim report``), ``nascsim search``, and the API's
results. (Figures: tests/test_plots.py; bench.md: tests/test_regression_bench.py.)"""

import copy
import doctest
import json

import polars as pl
import pytest
from click.testing import CliRunner
from surrogate_fixtures import make_stand_in_surrogate

import nascsim
from nascsim.cli import cli
from nascsim.surrogate import Surrogate, save_surrogate
from nascsim.surrogate import provenance as prov


def noted(s: Surrogate, note: str | None = None, **card) -> Surrogate:
    """A copy of ``s`` whose model card carries ``note`` and ``card``'s fields."""
    doc = copy.deepcopy(s.doc)
    if note:
        doc["card"]["note"] = note
    doc["card"].update(card)
    return Surrogate(doc)


@pytest.fixture(scope="module")
def pair():
    """The stand-in pair, the dropout one marked provisional by its note, the other trained at a
    proxy setting on a CPU."""
    drop = noted(make_stand_in_surrogate("fbnet", 0), "PROVISIONAL: a synthetic stand-in")
    plain = make_stand_in_surrogate("fbnet", 0, split_dropout_train=0.0)
    plain = noted(plain, supernet={**plain.card.get("supernet", {}), "train_device": "cpu",
                                   "recipe": {"width": 0.25, "resolution": 16}})
    return drop, plain


@pytest.fixture(scope="module")
def files(pair, tmp_path_factory):
    d = tmp_path_factory.mktemp("sur")
    return [str(save_surrogate(s, d / f"{name}.json")) for s, name in zip(pair, ("drop", "plain"))]


def expected(pair) -> str:
    drop, plain = pair
    return (f"accuracy surrogates: {drop.id} (synthetic, full width, PROVISIONAL); "
            f"{plain.id} (synthetic, proxy width 0.25 at 16 px, CPU supernet); see `nascsim surrogate show`")


def test_the_module_examples_hold():
    assert doctest.testmod(prov, optionflags=doctest.ELLIPSIS).failed == 0


def test_the_card_decides_what_the_line_says(pair):
    drop, plain = pair
    assert prov.is_provisional(drop) and not prov.is_provisional(plain)
    assert not prov.is_provisional(noted(drop, provisional=False))  # an explicit flag wins over the note
    assert prov.is_provisional(noted(plain, provisional=True))
    assert prov.setting(drop) == "full width" and prov.setting(plain) == "proxy width 0.25 at 16 px"
    assert prov.device(plain) == "CPU" and prov.device(drop) is None  # the synthetic record names no device
    assert prov.provenance_line([plain, plain]).startswith("accuracy surrogate: ")  # one surrogate, named once
    assert "see `nascsim surrogate show`" not in prov.provenance_line([plain])

    class Bare:  # a predictor without a model card
        id, dataset = "mine", "CIFAR-100"

    assert prov.provenance_line([Bare()]) == "accuracy surrogate: mine (CIFAR-100, no model card)"


def test_the_shipped_surrogates_name_their_proxy_setting_and_the_archived_ones_stay_provisional():
    from nascsim.surrogate import default_surrogates, load_surrogate

    line = prov.provenance_line(default_surrogates().values())
    assert line.startswith("accuracy surrogates: fbnet-cifar10-w0.25-16px-drop00-53ep (CIFAR-10")
    assert line.count("proxy width 0.25 at 16 px, CPU supernet") == 2 and "PROVISIONAL" not in line
    old = [load_surrogate(n) for n in ("fbnet-cifar10-drop50-12ep", "fbnet-cifar10-drop00-11ep")]
    line = prov.provenance_line(old)
    assert line.count("PROVISIONAL") == 2 and "full width, GPU supernet" in line


# -- the API -----------------------------------------------------------------------------------------

def test_query_search_and_sweep_results_carry_the_line(pair):
    drop, plain = pair
    arch = ["k3_e6"] * 8 + ["skip"] * 14
    r = nascsim.query(arch, split=8, p=0.2, surrogate=drop)
    assert r["provenance"] == prov.provenance_line([drop]) and "PROVISIONAL" in r["provenance"]
    frame = nascsim.query([arch] * 2, split=[8, 14], surrogate=plain)
    assert frame["provenance"].to_list() == [prov.provenance_line([plain])] * 2
    assert "provenance" not in nascsim.query(arch, split=8, surrogate=None)  # no accuracy, no surrogate
    rec = nascsim.search("hwnas-dropout", 30, 0.2, steps=100, surrogate_dropout=drop, surrogate_no_dropout=plain)
    assert rec["provenance"] == expected(pair)  # searched by one, judged by the other
    runs = nascsim.sweep([30], [0.2], ["nasc", "hwnas"], seeds=1, steps=100, jobs=1,
                         surrogate_dropout=drop, surrogate_no_dropout=plain)
    by = dict(runs.select("method", "provenance").iter_rows())
    assert by == {"nasc": prov.provenance_line([drop]), "hwnas": prov.provenance_line([plain])}


# -- the command line ----------------------------------------------------------------------------

def test_the_sweep_summary_and_its_redraw_name_the_surrogates(files, pair, tmp_path):
    out = tmp_path / "out"
    args = ["sweep", "--thresholds", "20,30", "--loss", "0,0.3", "--seeds", "2", "--steps", "150", "--jobs", "1",
            "--surrogate-dropout", files[0], "--surrogate-no-dropout", files[1], "--out", str(out)]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == expected(pair)
    assert (out / "summary.txt").read_text().splitlines()[0] == expected(pair)
    (out / "summary.txt").unlink()
    r = CliRunner().invoke(cli, ["report", str(out), "--quiet"])  # the cards read back from sweep.toml
    assert r.exit_code == 0, r.output
    assert (out / "summary.txt").read_text().splitlines()[0] == expected(pair)


def test_the_search_prints_the_line(files, pair):
    args = ["search", "--steps", "100", "--surrogate", files[0]]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert f"  {prov.provenance_line([pair[0]])}" in r.stdout.splitlines()
    r = CliRunner().invoke(cli, [*args, "--json"])
    assert json.loads(r.stdout)["provenance"] == prov.provenance_line([pair[0]])
