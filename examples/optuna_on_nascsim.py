"""Optuna on nascsim: TPE and Optuna's random sampler against NASC on NASC's own problem, at the
same budget of evaluations, paired per seed (docs/optimizers.md).

Every method gets steps x λ evaluations of (arch, split) on a 64-image minibatch each (NASC: that
many ASNG steps of λ = 2; random search and the Optuna samplers: that many trials), observes f of
eq. 4a with the engine's minibatch noise, and is judged by the expected accuracy and latency of
its final choice. Needs optuna (``pip install 'nascsim[optuna]'``).

    python examples/optuna_on_nascsim.py --seeds 10 --steps 100 --jobs 2 --out optuna-vs-nasc
    python examples/optuna_on_nascsim.py --table optuna-vs-nasc     # the table of stored runs

The same runs through the benchmark: ``nascsim bench --suite optimizers`` (or ``--methods
nasc,optuna-tpe`` with any suite); ``--table`` also reads a bench folder.
"""

from __future__ import annotations

import argparse
import math

import nascsim

METHODS = ("nasc", "random", "optuna-tpe", "optuna-random")


def compare(seeds: int = 10, steps: int = 100, threshold_ms: float = 30.0, loss: float = 0.2, *,
            methods=METHODS, surrogate=None, jobs: int | None = None, out=None):
    """Run every method on seeds 0..seeds-1 at one (T_th, p) with ``steps`` x λ evaluations each;
    returns the :class:`nascsim.results.Results` of the runs (stored in ``out`` when given)."""
    frame = nascsim.sweep(thresholds=[threshold_ms], losses=[loss], methods=list(methods), seeds=seeds,
                          steps=steps, surrogate=surrogate, jobs=jobs, out=out)
    return nascsim.load(frame)


def table(results, surrogate=None) -> str:
    """A Markdown table: per method the runs, the evaluations of one run (steps x λ), its
    simulated GPU seconds, the feasible share, median accuracy (all runs, feasible runs) and
    latency, and the paired difference to NASC (median of method - NASC accuracy in points over
    the seeds, seeds where the method is higher / lower, exact Wilcoxon signed-rank p)."""
    import polars as pl

    from nascsim.problem import Problem

    runs = results.runs
    summary = results.summary()
    paired = results.compare() if "nasc" in results.methods else None
    lines = ["| method | runs | evaluations per run | sim. GPU s per run | feasible | acc % (all) | "
             "acc % (feasible) | T ms (median) | Δacc (method - NASC), pts | W/L | p |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    order = [m for m in METHODS if m in results.methods] + [m for m in results.methods if m not in METHODS]
    for method in order:
        s = summary.filter(pl.col("method") == method).row(0, named=True)
        r = runs.filter(pl.col("method") == method).row(0, named=True)
        steps = r.get("steps_used") or r["steps"]
        evaluations = int(steps) * int(r["lam"])
        problem = Problem.from_config(nascsim.SearchConfig.from_dict(
            {k: r[k] for k in ("threshold_ms", "loss", "space", "head", "tail", "bits", "bandwidth", "minibatch",
                               "lam", "noise", "eps_loss", "eps_lat")} | {"loss_set": tuple(r["loss_set"])}),
            _surrogate(r, surrogate))
        gpu = evaluations * problem.budget.seconds_per_evaluation
        acc_f = s["acc_median_feasible"]
        row = (f"| {method} | {s['n_runs']} | {evaluations:,} | {'-' if math.isnan(gpu) else f'{gpu:.2f}'} | "
               f"{s['n_feasible']}/{s['n_runs']} | {100 * s['acc_median_all']:.2f} | "
               f"{'-' if acc_f is None else f'{100 * acc_f:.2f}'} | {s['T_median']:.2f} |")
        c = None if paired is None else paired.filter(pl.col("baseline") == method)
        if c is not None and c.height:
            c = c.row(0, named=True)
            # compare() gives nasc - method and NASC's wins; the table shows method - NASC, the method's wins
            row += f" {-100 * c['acc_diff_median_all']:+.2f} | {c['losses_all']}/{c['wins_all']} | {c['p_wilcoxon_all']:.3f} |"
        else:
            row += " (reference) | | |"
        lines.append(row)
    return "\n".join(lines)


def _surrogate(row: dict, surrogate):
    if surrogate is not None:
        return surrogate if not isinstance(surrogate, str) else nascsim.load_surrogate(surrogate)
    shipped = nascsim.default_surrogates(row["space"])
    for s in shipped.values():
        if s.id == row["surrogate"]:
            return s
    raise ValueError(f"the runs were judged by surrogate {row['surrogate']!r}; pass it with --surrogate")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--steps", type=int, default=100, help="NASC's steps; every method gets steps x λ evaluations")
    ap.add_argument("--threshold", type=float, default=30.0)
    ap.add_argument("--loss", type=float, default=0.2)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--surrogate", default=None, help="a surrogate file (both roles); default: the shipped pair")
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--out", default=None, help="result folder (resumable)")
    ap.add_argument("--table", default=None, metavar="DIR", help="print the table of a stored sweep or bench folder")
    args = ap.parse_args(argv)
    if args.table:
        res = nascsim.load(args.table)
    else:
        res = compare(args.seeds, args.steps, args.threshold, args.loss, methods=args.methods.split(","),
                      surrogate=args.surrogate, jobs=args.jobs, out=args.out)
    print(table(res, args.surrogate))


if __name__ == "__main__":
    main()
