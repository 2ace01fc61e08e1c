"""``nascsim surrogate fit | report | show``: fit accuracy surrogates from supernet evaluations,
measure their held-out quality, print their model cards."""

from __future__ import annotations

import json
from pathlib import Path

import click

from nascsim.cli.options import MAX_CLASSES, count, number

def _region(ctx, param, value: str) -> tuple[int, int]:
    try:
        lo, hi = (int(x) for x in value.split("-"))
    except ValueError:
        raise click.BadParameter(f"expected LO-HI split points, got {value!r}", ctx=ctx, param=param) from None
    if not 0 <= lo <= hi <= 22:
        raise click.BadParameter(f"band {value!r} is not within 0..22", ctx=ctx, param=param)
    return lo, hi


@click.group()
def surrogate() -> None:
    """Fit, report and inspect accuracy surrogates (expected loss, accuracy, l_SC of eq. 4)."""


def _progress(quiet: bool):
    """Progress lines on stderr (stdout stays clean for --json), or None with --quiet."""
    if quiet:
        return None
    return lambda message: click.echo(message, err=True)


@surrogate.command()
@click.argument("evals", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", default=".", show_default=True, type=click.Path(file_okay=False), help="Folder for NAME.json (and NAME.report.png, NAME.report.json with --quality); nothing is written elsewhere.")
@click.option("--name", default=None, help="File name stem, a safe name: letters, digits, '.', '_', '-' (default: the surrogate id).")
@click.option("--id", "sid", default=None, help="Surrogate id, a safe name (default: the supernet record's id, else the file name).")
@click.option("--space", default=None, help="Override the search space of the supernet record.")
@click.option("--dataset", default=None, help="Override the dataset of the supernet record.")
@click.option("--classes", default=None, type=count(2, MAX_CLASSES), help="Override the number of classes.")
@click.option("--split-dropout-train", default=None, type=number(0, 1), help="Override the split dropout used in supernet training.")
@click.option("--seed", default=0, show_default=True, type=count(0, 2**32 - 1), help="Seed of the boosting and of the held-out split.")
@click.option("--quality/--no-quality", default=True, show_default=True, help="Measure held-out quality first and put it in the model card.")
@click.option("--region", default="8-14", show_default=True, callback=_region, help="Split points held out by the region-out design.")
@click.option("--monotone/--no-monotone", default=True, show_default=True, help="Fit loss non-decreasing and accuracy non-increasing in p (--no-monotone: ablation).")
@click.option("--p-model", default="paired", show_default=True, type=click.Choice(["paired", "joint"]), help="paired: level of each pair-batch + effect of p on the deviations; joint: one ensemble on the raw rows.")
@click.option("--note", default=None, help="Free text stored in the model card (e.g. provenance caveats).")
@click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
def fit(evals, out_dir, name, sid, space, dataset, classes, split_dropout_train, seed, quality, region, monotone, p_model, note, quiet):
    """Fit a surrogate from an evaluation parquet EVALS (hyperparameters by grouped CV).

    The input schema is in docs/surrogate.md. Trees are fitted on the "main"
    rows; "lowvar" rows are the report's test targets; "noise" rows feed the noise model only.
    """
    from nascsim.surrogate.effect import p_effect_line
    from nascsim.surrogate.evals import load_evaluations
    from nascsim.surrogate.fit import FitOptions, fit_surrogate
    from nascsim.surrogate.model import save_surrogate
    from nascsim.surrogate.report import evaluate, plot, public_json, table, write_json
    from nascsim.surrogate.validate import check_name

    if name is not None:
        check_name(name, "--name")
    if sid is not None:
        check_name(sid, "--id")
    ev = load_evaluations(evals, id=sid, space=space, dataset=dataset, classes=classes, split_dropout_train=split_dropout_train)
    stem = check_name(name or ev.id, "file name stem")
    out = Path(out_dir)
    targets = [out / f"{stem}.json"] + ([out / f"{stem}.report.png", out / f"{stem}.report.json"] if quality else [])
    for t in targets:  # a safe stem cannot leave --out; checked all the same
        if t.resolve().parent != out.resolve():
            raise ValueError(f"refusing to write {str(t)!r} outside --out {out_dir!r}")
    progress = _progress(quiet)
    opts = FitOptions(seed=seed, monotone_p=monotone, p_model=p_model)
    result = None
    if quality:
        result = evaluate(ev, opts, region=region, seed=seed, keep_predictions=True, progress=progress)
    s = fit_surrogate(ev, options=opts, quality=public_json(result) if result else None, progress=progress)
    if note:
        s.card["note"] = note
    path = save_surrogate(s, targets[0])
    click.echo(f"wrote {path} ({s.id}, {s.dataset}, {s.space}, split dropout {s.split_dropout_train:g}; fit {s.card['fit_seconds']:.1f} s)")
    if result is not None:
        plot(result, targets[1])
        write_json(public_json(result), targets[2])
        click.echo(table(result))
    click.echo(p_effect_line(s.card["p_effect"], "the fitted surrogate"))


def _options_from_card(s) -> object:
    """The FitOptions recorded in a surrogate's card, checked (a card is data from a file)."""
    from nascsim.surrogate.features import FEATURE_GROUPS
    from nascsim.surrogate.fit import FitOptions
    from nascsim.surrogate.validate import is_int, is_number

    o = s.card.get("model", {}).get("options") if isinstance(s.card.get("model"), dict) else None
    where = f"surrogate {s.id!r}: card.model.options"
    if not isinstance(o, dict):
        raise ValueError(f"{where} is missing; refit with `nascsim surrogate fit`")
    try:
        groups = tuple(o["groups"])
        grid = tuple((int(a), int(b)) for a, b in o["grid"])
        ok = (
            all(g in FEATURE_GROUPS and g != "base" for g in groups)
            and grid and all(is_int(a) and is_int(b) and 2 <= a <= 4096 and 1 <= b <= 10**6 for a, b in o["grid"])
            and is_number(o["learning_rate"]) and 0 < o["learning_rate"] <= 1
            and is_int(o["max_iter"]) and 1 <= o["max_iter"] <= 10_000
            and is_number(o["l2_regularization"]) and 0 <= o["l2_regularization"] < 1e6
            and is_int(o["folds"]) and 2 <= o["folds"] <= 100 and is_int(o["seed"])
            and o["loss_set"] and all(is_number(p) and 0 <= p < 1 for p in o["loss_set"])
            and isinstance(o.get("monotone_p", True), bool)
            and o.get("p_model", "paired") in ("paired", "joint")
        )
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{where} are not valid fit options ({json.dumps(o)[:120]})")
    return FitOptions(groups=groups, grid=grid, learning_rate=float(o["learning_rate"]), max_iter=o["max_iter"],
                      l2_regularization=float(o["l2_regularization"]), folds=o["folds"], seed=o["seed"],
                      loss_set=tuple(float(p) for p in o["loss_set"]), monotone_p=o.get("monotone_p", True),
                      p_model=o.get("p_model", "paired"))


def _report_targets(path: str | None) -> list[tuple[str, object, object, object]]:
    """(label, Evaluations, FitOptions, Surrogate or None) for a parquet, a surrogate JSON or the
    shipped defaults."""
    from nascsim._data import shipped_path
    from nascsim.surrogate.evals import load_evaluations
    from nascsim.surrogate.fit import FitOptions
    from nascsim.surrogate.model import DEFAULT_NAMES, load_surrogate
    from nascsim.surrogate.validate import check_name

    def from_surrogate(p: Path):
        s = load_surrogate(p)
        source = check_name(s.card.get("source"), f"{p}: card.source (the evaluation file next to it)")
        src = p.parent / source
        if not src.is_file():
            raise FileNotFoundError(f"source evaluations {str(src)!r} of surrogate {s.id!r} not found next to it")
        opts = _options_from_card(s)
        ev = load_evaluations(src, id=s.id, space=s.space, dataset=s.dataset, classes=s.classes, split_dropout_train=s.split_dropout_train)
        return ev, opts, s

    if path is None:
        folder = shipped_path("surrogate")
        return [(n, *from_surrogate(folder / f"fbnet-{n}.json")) for n in DEFAULT_NAMES]
    p = Path(path)
    if p.suffix == ".json":
        return [(p.stem, *from_surrogate(p))]
    return [(p.stem, load_evaluations(p), FitOptions(), None)]


@surrogate.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON: per target {random, region_out, noise_ceiling_tau, n_train, n_test}, and _p_effect.")
@click.option("--out", "out_dir", default="surrogate-report", show_default=True, type=click.Path(file_okay=False), help="Folder for the predicted-vs-measured PNGs.")
@click.option("--seed", default=0, show_default=True, type=count(0, 2**32 - 1), help="Seed of the random held-out split.")
@click.option("--region", default="8-14", show_default=True, callback=_region, help="Split points held out by the region-out design.")
@click.option("--ablation", is_flag=True, help="Also compare feature groups (one fit per variant; slow).")
@click.option("--monotone/--no-monotone", default=None, help="Override the monotone-in-p fit (default: as the surrogate was fitted; monotone for a parquet).")
@click.option("--p-model", default=None, type=click.Choice(["paired", "joint"]), help="Override the p-model (default: as the surrogate was fitted; paired for a parquet).")
@click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
@click.option("--against", "against", default=None, type=click.Path(dir_okay=False),
              help="Score the surrogate(s) of PATH as fitted (no refit) against this evaluation parquet's low-noise "
                   "rows (else its first main batches): e.g. an older surrogate against a newer supernet's data.")
def report(path, as_json, out_dir, seed, region, ablation, monotone, p_model, quiet, against):
    """Held-out quality of surrogates fitted on PATH (an evaluation parquet, or a surrogate JSON
    whose source parquet lies next to it; default: the shipped defaults), and the predicted
    accuracy drop from p = 0 to p = 0.5. With --against: the fitted surrogate(s) scored against
    another evaluation file, nothing refitted."""
    import dataclasses

    from nascsim.surrogate.effect import p_effect
    from nascsim.surrogate.report import against_table, evaluate, feature_ablation, plot, public_json, score_against, table

    if against is not None:
        from nascsim.surrogate.evals import load_evaluations
        from nascsim.surrogate.model import default_surrogates, load_surrogate

        if path is not None and not str(path).endswith(".json") and Path(path).exists():
            raise click.UsageError(f"--against scores fitted surrogates: PATH must be a surrogate JSON, not {path!r}")
        ev = load_evaluations(against)
        surrogates = default_surrogates(ev.space.name) if path is None else {Path(path).stem: load_surrogate(path)}
        results = {label: score_against(s, ev) for label, s in surrogates.items()}
        if as_json:
            click.echo(strict_json(next(iter(results.values())) if len(results) == 1 else results, indent=1))
        else:
            click.echo("\n\n".join(against_table(r) for r in results.values()))
        return
    progress = _progress(quiet)
    targets = _report_targets(path)  # every file is read and checked before any work
    results = {}
    for label, ev, opts, s in targets:
        opts = dataclasses.replace(opts, seed=seed, monotone_p=opts.monotone_p if monotone is None else monotone,
                                   p_model=opts.p_model if p_model is None else p_model)
        r = evaluate(ev, opts, region=region, seed=seed, keep_predictions=True, progress=progress)
        if s is not None:
            r["_p_effect"]["file"] = p_effect(s, seed=seed)
        png = plot(r, Path(out_dir) / f"{label}.report.png")
        pub = public_json(r)
        if ablation:
            pub["_ablation"] = feature_ablation(ev, opts, seed=seed, progress=progress)
        results[label] = pub
        if not as_json:
            click.echo(table(r))
            if ablation:
                click.echo("feature ablation (random split): variant, then tau / R2 for loss, acc, lsc")
                for v, m in pub["_ablation"].items():
                    click.echo(f"  {v:22s} " + "  ".join(f"{t}: {m[t]['kendall_tau']:+.3f} / {m[t]['r2']:+.3f}" for t in ("loss", "acc", "lsc")))
            click.echo(f"plot: {png}\n")
    if as_json:
        click.echo(strict_json(next(iter(results.values())) if len(results) == 1 else results, indent=1))


@surrogate.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the raw surrogate document(s) instead of the model card.")
def show(path, as_json):
    """Print the model card of a surrogate file (default: the shipped defaults): data, supernet,
    model, quality, effect of p, noise. The file is validated completely first."""
    from nascsim.surrogate.model import default_surrogates, load_surrogate
    from nascsim.surrogate.report import model_card

    from nascsim.limits import printable_lines

    surrogates = default_surrogates() if path is None else {None: load_surrogate(path)}
    if as_json:
        docs = {n: s.doc for n, s in surrogates.items()}
        click.echo(strict_json(docs[None] if path is not None else docs, indent=1))
        return
    # a card is text from a file: no control character of it reaches the terminal
    click.echo(printable_lines("\n\n".join(model_card(s) for s in surrogates.values())))


def strict_json(obj, **kw) -> str:
    """JSON text without the bare ``NaN`` / ``Infinity`` Python writes (not JSON): non-finite
    numbers of a card become null; control characters are escaped by ``json.dumps``."""
    import math

    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x

    return json.dumps(clean(obj), allow_nan=False, **kw)
