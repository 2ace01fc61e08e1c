"""The outputs of ``nascsim confirm`` on a sweep's cell (:mod:`nascsim.train.confirm_sweep`):
``confirm.parquet`` (one row per network), ``confirm.md`` (the surrogate-vs-retrain gap table) and
``confirm.png`` (re-trained accuracy vs end-to-end latency T, the paper's Fig. 2 with re-trained
networks). Each is written atomically; a network not yet re-trained has null re-trained columns.

Rank agreement is Kendall's τ-b between two accuracy columns across the networks that have both
(ties count as neither concordant nor discordant): 1 when they order the networks alike, 0 when
their orders are unrelated.
"""

from __future__ import annotations

import io
import json
import math
import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np

from nascsim.space import arch_names, get_space

TABLE, REPORT, FIGURE = "confirm.parquet", "confirm.md", "confirm.png"
METADATA_KEY = "nascsim_confirm"
COLUMNS_COMPARED = (("surrogate_acc", "retrain_acc"), ("supernet_acc", "retrain_acc"), ("surrogate_acc", "supernet_acc"))
LABEL = {"surrogate_acc": "surrogate", "supernet_acc": "supernet", "retrain_acc": "re-trained"}

# Split dropout in re-training, as the paper re-trains each method's final model.
PAPER_DROPOUT = {"nasc": 0.5, "hwnas": 0.0, "hwnas-dropout": 0.5, "random": 0.5}


def p_suffix(p: float) -> str:
    """Column suffix of a loss rate: ``p0`` .. ``p5`` for 0, 0.1, .., 0.5; ``p025`` for 0.25."""
    tenth = round(p * 10)
    return f"p{tenth}" if abs(p * 10 - tenth) < 1e-9 else "p" + f"{p:g}".replace(".", "")


def dropout_of(method: str, overrides: dict) -> float:
    """Split dropout of a method's re-training: ``overrides`` first, then the paper's (PAPER_DROPOUT)."""
    return float(overrides.get(method, PAPER_DROPOUT.get(method, 0.5)))


def arch_text(n) -> str:
    """A network's ops as comma-separated names (``n``: anything with ``arch`` and ``space``)."""
    return ",".join(arch_names(np.asarray(n.arch), get_space(n.space)))


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's τ-b of two equally long vectors (nan below two items or when one is constant).

    >>> round(kendall_tau([1, 2, 3], [10, 30, 20]), 3)
    0.333
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    i, j = np.triu_indices(len(a), 1)
    da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    n0 = len(i)
    ta, tb = int((da == 0).sum()), int((db == 0).sum())
    if n0 == 0 or ta == n0 or tb == n0:
        return float("nan")
    return float((da * db).sum() / math.sqrt((n0 - ta) * (n0 - tb)))


def build_table(plan, results: list[dict | None], surrogate: list, supernet: list):
    """One row per network (polars), in the plan's order."""
    import polars as pl


    s = plan.settings
    at = next(k for k, p in enumerate(plan.ps) if abs(p - s.cell.loss) < 1e-9)
    rows = []
    for n, res, sur, sn in zip(plan.networks, results, surrogate, supernet):
        acc = [next(r["test_acc"] for r in res["rows"] if abs(r["p"] - p) < 1e-9) for p in plan.ps] if res else None
        row = {"method": n.method, "seed": n.seed, "arch": arch_text(n), "split": n.split, "T_ms": n.T_ms,
               "T_th": float(s.cell.threshold_ms), "feasible": bool(n.T_ms <= s.cell.threshold_ms), "p": float(s.cell.loss),
               "surrogate": n.surrogate, "surrogate_acc": n.surrogate_acc,
               "supernet_acc": sn[at] if sn else None, "retrain_acc": acc[at] if acc else None,
               "split_dropout_train": dropout_of(n.method, s.dropout), "epochs": int(s.epochs),
               "width": float(plan.proxy["width"]), "resolution": int(plan.proxy["resolution"]),
               "train_s": float(res["train_s"]) if res else None, "folder": n.folder}
        for k, p in enumerate(plan.ps):
            row[f"surrogate_acc_{p_suffix(p)}"] = sur[k] if sur else None
            row[f"supernet_acc_{p_suffix(p)}"] = sn[k] if sn else None
            row[f"retrain_acc_{p_suffix(p)}"] = acc[k] if acc else None
        rows.append(row)
    schema = {k: (pl.Float64 if k.endswith("_acc") or "_acc_" in k or k in ("train_s", "T_ms", "T_th", "p") else None)
              for k in rows[0]}
    return pl.DataFrame(rows, schema_overrides={k: v for k, v in schema.items() if v is not None},
                        infer_schema_length=None)


