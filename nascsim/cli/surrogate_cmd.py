"""``nascsim surrogate fit | report | show``: fit accuracy surrogates from supernet evaluations,
measure their held-out quality, print their model cards."""

from __future__ import annotations

import json
from pathlib import Path

import click


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


@surrogate.command()
@click.argument("evals", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", default=".", show_default=True, type=click.Path(file_okay=False), help="Folder for NAME.json (and NAME.report.png, NAME.report.json with --quality).")
@click.option("--name", default=None, help="File name stem (default: the surrogate id).")
@click.option("--id", "sid", default=None, help="Surrogate id (default: the supernet record's id, else the file name).")
@click.option("--space", default=None, help="Override the search space of the supernet record.")
@click.option("--dataset", default=None, help="Override the dataset of the supernet record.")
@click.option("--classes", default=None, type=int, help="Override the number of classes.")
@click.option("--split-dropout-train", default=None, type=float, help="Override the split dropout used in supernet training.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the boosting and of the held-out split.")
@click.option("--quality/--no-quality", default=True, show_default=True, help="Measure held-out quality first and put it in the model card.")
@click.option("--region", default="8-14", show_default=True, callback=_region, help="Split points held out by the region-out design.")
@click.option("--note", default=None, help="Free text stored in the model card (e.g. provenance caveats).")
def fit(evals, out_dir, name, sid, space, dataset, classes, split_dropout_train, seed, quality, region, note):
    """Fit a surrogate from an evaluation parquet EVALS (hyperparameters by grouped CV)."""
    from nascsim.surrogate.evals import load_evaluations
    from nascsim.surrogate.fit import FitOptions, fit_surrogate
    from nascsim.surrogate.model import save_surrogate
    from nascsim.surrogate.report import evaluate, plot, public_json, table, write_json

    ev = load_evaluations(evals, id=sid, space=space, dataset=dataset, classes=classes, split_dropout_train=split_dropout_train)
    opts = FitOptions(seed=seed)
    result = None
    if quality:
        result = evaluate(ev, opts, region=region, seed=seed, keep_predictions=True)
    s = fit_surrogate(ev, options=opts, quality=public_json(result) if result else None)
    if note:
        s.card["note"] = note
    out = Path(out_dir)
    stem = name or s.id
    path = save_surrogate(s, out / f"{stem}.json")
    click.echo(f"wrote {path} ({s.id}, {s.dataset}, {s.space}, split dropout {s.split_dropout_train:g}; fit {s.card['fit_seconds']:.1f} s)")
    if result is not None:
        plot(result, out / f"{stem}.report.png")
        write_json(public_json(result), out / f"{stem}.report.json")
        click.echo(table(result))


def _report_targets(path: str | None) -> list[tuple[str, object, object]]:
    """(label, Evaluations, FitOptions) for a parquet, a surrogate JSON or the shipped defaults."""
    from nascsim._data import shipped_path
    from nascsim.surrogate.evals import load_evaluations
    from nascsim.surrogate.fit import FitOptions
    from nascsim.surrogate.model import DEFAULT_NAMES, load_surrogate

    def from_surrogate(p: Path):
        s = load_surrogate(p)
        src = p.parent / s.card["source"]
        if not src.is_file():
            raise FileNotFoundError(f"source evaluations {str(src)!r} of surrogate {s.id!r} not found next to it")
        o = s.card["model"]["options"]
        opts = FitOptions(
            groups=tuple(o["groups"]), grid=tuple(tuple(g) for g in o["grid"]), learning_rate=o["learning_rate"],
            max_iter=o["max_iter"], l2_regularization=o["l2_regularization"], folds=o["folds"], seed=o["seed"],
            loss_set=tuple(o["loss_set"]),
        )
        ev = load_evaluations(src, id=s.id, space=s.space, dataset=s.dataset, classes=s.classes, split_dropout_train=s.split_dropout_train)
        return ev, opts

    if path is None:
        folder = shipped_path("surrogate")
        return [(n, *from_surrogate(folder / f"fbnet-{n}.json")) for n in DEFAULT_NAMES]
    p = Path(path)
    if p.suffix == ".json":
        return [(p.stem, *from_surrogate(p))]
    return [(p.stem, load_evaluations(p), FitOptions())]


@surrogate.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON: per target {random, region_out, noise_ceiling_tau, n_train, n_test}.")
@click.option("--out", "out_dir", default="surrogate-report", show_default=True, type=click.Path(file_okay=False), help="Folder for the predicted-vs-measured PNGs.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the random held-out split.")
@click.option("--region", default="8-14", show_default=True, callback=_region, help="Split points held out by the region-out design.")
@click.option("--ablation", is_flag=True, help="Also compare feature groups (one fit per variant; slow).")
def report(path, as_json, out_dir, seed, region, ablation):
    """Held-out quality of surrogates fitted on PATH (an evaluation parquet, or a surrogate JSON
    whose source parquet lies next to it; default: the shipped defaults)."""
    import dataclasses

    from nascsim.surrogate.report import evaluate, feature_ablation, plot, public_json, table

    results = {}
    for label, ev, opts in _report_targets(path):
        opts = dataclasses.replace(opts, seed=seed)
        r = evaluate(ev, opts, region=region, seed=seed, keep_predictions=True)
        png = plot(r, Path(out_dir) / f"{label}.report.png")
        pub = public_json(r)
        if ablation:
            pub["_ablation"] = feature_ablation(ev, opts, seed=seed)
        results[label] = pub
        if not as_json:
            click.echo(table(r))
            if ablation:
                click.echo("feature ablation (random split): variant, then tau / R2 for loss, acc, lsc")
                for v, m in pub["_ablation"].items():
                    click.echo(f"  {v:22s} " + "  ".join(f"{t}: {m[t]['kendall_tau']:+.3f} / {m[t]['r2']:+.3f}" for t in ("loss", "acc", "lsc")))
            click.echo(f"plot: {png}\n")
    if as_json:
        click.echo(json.dumps(next(iter(results.values())) if len(results) == 1 else results, indent=1))


@surrogate.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False))
def show(path):
    """Print the model card of a surrogate file (default: the shipped defaults)."""
    from nascsim.surrogate.model import default_surrogates, load_surrogate

    if path is None:
        cards = {n: s.card for n, s in default_surrogates().items()}
    else:
        cards = load_surrogate(path).card
    click.echo(json.dumps(cards, indent=1))
