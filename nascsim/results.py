"""A results handle for notebooks: the runs of a sweep or bench folder (or of a frame, or of
records), their summary, the paired comparison, a method's Pareto front and the report's figures,
with no file paths to handle.

    >>> import nascsim
    >>> problem = nascsim.Problem(threshold_ms=30.0, loss=0.2, budget=40)
    >>> records = []
    >>> for seed in range(3):
    ...     problem = nascsim.Problem(threshold_ms=30.0, loss=0.2, budget=40, seed=seed)
    ...     records.append(problem.optimize(lambda: problem.sample(problem.rng), method="random", seed=seed))
    >>> res = nascsim.load(records)                       # or a sweep/bench folder, or a frame
    >>> res.runs.height, res.summary()["n_runs"].to_list()
    (3, [3])
    >>> front = res.pareto("random", p=0.2)               # the non-dominated runs, by T
    >>> bool(front["T_ms"].is_sorted()) and front.height >= 1
    True
    >>> type(res.figure("scatter")).__name__             # a matplotlib Figure
    'Figure'

``nascsim report DIR`` writes its tables and figures through :meth:`Results.write_report`, so the
figures a notebook gets from :meth:`Results.figure` are the ones the CLI writes.
"""

from __future__ import annotations

import os
from pathlib import Path


class Results:
    """Runs in the sweep store's schema (:func:`nascsim.sweep.store.store_schema`), one per row.

    ``runs``: the polars DataFrame (``.to_pandas()`` works); ``origin``: where they came from.
    """

    def __init__(self, runs, origin: str = "frame"):
        missing = [c for c in ("method", "threshold_ms", "loss", "seed", "T_ms", "accuracy", "split", "surrogate",
                               "dataset") if c not in runs.columns]
        if missing:
            raise ValueError(f"the runs lack column(s) {', '.join(missing)}: not rows of a sweep")
        if runs.height == 0:
            raise ValueError("no runs")
        self.runs = runs
        self.origin = origin

    def __repr__(self) -> str:
        methods = ", ".join(sorted(set(self.runs["method"].to_list())))
        return f"Results({self.runs.height} runs of {methods}; from {self.origin})"

    @property
    def methods(self) -> list[str]:
        return sorted(set(self.runs["method"].to_list()))

    def summary(self):
        """One row per (method, variant, T_th, p): feasibility, accuracy and latency medians
        (:func:`nascsim.sweep.summary.summarize`)."""
        from nascsim.sweep.summary import summarize

        return summarize(self.runs)

    def compare(self, baseline: str | list[str] | None = None, reference: str = "nasc"):
        """``reference`` vs each baseline (all other methods, or ``baseline``: a name or a list),
        paired per seed (:func:`nascsim.sweep.summary.compare`): latency reduction, accuracy
        difference, wins and losses, Wilcoxon p."""
        import polars as pl

        from nascsim.sweep.summary import compare

        for name in [reference] + ([] if baseline is None else [baseline] if isinstance(baseline, str) else list(baseline)):
            if name not in self.methods:
                raise ValueError(f"no runs of method {name!r}; the runs hold {', '.join(self.methods)}")
        out = compare(self.runs, reference)
        if baseline is not None:
            names = [baseline] if isinstance(baseline, str) else list(baseline)
            out = out.filter(pl.col("baseline").is_in(names))
        return out

    def pareto(self, method: str, p: float | None = None):
        """The runs of ``method`` at loss rate ``p`` (default: 0.2 or the nearest the runs have)
        that no other of them dominates in (T, accuracy), by increasing T
        (:func:`nascsim.sweep.plots.pareto_front`), all thresholds together."""
        import polars as pl

        from nascsim.sweep.plots import pareto_front
        from nascsim.sweep.summary import reference_loss

        if method not in self.methods:
            raise ValueError(f"no runs of method {method!r}; the runs hold {', '.join(self.methods)}")
        f = self.runs.filter(pl.col("method") == method)
        p = reference_loss(f["loss"].to_list()) if p is None else float(p)
        f = f.filter(pl.col("loss") == p)
        if f.height == 0:
            raise ValueError(f"no runs of {method!r} at loss rate {p:g}")
        idx = pareto_front(f["T_ms"].to_numpy(), f["accuracy"].to_numpy())
        return f[idx.tolist()]

    def figure(self, name: str, **options):
        """A figure of the report as a matplotlib Figure (:func:`nascsim.sweep.plots.figure`):
        ``scatter`` (``threshold_ms=``, ``loss=``), ``pareto`` (``loss=``),
        ``feasibility_heatmap``, ``accuracy_vs_axis``, ``split_histogram``, or a file stem of
        the report (``scatter_T30_p0.2``)."""
        from nascsim.sweep.plots import figure

        return figure(self.runs, name, **options)

    def figure_names(self, cells=None) -> list[str]:
        """The figures the report writes (file stems, each a name :meth:`figure` takes)."""
        from nascsim.sweep.plots import figure_names

        return figure_names(self.runs, cells)

    def write_report(self, out_dir: str | os.PathLike, cells=None, surrogates=()) -> tuple[str, list[Path]]:
        """``summary.csv``, ``comparison.csv``, ``summary.txt`` and ``plots/`` into ``out_dir``
        (what ``nascsim report`` writes); returns the compact text and the paths. ``surrogates``:
        the objects whose model cards the provenance lines read."""
        from nascsim.sweep.plots import write_plots
        from nascsim.sweep.summary import write_summaries

        text, paths = write_summaries(self.runs, out_dir, surrogates)
        return text, paths + write_plots(self.runs, Path(out_dir) / "plots", cells, surrogates)


