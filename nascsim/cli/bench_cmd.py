"""``nascsim bench``: the regression benchmark (a fixed, versioned suite of cells run through the
sweep machinery, compared against a reference method and, optionally, a saved baseline). The work
lives in :mod:`nascsim.bench`; this module maps options to it and sets the exit code."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from nascsim.cli.options import count, surrogate_options, tables_option


@click.command()
@click.option("--suite", "suite_name", default=None, metavar="NAME|FILE",
              help="A shipped suite by name (paper) or a suite file. [default: paper]")
@click.option("--methods", default=None, metavar="M1,M2,...",
              help="Methods to run instead of the suite's: names of built-in or registered methods, or "
                   "pkg.mod:function / NAME=pkg.mod:function (imported and registered).")
@click.option("--reference", default=None, metavar="METHOD",
              help="Method every other is compared with, paired per seed. [default: the suite's, nasc]")
@click.option("--baseline", "baseline_file", default=None, type=click.Path(dir_okay=False),
              help="Check this run against a saved baseline: exit 1 when a metric regressed.")
@click.option("--save-baseline", "save_baseline", default=None, type=click.Path(dir_okay=False),
              help="Save this run's results as a baseline file.")
@click.option("--compare-as", "compare_as", multiple=True, metavar="METHOD=BASELINE_METHOD",
              help="Check METHOD's runs against another method of the baseline (repeatable), e.g. mine=nasc.")
@click.option("--allow-identity-change", is_flag=True,
              help="Compare with a baseline made with other surrogates, tables or suite version.")
@click.option("--seeds", default=None, type=count(2, 1000), help="Seeds per cell. [default: the suite's]")
@click.option("--seed-offset", "seed_offset", default=None, type=count(0, 2**62),
              help="First seed (seeds OFFSET..OFFSET+N-1). [default: the suite's, 0]")
@surrogate_options
@tables_option
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Result folder (resumable). [default: nascsim-bench/<digest of the inputs and code>]")
@click.option("--jobs", default=None, type=click.IntRange(min=1, max=1024), help="Local worker processes. [default: all cores]")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout instead of the tables.")
@click.pass_context
def bench(ctx, **opts):
    """Run a benchmark suite (default: the paper's settings) and compare every method with the
    reference, paired per seed; with --baseline, exit 1 when a metric moved to the worse side by
    more than the suite's tolerance and beyond seed noise (2: bad input).

    Writes the runs (resumable, as a sweep), bench.json and bench.md into --out.
    """
    from nascsim.bench import baseline as bl
    from nascsim.bench import compare, identity, report
    from nascsim.bench.run import check_out, parse_methods, plan, run, stored_counts
    from nascsim.bench.suite import load_suite
    from nascsim.cli import fail

    t0 = time.perf_counter()
    try:
        suite = load_suite(opts["suite_name"])
        methods = parse_methods(opts["methods"], suite)
        p = plan(suite, methods, opts["reference"], seeds=opts["seeds"], seed_offset=opts["seed_offset"],
                 surrogate=opts["surrogate"], surrogate_dropout=opts["surrogate_dropout"],
                 surrogate_no_dropout=opts["surrogate_no_dropout"], tables=opts["tables"],
                 command=_command(ctx))
        compare_as = _compare_as(opts["compare_as"], p.methods)
        if compare_as and opts["baseline_file"] is None:
            raise ValueError("--compare-as needs --baseline")
        base = None
        if opts["baseline_file"] is not None:
            base = bl.load_baseline(opts["baseline_file"])
            bad = identity.mismatches(base["identity"], p.identity)
            if bad and not opts["allow_identity_change"]:
                raise ValueError(f"baseline {opts['baseline_file']!r} was made with other {bad[0]}"
                                 + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")
                                 + "; pass --allow-identity-change to compare across them")
            base["mismatches"] = bad
        if opts["save_baseline"] is not None and Path(opts["save_baseline"]).is_dir():
            raise ValueError(f"--save-baseline {opts['save_baseline']!r} is a folder")
        if opts["save_baseline"] is not None:
            from nascsim.atomic import check_output_target

            check_output_target(opts["save_baseline"], "--save-baseline")
        out = Path(opts["out"]) if opts["out"] else p.default_out()
        check_out(p, out)
    except (ValueError, FileNotFoundError, TypeError) as exc:
        fail(str(exc))

    from nascsim.api import role_warning

    err = lambda msg: click.echo(msg, err=True)  # noqa: E731
    for _, _, sets in p.groups:
        message = role_warning(next(iter(sets.values())), p.methods)
        if message:
            from nascsim.cli import warn

            warn(message)
    for note in p.notes:
        err(f"Note: {note}")
    done = stored_counts(p, out)
    err(f"bench: suite {suite.name} v{suite.version}: {p.n_runs} runs ({', '.join(p.methods)} x {len(p.cells())} cells x "
        f"seeds {p.seeds[0]}..{p.seeds[-1]}; {p.n_searches} searches; {done} already stored) into {out}")
    from nascsim.cli.sweep_cmd import Progress
    from nascsim.sweep.run import default_jobs

    bar = Progress(p.n_runs, done, opts["jobs"] or default_jobs(), opts["as_json"])
    try:
        frame = run(p, out, jobs=opts["jobs"], progress=bar.update)
    except KeyboardInterrupt:
        bar.close()
        err(f"interrupted; finished runs are stored in {out}; run the same command again to resume")
        sys.exit(130)
    except ValueError as exc:
        bar.close()
        fail(str(exc))
    bar.close()

    runs = compare.runs_of(frame, p.methods, p.cells())
    summary = compare.summarize(runs)
    comparisons = compare.against_reference(runs, p.reference, suite.confidence)
    checked = None
    if base is not None:
        checks, check_notes = compare.check(runs, base["runs"], suite.tolerance, suite.check_confidence, compare_as)
        checked = {"file": str(opts["baseline_file"]), "created": base["created"], "mismatches": base["mismatches"],
                   "notes": identity.notes(base["identity"], p.identity) + check_notes, "checks": checks}
    doc = report.build(p, out, summary, comparisons, checked, time.perf_counter() - t0, p.n_runs - done)
    report.write(doc, out)
    if opts["save_baseline"] is not None:
        bl.save_baseline(opts["save_baseline"], p.identity, p.seeds, runs)
        err(f"baseline saved to {opts['save_baseline']}")
    if opts["as_json"]:
        from nascsim.api import to_json

        click.echo(to_json(report.short(doc)))
    else:
        click.echo(report.text(doc))
        err(f"\nReport: {out / 'bench.json'}, {out / 'bench.md'}")
    sys.exit(report.exit_code(doc))


def _compare_as(items, methods) -> dict[str, str]:
    """``--compare-as A=B`` items as {A: B}; A must be a method of this run."""
    out = {}
    for item in items:
        a, sep, b = (x.strip() for x in item.partition("="))
        if not sep or not a or not b:
            raise ValueError(f"--compare-as {item!r}: expected METHOD=BASELINE_METHOD, e.g. mine=nasc")
        if a not in methods:
            raise ValueError(f"--compare-as {item!r}: {a!r} is not a method of this run ({', '.join(methods)})")
        if a in out:
            raise ValueError(f"--compare-as names {a!r} twice")
        out[a] = b
    return out


def _command(ctx) -> tuple[str, ...]:
    """The command line, rebuilt from the options given (defaults omitted), for the record."""
    from click.core import ParameterSource

    words = ["nascsim", "bench"]
    for param in ctx.command.params:
        if ctx.get_parameter_source(param.name) in (ParameterSource.DEFAULT, None):
            continue
        value = ctx.params[param.name]
        words += [param.opts[0]] if getattr(param, "is_flag", False) else [param.opts[0], str(value)]
    return tuple(words)
