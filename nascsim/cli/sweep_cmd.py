"""``nascsim sweep`` (a grid of searches into a result store) and ``nascsim report`` (its tables
and figures). The work lives in :mod:`nascsim.sweep`; this module maps options to a grid."""

from __future__ import annotations

from typing import NoReturn

import sys
import time
from pathlib import Path

import click

# Measured, not guessed: one search serves the 6 loss rates of a cell, and a search takes ~0.2 s of
# CPU (paper schedule, shipped surrogate), so the default sweep (7 thresholds x 3 methods x
# DEFAULT_SEEDS searches, 6 loss rates each) ends in about a minute on 2 workers (20 seeds: 46 s).
DEFAULT_SEEDS = 25
DEFAULT_METHODS = "nasc,hwnas,hwnas-dropout"

# option name -> SearchConfig field, for the search options a sweep can vary
GRID_OPTIONS = {
    "thresholds": "threshold_ms", "loss": "loss", "methods": "method", "space": "space", "head": "head",
    "tail": "tail", "bits": "bits", "bandwidth": "bandwidth", "source": "source", "steps": "steps",
    "lam": "lam", "alpha": "alpha", "delta0": "delta0", "delta_max": "Delta_max", "eps_loss": "eps_loss",
    "eps_lat": "eps_lat", "loss_set": "loss_set", "fixed_split": "fixed_split", "noise": "noise", "minibatch": "minibatch",
}
RUN_OPTIONS = ("out", "jobs", "executor", "address", "config_file", "quiet", "scatter", "no_report")


def _fail(exc: Exception) -> NoReturn:
    from nascsim.cli import fail

    fail(str(exc))


def _values_help(what: str) -> str:
    return f"{what}: start:stop:step (stop included when on the grid), a comma list, or one value."