def _from_records(records: list[dict]):
    """Store rows (:func:`nascsim.sweep.store.rows_frame`) of result records (``nascsim.search``,
    :meth:`nascsim.Problem.record`, ``search --json``)."""
    from dataclasses import fields

    from nascsim.config import SearchConfig
    from nascsim.sweep.store import make_row, rows_frame

    names = {f.name for f in fields(SearchConfig)}
    rows = []
    for rec in records:
        if not isinstance(rec, dict) or "method" not in rec:
            raise ValueError(f"not a result record: {str(rec)[:60]!r}")
        config = SearchConfig.from_dict({k: v for k, v in rec.items() if k in names})
        rows.append(make_row(config, rec, float(rec.get("wall_s", 0.0))))
    return rows_frame(rows)


def _bench_cells(path: Path) -> list[Path]:
    return sorted((p for p in path.glob("cells-*") if (p / "sweep.toml").is_file()), key=lambda p: p.name)


def load(source) -> Results:
    """A :class:`Results` of ``source``: a sweep folder (``nascsim sweep --out``), a bench folder
    (``nascsim bench --out``: its ``cells-*`` sweeps together), a parquet file of runs, a polars or
    pandas DataFrame of runs (e.g. what ``nascsim.sweep(...)`` returns), or a list of result
    records (``nascsim.search``, :meth:`nascsim.Problem.record`)."""
    import polars as pl

    if isinstance(source, Results):
        return source
    if isinstance(source, pl.DataFrame):
        return Results(source)
    if type(source).__name__ == "DataFrame" and hasattr(source, "to_dict"):  # pandas
        return Results(pl.from_pandas(source))
    if isinstance(source, (list, tuple)):
        return Results(_from_records(list(source)), "records")
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"cannot load results from a {type(source).__name__}: give a folder, a parquet file, a "
                        "DataFrame or a list of records")
    from nascsim.sweep.store import read_runs

    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"no results at {str(path)!r}")
    if path.is_dir() and not (path / "sweep.toml").exists() and (cells := _bench_cells(path)):
        frames = [read_runs(c) for c in cells]
        return Results(pl.concat(frames, how="diagonal_relaxed"), str(path))
    return Results(read_runs(path), str(path))