def metadata(plan) -> dict:
    """What the table's numbers mean and the command that made them (the parquet's metadata)."""

    s = plan.settings
    return {"results": str(s.results), "data": str(s.data), "cell": {"threshold_ms": s.cell.threshold_ms,
            "loss": s.cell.loss, "methods": list(s.cell.methods), "seeds": sorted({n.seed for n in plan.networks})},
            "epochs": s.epochs, "proxy": plan.proxy, "proxy_source": plan.proxy_source, "ps": list(plan.ps),
            "split_dropout": {m: dropout_of(m, s.dropout) for m in s.cell.methods}, "recipe": plan.recipes[0],
            "train_images": s.train_images, "bits": s.bits, "jobs": s.jobs, "supernets": s.supernets,
            "retrain_eval": "test split, eval-mode BatchNorm, loss p simulated at the split (dropout of the payload)",
            "supernet_eval": "the supernet's held-out split, BatchNorm on batch statistics",
            "surrogate_eval": "the sweep's accuracy column (the surrogate of the method's final model)",
            "command": list(s.command)}


def write_outputs(plan, results: list[dict | None], surrogate: list, supernet: list):
    """Write the table, the gap report and the figure into the plan's folder; returns the table."""
    import pyarrow.parquet as pq

    from nascsim.atomic import atomic_path, atomic_write_bytes

    table = build_table(plan, results, surrogate, supernet)
    arrow = table.to_arrow().replace_schema_metadata({METADATA_KEY: json.dumps(metadata(plan))})
    with atomic_path(plan.out / TABLE) as tmp:
        pq.write_table(arrow, tmp)
    atomic_write_bytes(gap_report(plan, table).encode(), plan.out / REPORT)
    atomic_write_bytes(figure_png(plan, table), plan.out / FIGURE)
    return table


