"""``nascsim sweep`` (a grid of searches into a result store) and ``nascsim report`` (its tables
and figures). The work lives in :mod:`nascsim.sweep`; this module maps options to a grid."""

from __future__ import annotations

from typing import NoReturn

import sys
import time
from pathlib import Path

import click

from nascsim.cli.options import surrogate_options, tables_option
from nascsim.limits import MAX_SWEEP_SAMPLES
from nascsim.sweep.grid import MAX_RUNS, MAX_RUNS_FORCED

# Measured, not guessed: one search serves the 6 loss rates of a cell (and hwnas / hwnas-dropout
# share theirs), and a search takes ~55 ms of CPU (paper schedule, shipped surrogate), so the
# default sweep (7 thresholds x 3 methods x DEFAULT_SEEDS seeds, 325 searches) stores its 3,150
# runs in about 11 s on 2 workers (docs/performance.md).
DEFAULT_SEEDS = 25
DEFAULT_METHODS = "nasc,hwnas,hwnas-dropout"

# option name -> SearchConfig field, for the search options a sweep can vary
GRID_OPTIONS = {
    "thresholds": "threshold_ms", "loss": "loss", "methods": "method", "space": "space", "head": "head",
    "tail": "tail", "bits": "bits", "bandwidth": "bandwidth", "source": "source", "steps": "steps",
    "lam": "lam", "alpha": "alpha", "delta0": "delta0", "delta_max": "Delta_max", "eps_loss": "eps_loss",
    "eps_lat": "eps_lat", "loss_set": "loss_set", "fixed_split": "fixed_split", "noise": "noise", "minibatch": "minibatch",
}
RUN_OPTIONS = ("out", "jobs", "executor", "address", "config_file", "quiet", "scatter", "no_report", "force")


def _fail(exc: Exception) -> NoReturn:
    from nascsim.cli import fail

    fail(str(exc))


def _seeds(ctx, param, value):
    """--seeds: at most as many as runs one sweep can hold (fewer than 1: see grid_from_options)."""
    if value is not None and value > MAX_RUNS_FORCED:
        raise click.BadParameter(f"{value} seeds alone are more runs than the {MAX_RUNS_FORCED:,} one sweep can hold "
                                 f"({value} seed)", ctx=ctx, param=param)
    return value


_seeds.bounded_by = "seed"


def _values_help(what: str) -> str:
    return f"{what}: start:stop:step (stop included when on the grid), a comma list, or one value."


@click.command()
@click.option("--thresholds", default="10:40:5", show_default=True, help=_values_help("Latency thresholds T_th in ms"))
@click.option("--loss", default="0:0.5:0.1", show_default=True, help=_values_help("Packet-loss rates p in [0, 1) at which accuracy is reported"))
@click.option("--methods", default=DEFAULT_METHODS, show_default=True,
              help="Comma list of nasc, hwnas, hwnas-dropout, random and registered methods (docs/plugins.md).")
