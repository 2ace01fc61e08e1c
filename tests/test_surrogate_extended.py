"""The extended space (the paper's Fig. 3, T_th = 15 ms) end to end: a space that ships no
surrogate makes search and sweep say exactly what to run; with one fitted from an evaluation file,
search and sweep run on it."""

from __future__ import annotations

import json

import pytest

from nascsim.cli import main
from surrogate_fixtures import quick_options, ship_only, synthetic_evaluations, write_evaluations


def run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


HOW_TO = (
    "`nascsim supernet train --space extended --dropout 0.5 --data DATA --out sn-extended-dropout`, then "
    "`nascsim supernet evaluate --checkpoint sn-extended-dropout --data DATA --out evals-extended-dropout.parquet`, then "
    "`nascsim surrogate fit evals-extended-dropout.parquet --out surrogates --name extended-dropout`"
)


@pytest.mark.parametrize(
    "argv",
    [
        ["search", "--space", "extended", "--threshold", "15"],
        ["sweep", "--space", "extended", "--thresholds", "15", "--loss", "0", "--seeds", "1", "--jobs", "1"],
    ],
    ids=["search", "sweep"],
)
def test_without_an_extended_surrogate_search_and_sweep_say_what_to_run(tmp_path, capsys, monkeypatch, argv):
    ship_only(monkeypatch, tmp_path / "pkg", ("fbnet",))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code, out, err = run(argv + (["--out", str(work / "res")] if argv[0] == "sweep" else []), capsys)
    assert code == 2 and err.count("\n") == 1
    assert "no 'dropout' surrogate ships for the 'extended' space" in err
    assert HOW_TO in err and "--surrogate surrogates/extended-dropout.json" in err
    assert list(work.iterdir()) == []


def test_the_extended_space_runs_end_to_end_from_an_evaluation_file(tmp_path, capsys, monkeypatch):
    import nascsim.surrogate.fit as fit

    monkeypatch.setattr(fit, "FitOptions", lambda **kw: quick_options(**kw))
    frame, meta = synthetic_evaluations("extended", n_pairs=60, seed=5)
    evals = write_evaluations(frame, meta, tmp_path / "evals-extended-dropout.parquet")

    code, out, err = run(["surrogate", "fit", str(evals), "--out", str(tmp_path / "surrogates"), "--name", "extended-dropout", "--no-quality", "--quiet"], capsys)
    assert code == 0, err
    sur = tmp_path / "surrogates" / "extended-dropout.json"
    assert json.loads(sur.read_text())["space"] == "extended"

    code, out, err = run(["search", "--space", "extended", "--surrogate", str(sur), "--threshold", "15", "--loss", "0.2", "--steps", "300", "--json"], capsys)
    assert code == 0, err
    rec = json.loads(out)
    assert rec["space"] == "extended" and rec["surrogate"] == "evals-extended-dropout" and rec["steps"] == 300
    assert len(rec["arch"]) == 22 and 0 <= rec["split"] <= 22 and 0 < rec["accuracy"] <= 1

    res = tmp_path / "res"
    code, out, err = run(["sweep", "--space", "extended", "--surrogate", str(sur), "--thresholds", "15,20", "--loss", "0,0.2",
                          "--seeds", "2", "--steps", "100", "--methods", "nasc,random", "--jobs", "1", "--out", str(res), "--quiet",
                          "--no-report"], capsys)
    assert code == 0, err
    from nascsim.sweep.store import open_store

    rows = open_store(res)[1].read()
    assert rows.height == 2 * 2 * 2 * 2
    assert set(rows["space"]) == {"extended"} and set(rows["threshold_ms"]) == {15.0, 20.0}