def _pct(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"


def _median(values) -> float | None:
    v = [x for x in values if x is not None]
    return float(np.median(v)) if v else None


def _tau(table, a: str, b: str) -> tuple[float, int]:
    """(τ-b of columns a and b, networks with both)."""
    both = table.filter(table[a].is_not_null() & table[b].is_not_null())
    return (kendall_tau(both[a].to_numpy(), both[b].to_numpy()) if both.height else float("nan")), both.height


def rank_agreement(table) -> list[tuple[str, str, float, int]]:
    """(column a, column b, τ-b, networks with both) for each pair of accuracy columns."""
    return [(a, b, *_tau(table, a, b)) for a, b in COLUMNS_COMPARED]


def rank_agreement_per_surrogate(table) -> list[tuple[str, tuple[str, ...], str, float, int]]:
    """(surrogate id, its methods, column, τ-b against re-trained, networks) among the networks one
    surrogate judged, for the surrogate and the supernet column. Across surrogates, τ also counts
    the offset between two surrogates (or supernets) as agreement or disagreement; within one it
    does not."""
    out = []
    for sid in dict.fromkeys(table["surrogate"].to_list()):
        g = table.filter(table["surrogate"] == sid)
        methods = tuple(dict.fromkeys(g["method"].to_list()))
        out += [(sid, methods, a, *_tau(g, a, "retrain_acc")) for a in ("surrogate_acc", "supernet_acc")]
    return out


def provenance(plan) -> str:
    from nascsim.sweep.summary import provenance as line

    return line(plan.sweep_rows, list(plan.surrogates.values()))


def setting_text(plan) -> str:

    s = plan.settings
    drops = ", ".join(f"{m} {dropout_of(m, s.dropout):g}" for m in s.cell.methods)
    images = f"{s.train_images:,} training images" if s.train_images else "every training image"
    return (f"re-trained stand-alone at width {plan.proxy['width']:g}, {plan.proxy['resolution']} px "
            f"({plan.proxy_source}), {s.epochs} epoch{'' if s.epochs == 1 else 's'} of {images}, split dropout {drops}")


def gap_report(plan, table) -> str:
    """``confirm.md``: per network the three accuracies, Kendall τ between each pair of them,
    medians and feasibility per method."""
    s = plan.settings
    p = s.cell.loss
    done = table["retrain_acc"].is_not_null().sum()
    lines = [
        f"# Surrogate vs re-trained accuracy: T_th = {s.cell.threshold_ms:g} ms, p = {p:g}",
        "",
        f"Sweep `{s.results}`: the final (arch, split) of {table.height} runs "
        f"({', '.join(s.cell.methods)}; seeds {', '.join(str(x) for x in sorted(set(table['seed'].to_list())))}), "
        f"{setting_text(plan)}; tested on the test split with loss p at the split. "
        f"{done} of {table.height} networks re-trained so far.",
        "",
        provenance(plan),
        "",
        f"## Per network (accuracy at p = {p:g}, %)",
        "",
        "| method | seed | split | T (ms) | feasible | surrogate | supernet | re-trained | re-trained - surrogate |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.iter_rows(named=True):
        gap = None if r["retrain_acc"] is None else r["retrain_acc"] - r["surrogate_acc"]
        lines.append(f"| {r['method']} | {r['seed']} | {r['split']} | {r['T_ms']:.2f} | {'yes' if r['feasible'] else 'no'} "
                     f"| {_pct(r['surrogate_acc'])} | {_pct(r['supernet_acc'])} | {_pct(r['retrain_acc'])} | {_pct(gap)} |")
    lines += ["", f"## Rank agreement across the networks (Kendall τ-b, at p = {p:g})", "",
              "| columns | τ | networks |", "|---|---|---|"]
    for a, b, tau, n in rank_agreement(table):
        lines.append(f"| {LABEL[a]} vs {LABEL[b]} | {'' if math.isnan(tau) else f'{tau:.2f}'} | {n} |")
    per = rank_agreement_per_surrogate(table)
    if len({sid for sid, *_ in per}) > 1:
        lines += ["", "Among the networks one surrogate judged (across surrogates τ also counts their offset):", "",
                  "| surrogate | methods | columns | τ | networks |", "|---|---|---|---|---|"]
        for sid, methods, a, tau, n in per:
            lines.append(f"| {sid} | {', '.join(methods)} | {LABEL[a]} vs re-trained "
                         f"| {'' if math.isnan(tau) else f'{tau:.2f}'} | {n} |")
    lines += ["", f"## Per method (medians, accuracy in % at p = {p:g})", "",
              "| method | networks | feasible (T <= T_th) | T (ms) | surrogate | supernet | re-trained |",
              "|---|---|---|---|---|---|---|"]
    for m in s.cell.methods:
        g = table.filter(table["method"] == m)
        lines.append(f"| {m} | {g.height} | {int(g['feasible'].sum())}/{g.height} | {_median(g['T_ms'].to_list()):.2f} "
                     f"| {_pct(_median(g['surrogate_acc'].to_list()))} | {_pct(_median(g['supernet_acc'].to_list()))} "
                     f"| {_pct(_median(g['retrain_acc'].to_list()))} |")
    lines += ["", "How to read it: the surrogate column is what the sweep reports; the re-trained column is the",
              "ground truth at this proxy budget. τ near 1 means the sweep's accuracy columns order the networks",
              "as re-training does; near 0, their order says nothing. The gap column shows the offset (a proxy",
              "budget well below convergence shifts every re-trained accuracy down, which τ ignores).", ""]
    return "\n".join(lines)


def figure_png(plan, table) -> bytes:
    """``confirm.png``: re-trained accuracy at the cell's p vs T (one marker per method, T_th as a
    vertical line), and the median re-trained (solid) and surrogate (dashed) accuracy vs p."""
    import matplotlib

    matplotlib.use("Agg")
    from nascsim.sweep.plots import MARKERS, METHOD_COLOURS, OTHER_COLOURS, _figure, _title

    s = plan.settings
    p = s.cell.loss
    fig, (ax, ax2) = _figure(2, 5.2, 4.2)
    for i, m in enumerate(s.cell.methods):
        colour = METHOD_COLOURS.get(m, OTHER_COLOURS[i % len(OTHER_COLOURS)])
        g = table.filter((table["method"] == m) & table["retrain_acc"].is_not_null())
        ok = int(g["feasible"].sum())
        ax.scatter(g["T_ms"].to_numpy(), 100 * g["retrain_acc"].to_numpy(), s=30, alpha=0.8, color=colour,
                   marker=MARKERS[i % len(MARKERS)], label=f"{m} ({ok}/{g.height} feasible)")
        curve = [_median(table.filter(table["method"] == m)[f"retrain_acc_{p_suffix(q)}"].to_list()) for q in plan.ps]
        pred = [_median(table.filter(table["method"] == m)[f"surrogate_acc_{p_suffix(q)}"].to_list()) for q in plan.ps]
        xs = [q for q, v in zip(plan.ps, curve) if v is not None]
        if xs:
            ax2.plot(xs, [100 * v for v in curve if v is not None], color=colour, marker=MARKERS[i % len(MARKERS)],
                     label=f"{m} re-trained")
        xs = [q for q, v in zip(plan.ps, pred) if v is not None]
        if xs:
            ax2.plot(xs, [100 * v for v in pred if v is not None], color=colour, linestyle="--", label=f"{m} surrogate")
    ax.axvline(s.cell.threshold_ms, color="k", linestyle="--", linewidth=1, label=f"T_th = {s.cell.threshold_ms:g} ms")
    ax.set_xlabel("end-to-end latency T (ms)")
    ax.set_ylabel(f"re-trained accuracy at p = {p:g} (%)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)  # below: no marker hidden
    curves = bool(ax2.get_lines())
    ax2.axvline(p, color="k", linestyle=":", linewidth=1)
    ax2.set_xlabel("loss rate p at the split")
    ax2.set_ylabel("median accuracy (%)")
    if curves:
        ax2.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    done = int(table["retrain_acc"].is_not_null().sum())
    _title(fig, f"re-trained final models, T_th = {s.cell.threshold_ms:g} ms, p = {p:g} ({done}/{table.height} networks); "
                f"{setting_text(plan)}", textwrap.shorten(provenance(plan), 400))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    return buf.getvalue()


def read_table(path: str | Path):
    """(table, metadata) of a ``confirm.parquet``."""
    import polars as pl
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    return pl.read_parquet(path), json.loads(meta.get(METADATA_KEY.encode(), b"{}"))