@click.option("--seeds", default=DEFAULT_SEEDS, show_default=True, type=int, callback=_seeds, help="Seeds 0..N-1 per cell (the same seeds for every method: paired).")
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
@surrogate_options
@tables_option
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Result folder; an existing one is resumed or extended. [default: nascsim-results/<hash of the grid and surrogates>, or the folder of --config's sweep.toml]")
@click.option("--jobs", default=None, type=click.IntRange(min=1, max=1024), help="Local worker processes. [default: all cores]")
@click.option("--executor", default="local", show_default=True, type=click.Choice(["local", "dask"]))
@click.option("--address", default=None, help="dask scheduler, tcp://HOST:PORT (with --executor dask).")
@click.option("--config", "config_file", default=None, type=click.Path(dir_okay=False), help="Replay the sweep recorded in a sweep.toml (resumes in its folder).")
@click.option("--force", is_flag=True, help=f"Run a grid of more than {MAX_RUNS:,} runs, or more work than "
              f"{MAX_SWEEP_SAMPLES:,} samples (steps x λ over the searches; docs/limits.md).")
@click.option("--scatter", multiple=True, metavar="T_TH,LOSS", help="Cell of an accuracy-vs-latency scatter plot (repeatable).")
@click.option("--no-report", "no_report", is_flag=True, help="Store the runs only; no summary or plots.")
@click.option("--quiet", is_flag=True, help="No progress bar and no tables; print the result folder only.")
@click.pass_context
def sweep(ctx, **opts):
    """Search every method at every latency threshold, loss rate and seed, into a result store.

    Re-running the same command resumes: finished runs are skipped. A folder takes more runs on
    the same surrogates (more seeds, thresholds, methods, axis values): they are added.
    """
    from nascsim.api import role_warning
    from nascsim.sweep.run import check_address, connect_dask, default_jobs, execute, pending_configs
    from nascsim.limits import check_sweep_work
    from nascsim.sweep.store import ResultStore

    client = None
    try:
        spec, sets, cells_plot, out = _plan(ctx, opts)
        if opts["executor"] == "dask":
            check_address(opts["address"])
        store = ResultStore.create(out, spec)  # checks the folder; writes nothing
        store.lock()  # an existing folder: refuse a second writer before reading what is stored
        cells = list(spec.cells())
        todo = pending_configs(cells, store.done_hashes())
        check_sweep_work(spec.grids(), len(todo), len(cells), opts["force"], "--force")
        if opts["executor"] == "dask" and todo:
            client = connect_dask(opts["address"])  # before any output: an unreachable one is one line
    except (ValueError, FileNotFoundError, TypeError) as exc:
        _fail(exc)

    methods = {m for g in spec.grids() for m in g.as_dict["method"]}
    message = role_warning(next(iter(sets.values())), sorted(methods))
    if message and not opts["quiet"]:
        from nascsim.cli import warn

        warn(message)
    quiet = opts["quiet"]
    if todo and not quiet:
        from nascsim.cli.search_cmd import compile_notice

        compile_notice(*{c.lam for c in todo})
    if not quiet:
        click.echo(f"sweep: {len(cells)} runs ({len(cells) - len(todo)} already stored) into {out}", err=True)
    bar = Progress(len(cells), len(cells) - len(todo), opts["jobs"] or default_jobs(), quiet)
    try:
        execute(todo, store, sets, jobs=opts["jobs"], executor=opts["executor"],
                address=opts["address"], on_commit=bar.update, client=client)
    except KeyboardInterrupt:
        bar.close()
        click.echo(f"interrupted; finished runs are stored in {out}; run the same command again to resume", err=True)
        sys.exit(130)
    except ValueError as exc:
        bar.close()
        _fail(exc)
    finally:
        store.close()
        if client is not None:
            client.close()
    bar.close()
    if not opts["no_report"]:
        _report(out, cells_plot, quiet, [s for roles in sets.values() for s in roles.values()])
    if quiet:
        click.echo(str(out))


def _plan(ctx, opts: dict):
    """Everything a sweep needs, checked, with nothing written: its spec (grid, surrogates,
    command), the surrogates by space, the scatter cells, and the output folder."""
    from nascsim.api import parse_surrogate_label, surrogate_label, surrogate_roles
    from nascsim.sweep.grid import check_size
    from nascsim.sweep.run import surrogate_id
    from nascsim.sweep.store import SweepSpec, read_spec

    cells_plot = _parse_cells(opts["scatter"])
    if opts["executor"] == "dask" and not opts["address"]:
        raise ValueError("--executor dask needs --address tcp://HOST:PORT")
    if opts["address"] and opts["executor"] != "dask":
        raise ValueError("--address is for --executor dask")
    out = Path(opts["out"]) if opts["out"] else None
    if opts["config_file"] is not None:
        given = [n for n in ctx.params if n not in RUN_OPTIONS and _given(ctx, n)]
        if given:
            raise ValueError(f"--config replays a recorded sweep; drop --{given[0].replace('_', '-')}")
        config_file = Path(opts["config_file"])
        recorded = read_spec(config_file)
        check_size(recorded.n_runs, " + ".join(g.sizes() for g in recorded.grids()), opts["force"])
        roles = parse_surrogate_label(recorded.surrogate)
        for g in recorded.grids():
            _validate_cells(g)
        sets = {sp: surrogate_roles(sp, **roles) for sp in _spaces(recorded.grids())}
        sid = surrogate_id(sets)
        if sid != recorded.surrogate_id:
            raise ValueError(f"the surrogate of {str(config_file)!r} ({recorded.surrogate}) has changed since the "
                             f"sweep was recorded (id {sid}, recorded {recorded.surrogate_id})")
        spec = recorded
        if out is None and config_file.name == "sweep.toml":
            out = config_file.parent  # resume where it was recorded
    else:
        grid = grid_from_options(ctx, opts)
        _validate_cells(grid)
        roles = {k: v for k, v in (("surrogate", opts["surrogate"]), ("dropout", opts["surrogate_dropout"]),
                                    ("no_dropout", opts["surrogate_no_dropout"])) if v is not None}
        sets = {sp: surrogate_roles(sp, **roles) for sp in grid.as_dict["space"]}
        spec = SweepSpec(grid, surrogate_label(**roles), surrogate_id(sets), tuple(_command(ctx)))
    if out is None:
        out = Path("nascsim-results") / spec.fingerprint()
    return spec, sets, cells_plot, out


def _spaces(grids) -> list[str]:
    return list(dict.fromkeys(sp for g in grids for sp in g.as_dict["space"]))


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


def spec_surrogates(spec) -> list:
    """The surrogate objects a stored sweep ran on, read back from its ``sweep.toml`` for their
    model cards (the provenance line of the tables and figures); empty when they cannot be
    loaded as they were (a file since changed or gone, an object)."""
    from nascsim.api import parse_surrogate_label, surrogate_roles
    from nascsim.surrogate.validate import SurrogateFileError
    from nascsim.sweep.run import surrogate_id

    try:
        roles = parse_surrogate_label(spec.surrogate)
        sets = {sp: surrogate_roles(sp, **roles) for sp in _spaces(spec.grids())}
    except (ValueError, TypeError, OSError, SurrogateFileError):
        return []
    if surrogate_id(sets) != spec.surrogate_id:
        return []
    return [s for r in sets.values() for s in r.values()]


def _report(out: Path, cells, quiet: bool, surrogates=None) -> None:
    from nascsim.results import Results
    from nascsim.sweep.store import open_store

    spec, store = open_store(out)
    frame = store.read()
    if surrogates is None:
        surrogates = spec_surrogates(spec)
    if cells:
        present = set(frame.select(["threshold_ms", "loss"]).unique().iter_rows())
        for th, loss in cells:
            if (th, loss) not in present:
                raise ValueError(f"no runs at threshold {th:g} ms and loss {loss:g} to plot (--scatter {th:g},{loss:g})")
    # the handle a notebook gets from nascsim.load writes the report
    text, paths = Results(frame, str(out)).write_report(out, cells, surrogates)
    plots = [p for p in paths if p.parent == out / "plots"]
    if not quiet:
        from nascsim.limits import printable_lines

        click.echo(printable_lines(text))
        click.echo(f"\nFull tables (every loss rate): {out / 'summary.txt'}, summary.csv, comparison.csv; "
                   f"{len(plots)} plot files in {out / 'plots'}")


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60:d}:{rest % 60:02d}"