@click.command()
@click.option("--thresholds", default="10:40:5", show_default=True, help=_values_help("Latency thresholds T_th in ms"))
@click.option("--loss", default="0:0.5:0.1", show_default=True, help=_values_help("Packet-loss rates p in [0, 1) at which accuracy is reported"))
@click.option("--methods", default=DEFAULT_METHODS, show_default=True, help="Comma list of nasc, hwnas, hwnas-dropout, random.")
@click.option("--seeds", default=DEFAULT_SEEDS, show_default=True, type=int, help="Seeds 0..N-1 per cell (the same seeds for every method: paired).")
@click.option("--space", default=None, help="Search space(s): fbnet, extended. [default: fbnet]")
@click.option("--head", default=None, help="Head device(s). [default: raspi4]")
@click.option("--tail", default=None, help="Tail device(s). [default: edgegpu]")
@click.option("--bits", default=None, help=_values_help("Bits q per payload element [default: 32]"))
@click.option("--bandwidth", default=None, help=_values_help("Link bandwidth r in bit/s [default: 8e6]"))
@click.option("--source", default=None, help="Latency source(s): measured, flops. [default: by space]")
@click.option("--steps", default=None, help=_values_help("θ updates per search [default: the paper's 90 epochs]"))
@click.option("--lam", default=None, help="ASNG samples per step λ. [default: 2]")
@click.option("--alpha", default=None, help="ASNG α. [default: 1.5]")
@click.option("--delta0", default=None, help="ASNG initial δ. [default: 1]")
@click.option("--delta-max", "delta_max", default=None, help="ASNG Δ_max. [default: inf]")
@click.option("--eps-loss", "eps_loss", default=None, help="Weight ε_loss of l_SC in eq. 4. [default: 1]")
@click.option("--eps-lat", "eps_lat", default=None, help="Weight ε_lat of the latency penalty in eq. 4. [default: 1]")
@click.option("--loss-set", "loss_set", default=None, help="Dropout rates P averaged by l_SC, e.g. 0/0.1/0.2 or 0:0.5:0.1; a comma list of sets is an axis.")
@click.option("--noise", default=None, help="Observation noise mode(s): shared, independent, none. [default: shared]")
@click.option("--minibatch", default=None, help=_values_help("Images per minibatch the noise is scaled to [default: 64]"))
@click.option("--no-split-search", is_flag=True, help="Keep the split fixed at --fixed-split.")
@click.option("--fixed-split", "fixed_split", default=None, help="Split point(s) for --no-split-search.")
@click.option("--axis", "axes", multiple=True, metavar="NAME=VALUES", help="Any search option as an axis, e.g. --axis eps_lat=0.5,1,2 (repeatable).")
@click.option("--surrogate", default=None, type=click.Path(dir_okay=False), help="Surrogate file for every method (default: the shipped pair).")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Result folder. [default: nascsim-results/<timestamp>]")
@click.option("--jobs", default=None, type=click.IntRange(min=1), help="Local worker processes. [default: all cores]")
@click.option("--executor", default="local", show_default=True, type=click.Choice(["local", "dask"]))
@click.option("--address", default=None, help="dask scheduler, tcp://HOST:PORT (with --executor dask).")
@click.option("--config", "config_file", default=None, type=click.Path(dir_okay=False), help="Replay the sweep recorded in a sweep.toml.")
@click.option("--scatter", multiple=True, metavar="T_TH,LOSS", help="Cell of an accuracy-vs-latency scatter plot (repeatable).")
@click.option("--no-report", "no_report", is_flag=True, help="Store the runs only; no summary or plots.")
@click.option("--quiet", is_flag=True, help="No progress bar and no tables; print the result folder only.")
@click.pass_context
def sweep(ctx, **opts):
    """Search every method at every latency threshold, loss rate and seed, into a result store.

    Re-running the same command resumes: finished runs are skipped.
    """
    from nascsim.sweep.run import execute, load_surrogate_sets, pending_configs, surrogate_id
    from nascsim.sweep.store import ResultStore, SweepSpec, check_out_dir, read_spec

    try:
        cells_plot = _parse_cells(opts["scatter"])
        if opts["executor"] == "dask" and not opts["address"]:
            raise ValueError("--executor dask needs --address tcp://HOST:PORT")
        if opts["address"] and opts["executor"] != "dask":
            raise ValueError("--address is for --executor dask")
        if opts["config_file"] is not None:
            given = [n for n in ctx.params if n not in RUN_OPTIONS and _given(ctx, n)]
            if given:
                raise ValueError(f"--config replays a recorded sweep; drop --{given[0].replace('_', '-')}")
            recorded = read_spec(opts["config_file"])
            grid, surrogate_path = recorded.grid, None if recorded.surrogate == "default" else recorded.surrogate
        else:
            grid = grid_from_options(ctx, opts)
            surrogate_path = opts["surrogate"]
        cells = list(grid.cells())
        _validate_cells(grid)
        sets = load_surrogate_sets(grid.as_dict["space"], surrogate_path)
        spec = SweepSpec(grid, "default" if surrogate_path is None else str(Path(surrogate_path).resolve()),
                         surrogate_id(sets), tuple(_command(ctx)))
        out = Path(opts["out"]) if opts["out"] else Path("nascsim-results") / time.strftime("%Y%m%d-%H%M%S")
        check_out_dir(out, spec)
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)

    store = ResultStore.create(out, spec)
    todo = pending_configs(cells, store.done_hashes())
    quiet = opts["quiet"]
    if todo and not quiet:
        from nascsim.cli.search_cmd import compile_notice

        compile_notice(*{c.lam for c in todo})
    if not quiet:
        click.echo(f"sweep: {len(cells)} runs ({len(cells) - len(todo)} already stored) into {out}", err=True)
    from tqdm import tqdm

    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), unit="run", disable=quiet, file=sys.stderr,
               dynamic_ncols=True, smoothing=0.05)
    try:
        execute(todo, store, sets, jobs=opts["jobs"], executor=opts["executor"], address=opts["address"],
                on_commit=bar.update)
    except KeyboardInterrupt:
        bar.close()
        click.echo(f"interrupted; finished runs are stored in {out}; run the same command again to resume", err=True)
        sys.exit(130)
    except ValueError as exc:
        bar.close()
        _fail(exc)
    bar.close()
    if not opts["no_report"]:
        _report(out, cells_plot, quiet)
    if quiet:
        click.echo(str(out))