class Progress:
    """Per-run progress on stderr with an ETA that ignores the warm-up: the first batch of each
    worker carries the one-off costs (process start, numba compile or cache load), so the rate is
    measured from the moment ``workers`` batches have been committed, and no ETA is shown before
    a batch has been committed after that."""

    def __init__(self, total: int, done: int, workers: int, quiet: bool):
        from tqdm import tqdm

        self.total, self.done, self.skip = total, done, max(1, int(workers))
        self.commits, self.t0, self.n0 = 0, None, 0
        self.bar = tqdm(total=total, initial=done, unit="run", disable=quiet, file=sys.stderr, dynamic_ncols=True,
                        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} runs [{elapsed}{postfix}]")
        self.bar.set_postfix_str("ETA after warm-up" if done < total else "", refresh=False)

    def update(self, n: int) -> None:
        self.commits += 1
        self.done += n
        now = time.perf_counter()
        if self.commits == self.skip:
            self.t0, self.n0 = now, self.done
        elif self.t0 is not None and self.done > self.n0:
            rate = (self.done - self.n0) / max(now - self.t0, 1e-9)
            self.bar.set_postfix_str(f"ETA {_clock((self.total - self.done) / rate)}, {rate:.1f} runs/s",
                                     refresh=False)
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


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
    from nascsim.sweep.grid import FIELD_NAMES, Grid, check_size

    given: dict[str, object] = {}
    for opt, field in GRID_OPTIONS.items():
        if opts[opt] is not None:
            given[field] = opts[opt]
    if opts["tables"] is not None:
        from nascsim.api import _tables_path

        given["tables"] = [_tables_path(opts["tables"])]
    if opts["seeds"] < 1:
        raise ValueError(f"--seeds must be at least 1, got {opts['seeds']}")
    seeds = opts["seeds"]
    given["seed"] = range(1)
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
        explicit = [o for o, f in [*GRID_OPTIONS.items(), ("tables", "tables")] if f == field and _given(ctx, o)]
        if field == "seed" and _given(ctx, "seeds"):
            explicit = ["seeds"]
        if field == "split_search" and opts["no_split_search"]:
            explicit = ["no_split_search"]
        if explicit:
            raise ValueError(f"{field} is given twice: --{explicit[0].replace('_', '-')} and --axis {item}")
        given[field] = values
    if "seed" in given and isinstance(given["seed"], range):  # --seeds N: size the grid before N seeds exist
        one = Grid.build(**given)
        check_size(one.n_runs * seeds, f"{one.sizes()} x {seeds} seed" if one.n_runs > 1 else f"{seeds} seed",
                   opts["force"])
        given["seed"] = range(seeds)
    grid = Grid.build(**given)
    check_size(grid.n_runs, grid.sizes(), opts["force"])
    return grid


def _validate_cells(grid) -> None:
    """Every cell through the search's own validation (seeds aside: they cannot make a cell bad)."""
    from dataclasses import replace

    from nascsim.methods.common import validate

    probe = replace(grid, values=tuple((n, v[:1] if n == "seed" else v) for n, v in grid.values))
    for config in probe.cells():
        validate(config)


def _parse_cells(items) -> list[tuple[float, float]]:
    """``--scatter T_TH,LOSS`` cells, each value through its field's rule."""
    from nascsim.validate import check_field

    out = []
    for item in items:
        parts = item.split(",")
        try:
            th, loss = (float(p) for p in parts)
            check_field("threshold_ms", th)
            check_field("loss", loss)
        except ValueError as exc:
            why = "" if "could not convert" in str(exc) or "unpack" in str(exc) else f" ({exc})"
            raise ValueError(f"--scatter {item!r}: expected T_TH,LOSS, e.g. 30,0.2{why}") from None
        out.append((th, loss))
    return out