@click.command()
@click.argument("result_dir", type=click.Path(file_okay=False))
@click.option("--scatter", multiple=True, metavar="T_TH,LOSS", help="Cell of an accuracy-vs-latency scatter plot (repeatable).")
@click.option("--quiet", is_flag=True, help="Write the files without printing the tables.")
def report(result_dir, scatter, quiet):
    """Summary tables (summary.csv, comparison.csv, summary.txt) and plots/ of a sweep's result
    store, without re-running anything."""
    try:
        _report(Path(result_dir), _parse_cells(scatter), quiet)
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)


def _report(out: Path, cells, quiet: bool) -> None:
    from nascsim.sweep.plots import write_plots
    from nascsim.sweep.store import open_store
    from nascsim.sweep.summary import write_summaries

    _, store = open_store(out)
    frame = store.read()
    if cells:
        present = set(frame.select(["threshold_ms", "loss"]).unique().iter_rows())
        for th, loss in cells:
            if (th, loss) not in present:
                raise ValueError(f"no runs at threshold {th:g} ms and loss {loss:g} to plot (--scatter {th:g},{loss:g})")
    text, _ = write_summaries(frame, out)
    plots = write_plots(frame, out / "plots", cells)
    if not quiet:
        click.echo(text)
        click.echo(f"\n{len(frame)} runs; tables in {out}, {len(plots)} plot files in {out / 'plots'}")


def _given(ctx, name: str) -> bool:
    from click.core import ParameterSource

    return ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)


def _command(ctx) -> list[str]:
    """The command line, rebuilt from the options given (defaults omitted)."""
    words = ["nascsim", "sweep"]
    for param in ctx.command.params:
        if not _given(ctx, param.name):
            continue
        flag = param.opts[0]
        value = ctx.params[param.name]
        if getattr(param, "is_flag", False):
            words.append(flag)
        elif getattr(param, "multiple", False):
            for v in value:
                words += [flag, str(v)]
        else:
            words += [flag, str(value)]
    return words


def grid_from_options(ctx, opts: dict):
    """The :class:`~nascsim.sweep.grid.Grid` of a ``sweep`` command line (``ValueError`` on bad
    input, naming the value)."""
    from nascsim.sweep.grid import FIELD_NAMES, Grid

    given: dict[str, object] = {}
    for opt, field in GRID_OPTIONS.items():
        if opts[opt] is not None:
            given[field] = opts[opt]
    if opts["seeds"] < 1:
        raise ValueError(f"--seeds must be at least 1, got {opts['seeds']}")
    given["seed"] = range(opts["seeds"])
    if opts["no_split_search"]:
        given["split_search"] = "false"
    aliases = {n.lower().replace("-", "_"): n for n in FIELD_NAMES}
    aliases.update({"threshold": "threshold_ms", "thresholds": "threshold_ms", "methods": "method", "seeds": "seed"})
    for item in opts["axes"]:
        name, sep, values = item.partition("=")
        if not sep or not values.strip():
            raise ValueError(f"--axis {item!r}: expected NAME=VALUES, e.g. eps_lat=0.5,1,2")
        key = name.strip().lower().replace("-", "_")
        if key not in aliases:
            raise ValueError(f"--axis {item!r}: unknown search option {name.strip()!r}; options: {', '.join(FIELD_NAMES)}")
        field = aliases[key]
        explicit = [o for o, f in GRID_OPTIONS.items() if f == field and _given(ctx, o)]
        if field == "seed" and _given(ctx, "seeds"):
            explicit = ["seeds"]
        if field == "split_search" and opts["no_split_search"]:
            explicit = ["no_split_search"]
        if explicit:
            raise ValueError(f"{field} is given twice: --{explicit[0].replace('_', '-')} and --axis {item}")
        given[field] = values
    return Grid.build(**given)


def _validate_cells(grid) -> None:
    """Every cell through the search's own validation (seeds aside: they cannot make a cell bad)."""
    from dataclasses import replace

    from nascsim.methods.common import validate

    probe = replace(grid, values=tuple((n, v[:1] if n == "seed" else v) for n, v in grid.values))
    for config in probe.cells():
        validate(config)


def _parse_cells(items) -> list[tuple[float, float]]:
    out = []
    for item in items:
        parts = item.split(",")
        try:
            th, loss = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"--scatter {item!r}: expected T_TH,LOSS, e.g. 30,0.2") from None
        out.append((th, loss))
    return out
