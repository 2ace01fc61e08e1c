"""The Python API: :func:`query`, :func:`search` and :func:`sweep`, exported from ``nascsim``.

In the manner of HW-NAS-Bench's and NAS-Bench-301's query APIs: plain inputs (names or objects),
plain outputs (a dict for one answer, a polars DataFrame for many; ``.to_pandas()`` works)::

    >>> import nascsim
    >>> arch = ["k3_e6"] * 8 + ["skip"] * 14
    >>> r = nascsim.query(arch, split=8, p=0.2)                 # one (arch, split): a dict
    >>> round(r["T_ms"], 2), r["payload_bits"], 0 < r["acc"] < 1
    (59.28, 262144.0, True)
    >>> frame = nascsim.query([arch, arch], split=[4, 8])      # many: a polars DataFrame
    >>> frame.select("split", "T_comm_ms").rows()
    [(4, 98.304), (8, 32.768)]

Accuracies, losses and l_SC are fractions and nats as the surrogate gives them (``acc`` 0.27 is
27%); latency in ms, payload in bits, FLOPs as counted by :mod:`nascsim.hw.flops`.

Plug-in points (see docs/plugins.md):

- ``tables=FILE``: a latency table in the schema of ``tables/README.md``; its ``<device>_latency``
  columns name the devices ``head`` and ``tail`` may take. The shipped table is never written.
- ``surrogate=...``: a role name of the shipped pair (``"dropout"``, ``"no_dropout"``), a
  surrogate file, a :class:`~nascsim.surrogate.Surrogate`, or -- for :func:`query` only -- any
  object with the predictor protocol (:class:`Predictor`). :func:`search` and :func:`sweep` run
  the numba engine, which walks the fitted trees of a nascsim surrogate (``surrogate.arrays``),
  so they need fitted nascsim surrogates (files or objects).
- methods: :func:`nascsim.register_method` (:mod:`nascsim.methods.registry`).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Protocol, Sequence

import numpy as np

from nascsim._args import check_names, integer, integers, numbers_array, plain, refuse_unknown_keywords

ROLES = ("dropout", "no_dropout")


class Predictor(Protocol):
    """What :func:`query` needs of an accuracy model (a :class:`~nascsim.surrogate.Surrogate` is
    one). ``archs`` (n, 22) int64 op indices, ``splits`` (n,) int64, ``ps`` (n,) float64 loss
    rates; ``target`` is ``"loss"`` (nats), ``"acc"`` (fraction) or ``"lsc"`` (eq. 4b's mean loss
    over the loss set; ``ps`` ignored). Returns float64 arrays of shape (n,).

    Optional: ``noise_sd(target, archs, splits, ps)`` (sd of one evaluation; NaN columns when
    absent) and the attributes ``id``, ``dataset``, ``classes`` (default 10) and ``space``
    (checked against the query's space when present).
    """

    def predict(self, target: str, archs: np.ndarray, splits: np.ndarray, ps: np.ndarray) -> np.ndarray: ...


# -- names or objects ---------------------------------------------------------------------------

def _space(space):
    from nascsim.space import Space, get_space

    return space if isinstance(space, Space) else get_space(space)


def _tables_path(tables) -> str | None:
    """An absolute path string for a tables file (so that worker processes find it), checked to be
    a readable table; None for the shipped one."""
    if tables is None:
        return None
    from nascsim.hw.tables import load_tables

    path = Path(tables).expanduser().resolve()
    load_tables(path)  # a one-line error naming the file when it is not a table
    return str(path)


def _load_surrogate(value, space: str | None = None):
    """A :class:`~nascsim.surrogate.Surrogate` from a role name of the shipped pair, a file or an
    object (objects pass through unchanged)."""
    if isinstance(value, str) and value in ROLES:
        from nascsim.surrogate import default_surrogates

        return default_surrogates(space or "fbnet")[value]
    if isinstance(value, (str, os.PathLike)):
        from nascsim.surrogate import load_surrogate

        return load_surrogate(value)
    return value


def _is_fitted(s) -> bool:
    from nascsim.surrogate import Surrogate

    return isinstance(s, Surrogate)


def surrogate_roles(space: str = "fbnet", surrogate=None, dropout=None, no_dropout=None) -> dict:
    """``{"dropout": s, "no_dropout": s}`` for the search of one space.

    ``surrogate`` fills both roles; ``dropout`` / ``no_dropout`` fill (or override) one role each;
    a role left open takes the shipped default of ``space``. Each value is a file, a fitted
    :class:`~nascsim.surrogate.Surrogate` or a role name of the shipped pair.
    """
    given = {"dropout": dropout if dropout is not None else surrogate,
             "no_dropout": no_dropout if no_dropout is not None else surrogate}
    out = {}
    for role, value in given.items():
        s = _load_surrogate(value if value is not None else role, space)
        if not _is_fitted(s):
            raise TypeError(
                f"the {role} surrogate is a {type(s).__name__}, not a fitted nascsim Surrogate: the numba search "
                "walks a fitted surrogate's tree arrays; pass a surrogate file or object (any predictor works "
                "with nascsim.query)")
        if s.space != space:
            raise ValueError(f"the {role} surrogate {s.id!r} was fitted on the {s.space} space, not {space!r}")
        out[role] = s
    return out


def same_in_both_roles(roles: dict) -> bool:
    """Whether one surrogate (by content) holds both roles."""
    a, b = roles["dropout"], roles["no_dropout"]
    return a is b or a.doc == b.doc


def role_warning(roles: dict, methods: Iterable[str]) -> str | None:
    """The warning due when one surrogate holds both roles and the methods depend on both (then
    ``hwnas`` and ``hwnas-dropout`` give equal rows, and no method is judged by a supernet trained
    the way its final model is); None otherwise."""
    from nascsim.methods.registry import roles_used

    if not same_in_both_roles(roles) or roles_used(methods) != set(ROLES):
        return None
    return ("one surrogate holds both roles (dropout and no_dropout): hwnas and hwnas-dropout will give equal "
            "rows; give --surrogate-dropout and --surrogate-no-dropout (surrogate_dropout=, "
            "surrogate_no_dropout=) to tell them apart")


def surrogate_label(surrogate=None, dropout=None, no_dropout=None) -> str:
    """What a sweep's ``sweep.toml`` records of its surrogates (and :func:`parse_surrogate_label`
    reads back): ``"default"``, one absolute path (both roles), or
    ``"dropout=<path|default>;no_dropout=<path|default>"``; a role name of the shipped pair is
    written ``shipped:<role>``, an object ``object:<id>`` (not replayable)."""
    def one(v):
        if v is None:
            return None
        if isinstance(v, str) and v in ROLES:
            return f"shipped:{v}"
        if isinstance(v, (str, os.PathLike)):
            return str(Path(v).expanduser().resolve())
        return f"object:{getattr(v, 'id', type(v).__name__)}"

    d = one(dropout if dropout is not None else surrogate)
    n = one(no_dropout if no_dropout is not None else surrogate)
    if d is None and n is None:
        return "default"
    if d == n:
        return d
    return f"dropout={d or 'default'};no_dropout={n or 'default'}"


def parse_surrogate_label(label: str) -> dict:
    """Inverse of :func:`surrogate_label`: keyword arguments for :func:`surrogate_roles`."""
    def value(text: str) -> str:
        if text.startswith("object:"):
            raise ValueError(f"the sweep ran on a surrogate object ({text}), not a file; it cannot be replayed")
        return text.removeprefix("shipped:")

    if label == "default":
        return {}
    if not label.startswith("dropout="):
        return {"surrogate": value(label)}
    out = {}
    for part in label.split(";"):
        role, _, text = part.partition("=")
        if role not in ROLES:
            raise ValueError(f"malformed surrogate entry {label!r}")
        if text != "default":
            out[role] = value(text)
    return out


# -- JSON -----------------------------------------------------------------------------------------

def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float written as a string (``"inf"``, ``"-inf"``, ``"nan"``,
    which ``float()`` reads back), numpy scalars and arrays as Python values: strict JSON (no
    ``Infinity``, which is not JSON)."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def to_json(obj: Any) -> str:
    """Strict JSON text of a record (see :func:`json_safe`)."""
    return json.dumps(json_safe(obj), allow_nan=False)


# -- query ----------------------------------------------------------------------------------------

def _archs(arch, space) -> tuple[np.ndarray, bool]:
    """(n, 22) op indices and whether one architecture was given: a string or a flat sequence of
    op names / indices is one; a sequence of those, or an (n, 22) array, is many."""
    from nascsim.space import parse_arch

    if isinstance(arch, str):
        return parse_arch(arch, space)[None, :], True
    if isinstance(arch, np.ndarray):
        if arch.ndim == 1:
            return parse_arch(arch, space)[None, :], True
        return np.stack([parse_arch(a, space) for a in arch]), False
    items = list(arch)
    if items and isinstance(items[0], (list, tuple, np.ndarray)) or (items and isinstance(items[0], str) and "," in items[0]):
        return np.stack([parse_arch(a, space) for a in items]), False
    return parse_arch(items, space)[None, :], True


@refuse_unknown_keywords
def query(arch, split, p: float | Sequence[float] = 0.0, *, space="fbnet", head: str = "raspi4",
          tail: str = "edgegpu", bits: float = 32, bandwidth: float = 8e6, source: str | None = None,
          classes: int | None = None, surrogate="dropout", tables=None, noisy: bool = False,
          seed: int | None = None):
    """Latency breakdown (eqs. 3, 8), payload, FLOPs and the surrogate's expected loss, accuracy
    and l_SC (eq. 4b) with their noise sd, for one or many (arch, split, p).

    ``arch``: one architecture (22 op names or indices, or ``"k3_e1,...,skip"``) or many (a list
    of those, or an (n, 22) array); ``split`` (integers: Python or numpy, not floats or bools) and
    ``p`` (the packet-loss rate; the ``loss`` of :func:`search` and :func:`sweep`, while this
    function's ``loss`` column is the surrogate's loss in nats) a value or a sequence, broadcast
    against the architectures. ``space``: a name or a :class:`~nascsim.space.Space`. A keyword
    this function does not take is refused (``TypeError`` with the likely meant name, e.g.
    ``loss=`` -> ``p``). ``surrogate``: see the module docstring (None: latency only). ``classes`` defaults to the surrogate's (10
    without one). ``tables``: a latency-table file (devices named by its columns).

    Returns a dict when one architecture, one split and one p were given, else a polars
    DataFrame with one row per (arch, split, p) and the same keys as columns: ``arch`` (op
    names), ``split``, ``p``, ``T_head_ms``, ``T_comm_ms``, ``T_tail_ms``, ``T_ms``,
    ``payload_elements``, ``payload_bits``, ``head_flops``, ``tail_flops``, ``flops``,
    ``E_head_mJ`` (NaN without an energy table), and with a surrogate ``loss``, ``acc``, ``l_sc``,
    ``loss_sd``, ``acc_sd``, ``l_sc_sd`` (sd of one evaluation on the surrogate's evaluation batch;
    NaN when the predictor has no ``noise_sd``), ``surrogate``, ``dataset`` and ``provenance`` (the
    surrogate, its data and whether its model card calls it provisional, in one line).

    ``noisy=True`` (as NAS-Bench-301's ``predict(with_noise=True)``): ``loss``, ``acc`` and
    ``l_sc`` are each one evaluation's value instead of the expectation, drawn around it with its
    ``*_sd`` (one evaluation on the surrogate's evaluation batch; each row and quantity its own
    draw, accuracy clipped to [0, 1]) from ``seed`` (see :func:`noisy_sample`).

    >>> r = query("k3_e1," * 21 + "k3_e1", split=22, surrogate=None)   # latency only
    >>> round(r["T_head_ms"] + r["T_comm_ms"] + r["T_tail_ms"], 3), r["payload_elements"]
    (35.95, 5632)
    """
    from nascsim.hw.latency import breakdown_batch, build_latency_model
    from nascsim.space import arch_names
    from nascsim.validate import check_field
    from nascsim.surrogate.provenance import provenance_line

    split_given, p_given = integers("split", split), numbers_array("p", p)
    for name, value in (("head", head), ("tail", tail), ("bits", bits), ("bandwidth", bandwidth), ("source", source)):
        check_field(name, plain(value))
    if classes is not None:
        classes = integer("classes", classes)
    sp = _space(space)
    archs, one_arch = _archs(arch, sp)
    scalar = one_arch and split_given.ndim == 0 and p_given.ndim == 0
    n = np.broadcast_shapes((archs.shape[0],), np.atleast_1d(split_given).shape, np.atleast_1d(p_given).shape)[0]
    archs = np.ascontiguousarray(np.broadcast_to(archs, (n, sp.n_layers)))
    splits = np.ascontiguousarray(np.broadcast_to(np.atleast_1d(split_given), (n,)))
    ps = np.ascontiguousarray(np.broadcast_to(np.atleast_1d(p_given), (n,)))
    if np.any(~np.isfinite(ps)) or np.any((ps < 0) | (ps >= 1)):
        bad = ps[~((ps >= 0) & (ps < 1))][0]
        raise ValueError(f"loss rate must be in [0, 1), got {bad:g}")
    sur = _load_surrogate(surrogate, sp.name) if surrogate is not None else None
    if sur is not None and getattr(sur, "space", sp.name) != sp.name:
        raise ValueError(f"surrogate {getattr(sur, 'id', sur)!r} was fitted on the {sur.space} space, not {sp.name!r}")
    if classes is None:
        classes = int(getattr(sur, "classes", 10)) if sur is not None else 10
    model = build_latency_model(sp, head, tail, source, bits, bandwidth, classes, tables)
    out: dict[str, Any] = {"arch": [arch_names(a, sp) for a in archs], "split": splits, "p": ps}
    out.update(breakdown_batch(model, archs, splits))
    out["flops"] = out["head_flops"] + out["tail_flops"]
    if sur is not None:
        zeros = np.zeros(n)
        for key, target, pp in (("loss", "loss", ps), ("acc", "acc", ps), ("l_sc", "lsc", zeros)):
            out[key] = np.asarray(sur.predict(target, archs, splits, pp), dtype=np.float64)
            sd = getattr(sur, "noise_sd", None)
            out[f"{key}_sd"] = np.asarray(sd(target, archs, splits, pp), dtype=np.float64) if sd else np.full(n, np.nan)
        out["surrogate"] = [str(getattr(sur, "id", type(sur).__name__))] * n
        out["dataset"] = [str(getattr(sur, "dataset", ""))] * n
        out["provenance"] = [provenance_line([sur])] * n
    if noisy:
        noisy_sample(out, seed)
    if scalar:
        row = {k: (v[0] if isinstance(v, list) else v[0].item()) for k, v in out.items()}
        row["E_head_mJ"] = None if not math.isfinite(row["E_head_mJ"]) else row["E_head_mJ"]
        return row
    import polars as pl

    return pl.DataFrame(out)


def noisy_sample(out: dict, seed: int | None) -> None:
    """Replace the expected ``loss``, ``acc`` and ``l_sc`` of query columns ``out`` by one
    evaluation's values: each + its sd x N(0, 1), drawn in that order (n draws per quantity) from
    ``nascsim.core.engine.make_rng(seed)`` (fresh entropy when None); ``acc`` clipped to [0, 1]."""
    from nascsim.core.engine import make_rng

    if "loss" not in out:
        raise ValueError("noisy=True needs a surrogate (it samples the surrogate's noise)")
    if not all(np.all(np.isfinite(out[f"{k}_sd"])) for k in ("loss", "acc", "l_sc")):
        raise ValueError("noisy=True needs a predictor with noise_sd (a fitted nascsim surrogate has one)")
    rng = np.random.default_rng() if seed is None else make_rng(seed)
    for key in ("loss", "acc", "l_sc"):
        out[key] = out[key] + out[f"{key}_sd"] * rng.standard_normal(len(out[key]))
    out["acc"] = np.clip(out["acc"], 0.0, 1.0)


def query_devices(arch, split, p: float | Sequence[float] = 0.0, *, heads: Sequence[str] | None = None,
                  tails: Sequence[str] | None = None, tables=None, **options):
    """:func:`query` for every (head, tail) pair of devices at once (HW-NAS-Bench answers for all
    its devices in one query): a polars DataFrame with ``head`` and ``tail`` first, one row per
    device pair and (arch, split, p). ``heads`` / ``tails``: the devices to pair (default: every
    device of the latency table, each head with every other device as tail). ``options``: any
    other argument of :func:`query` (``surrogate``, ``bits``, ``bandwidth``, ``noisy``, ...).

    >>> frame = query_devices("k3_e1," * 21 + "k3_e1", split=22, surrogate=None)
    >>> frame.height, frame.filter((frame["head"] == "raspi4") & (frame["tail"] == "edgegpu"))["T_ms"].round(2).to_list()
    (20, [35.95])
    """
    import polars as pl

    from nascsim.hw.tables import load_tables

    if "head" in options or "tail" in options:
        raise ValueError("query_devices pairs every device: give heads= / tails= (lists), not head= / tail=")
    devices = load_tables(tables).devices
    heads, tails = list(heads or devices), list(tails or devices)
    if "surrogate" in options:
        options["surrogate"] = _load_surrogate(options["surrogate"], _space(options.get("space", "fbnet")).name) \
            if options["surrogate"] is not None else None
    frames = []
    for h in heads:
        for t in tails:
            if h == t:
                continue
            r = query(arch, split, p, head=h, tail=t, tables=tables, **options)
            r = pl.DataFrame([r]) if isinstance(r, dict) else r
            frames.append(r.select(pl.lit(h).alias("head"), pl.lit(t).alias("tail"), pl.all()))
    if not frames:
        raise ValueError("no (head, tail) pair of two different devices to query")
    return pl.concat(frames, how="vertical_relaxed")


# -- search ---------------------------------------------------------------------------------------

_SEARCH_ARGUMENTS = ("method", "threshold_ms", "loss", "seed", "space", "surrogate", "surrogate_dropout", "force",
                     "surrogate_no_dropout", "tables", "trace")


def _search_options() -> tuple[str, ...]:
    from dataclasses import fields

    from nascsim.config import SearchConfig

    return tuple(f.name for f in fields(SearchConfig) if f.name not in _SEARCH_ARGUMENTS)


SEARCH_OPTIONS = _search_options()  # the SearchConfig fields search() takes as **options


def search(method: str = "nasc", threshold_ms: float = 30.0, loss: float = 0.0, seed: int = 0, *, space="fbnet",
           surrogate=None, surrogate_dropout=None, surrogate_no_dropout=None, tables=None, trace: bool = False,
           force: bool = False, **options) -> dict:
    """One search; returns its result record, the object ``nascsim search --json`` prints.

    ``method``: a built-in (``nasc``, ``hwnas``, ``hwnas-dropout``, ``random``) or registered
    method. ``options``: any other :class:`~nascsim.config.SearchConfig` field (``steps``,
    ``lam``, ``eps_lat``, ``loss_set``, ``head``, ``tail``, ``fixed_split`` with
    ``split_search=False``, ...). Surrogates: ``surrogate`` for both roles, or
    ``surrogate_dropout`` / ``surrogate_no_dropout`` (files or fitted surrogates; the shipped pair
    by default); a ``UserWarning`` when one surrogate holds both roles of a method that needs two.
    With ``trace=True`` the record holds ``trace``, a polars DataFrame of the per-step θ entropy,
    Δ, ε_θ, each sample's objective and the split marginal (what ``--trace`` writes).

    The record's accuracy is a fraction; ``Delta_max`` is ``inf`` unless set (``--json`` writes
    non-finite numbers as strings, see :func:`json_safe`); ``provenance`` names the surrogates
    that searched and judged it, their data and whether their model cards call them provisional.
    A search of more than :data:`nascsim.limits.MAX_SEARCH_SAMPLES` samples (steps x λ) needs
    ``force=True``.

    Values are taken as given, never rounded or converted: an integer field (``seed``,
    ``steps``, ``lam``, ``fixed_split``, ...) takes a Python or numpy integer, not a float or a
    bool; a number field a number, not text. Anything else, and any keyword that names no
    option, is refused (``ValueError`` naming the value; ``TypeError`` naming the keyword, with
    the name it was probably meant to be).
    """
    from nascsim.config import SearchConfig
    from nascsim.methods import run_search
    from nascsim.methods.common import validate
    from nascsim.surrogate.provenance import of_record

    check_names("search", options, SEARCH_OPTIONS, hints=_SEARCH_ARGUMENTS)
    if not isinstance(trace, bool):
        raise ValueError(f"trace must be True or False, got {trace!r}")
    sp = _space(space)
    if isinstance(options.get("loss_set"), np.ndarray):
        options["loss_set"] = options["loss_set"].tolist()
    config = SearchConfig(method=method, threshold_ms=threshold_ms, loss=loss, seed=seed,
                          space=sp.name, tables=_tables_path(tables), **options)
    validate(config)
    from nascsim.limits import check_search_work

    check_search_work(config.steps, config.lam, force, "force=True")
    roles = surrogate_roles(sp.name, surrogate, surrogate_dropout, surrogate_no_dropout)
    message = role_warning(roles, [method])
    if message:
        warnings.warn(message, UserWarning, stacklevel=2)
    rec = run_search(config, roles, trace=trace)
    rec["provenance"] = of_record(rec, roles)
    raw = rec.pop("_trace", None)
    if trace:
        if raw is None:
            raise ValueError(f"method {method!r} recorded no trace (random search has no distribution)")
        rec["trace"] = trace_frame(raw)
    return rec


def trace_frame(trace: dict):
    """A search trace (``run_search(..., trace=True)["_trace"]``) as a polars DataFrame: ``step``,
    ``theta_entropy``, ``Delta``, ``eps_theta``, ``f_sample<i>`` and ``theta_split_<k>``."""
    import polars as pl

    steps = len(trace["entropy"])
    cols = {"step": np.arange(1, steps + 1), "theta_entropy": trace["entropy"], "Delta": trace["Delta"],
            "eps_theta": trace["eps"]}
    for i in range(trace["f"].shape[1]):
        cols[f"f_sample{i}"] = trace["f"][:, i]
    if trace.get("split_marginal") is not None:
        for k in range(trace["split_marginal"].shape[1]):
            cols[f"theta_split_{k:02d}"] = trace["split_marginal"][:, k]
    return pl.DataFrame(cols)


# -- sweep ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MethodsSearch:
    """The sweep's per-run search with the user's registered methods attached, so that worker
    processes (which start with only the built-in and entry-point methods) know them too."""

    methods: tuple = ()

    def __call__(self, configs, surrogates):
        from nascsim.methods import run_search_group
        from nascsim.methods.registry import ensure_registered

        ensure_registered(dict(self.methods))
        return run_search_group(configs, surrogates)


class _Default:
    """A parameter's default value, told apart from the same value passed (so that a value and
    its older alias given together are refused, whatever the value); shown as the value."""

    def __init__(self, value):
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


# sweep's older argument names, kept working (README, scripts): old -> the name search() uses
SWEEP_ALIASES = {"thresholds": "threshold_ms", "losses": "loss", "methods": "method"}


def sweep(threshold_ms=_Default("10:40:5"), loss=_Default("0:0.5:0.1"),
          method=_Default(("nasc", "hwnas", "hwnas-dropout")), seeds=_Default(25), *,
          out=None, jobs: int | None = None, executor: str = "local", address: str | None = None,
          surrogate=None, surrogate_dropout=None, surrogate_no_dropout=None, tables=None,
          progress=None, force: bool = False, **axes):
    """A grid of searches; returns one row per run as a polars DataFrame (``.to_pandas()`` works).

    The arguments of :func:`search`, each one value or several (an axis): ``threshold_ms`` and
    ``loss``: a number, a sequence, or text in the CLI's syntax (``"10:40:5"``, ``"0,0.2"``);
    ``method``: names (a sequence or ``"nasc,hwnas"``); ``seeds``: a count (seeds 0..N-1, the
    same for every method: paired) or a sequence of seeds, or instead ``seed=``, the seed or
    seeds themselves as in :func:`search`. ``axes``: any other
    :class:`~nascsim.config.SearchConfig` field: ``eps_lat=[0.5, 1, 2]``, ``steps=2000``,
    ``space="extended"``. The older names ``thresholds``, ``losses`` and ``methods`` still work
    (the first three arguments, by position, are the same). Values are checked as in
    :func:`search` (integers are integers: no floats, no bools); a keyword that names no field
    is refused (``TypeError``, with the name it was probably meant to be).

    Columns: those of the result store (``polars.read_parquet("DIR/runs")``) and ``provenance``,
    the surrogates that searched and judged each run, their data and whether their model cards
    call them provisional.

    ``out``: a result folder (``nascsim sweep --out``): runs already stored there are not run
    again (resume), and the frame holds this grid's rows from it; None runs in a temporary folder.
    ``jobs``, ``executor``, ``address``: as on the command line (``jobs=None``: all cores; the
    worker processes do not re-run the calling script, so a script needs no
    ``if __name__ == "__main__":`` guard). Surrogates as in :func:`search`. ``progress``: None
    (quiet) or a callable ``f(n)`` called with the number of runs of each committed batch. A grid
    of more than :data:`nascsim.sweep.grid.MAX_RUNS` runs, or more work than the limits of
    :mod:`nascsim.limits` (steps x λ per search and summed), needs ``force=True``.
    """
    from nascsim.methods.common import validate
    from nascsim.methods.registry import portable_runs
    from nascsim.limits import check_sweep_work
    from nascsim.sweep.grid import Grid, check_size
    from nascsim.sweep.run import execute, pending_configs, surrogate_id
    from nascsim.sweep.store import ResultStore, SweepSpec

    given = _sweep_axes(dict(threshold_ms=threshold_ms, loss=loss, method=method), seeds, axes)
    jobs = _sweep_options(out, jobs, progress)
    if "space" in given:
        sp = given["space"]
        given["space"] = [_space(s).name for s in ([sp] if isinstance(sp, str) or not isinstance(sp, (list, tuple)) else sp)]
    if tables is not None:
        given["tables"] = [_tables_path(tables)]
    grid = Grid.build(**given)
    check_size(grid.n_runs, grid.sizes(), force)
    probe = Grid(tuple((n, v[:1] if n == "seed" else v) for n, v in grid.values))
    for config in probe.cells():
        validate(config)
    d = grid.as_dict
    sets = {s: surrogate_roles(s, surrogate, surrogate_dropout, surrogate_no_dropout) for s in d["space"]}
    message = role_warning(next(iter(sets.values())), d["method"])
    if message:
        warnings.warn(message, UserWarning, stacklevel=2)
    cells = list(grid.cells())
    spec = SweepSpec(grid, surrogate_label(surrogate, surrogate_dropout, surrogate_no_dropout), surrogate_id(sets),
                     ("nascsim.sweep(...)",))
    search_fn = MethodsSearch(tuple(portable_runs(d["method"]).items()))
    with tempfile.TemporaryDirectory(prefix="nascsim-sweep-") as tmp:
        with ResultStore.create(Path(out) if out is not None else Path(tmp) / "sweep", spec) as store:
            store.lock()  # an existing folder: one writer at a time, before reading what is stored
            todo = pending_configs(cells, store.done_hashes())
            check_sweep_work([grid], len(todo), len(cells), force, "force=True")
            execute(todo, store, sets, jobs=jobs, executor=executor, address=address, search=search_fn,
                    on_commit=progress)
            frame = store.read()
    import polars as pl

    order = {c.content_hash(): i for i, c in enumerate(cells)}
    frame = (frame.filter(pl.col("config_hash").is_in(list(order)))
             .with_columns(pl.col("config_hash").replace_strict(order, return_dtype=pl.Int64).alias("_order"))
             .sort("_order").drop("_order"))
    return with_provenance(frame, [s for roles in sets.values() for s in roles.values()])


def with_provenance(frame, surrogates):
    """``frame`` (sweep rows) with a ``provenance`` column: per row, the line naming the
    surrogates that searched and judged it (:func:`nascsim.surrogate.provenance.provenance_line`)."""
    import polars as pl

    from nascsim.surrogate.provenance import provenance_line

    by_id = {s.id: s for s in surrogates}
    pairs = frame.select("surrogate", "search_surrogate").unique().rows()
    lines = {f"{a}\t{b}": provenance_line(by_id[i] for i in (a, b) if i in by_id) for a, b in pairs}
    key = pl.concat_str(pl.col("surrogate"), pl.col("search_surrogate").fill_null(""), separator="\t")
    return frame.with_columns(key.replace_strict(lines, return_dtype=pl.String).alias("provenance"))


def _axis(values):
    """Grid values from text, one value or a sequence (numpy scalars as the Python values they
    hold, so that the grid's checks see ``np.True_`` as the bool it is)."""
    if isinstance(values, (str, range)):
        return values  # text for the grid to parse; a range of ints, its size checked by the grid
    if not isinstance(values, Iterable):
        return [plain(values)]
    return [plain(v) for v in values]


def _sweep_axes(main: dict, seeds, axes: dict) -> dict:
    """The grid's fields from :func:`sweep`'s arguments: the main axes (an older alias in place
    of its name), the seeds (a count, a sequence, or ``seed=``) and the other fields in ``axes``
    (``TypeError`` for a keyword that names none, or for a value given under two names)."""
    from nascsim.sweep.grid import FIELD_NAMES

    axes = dict(axes)
    for old, name in SWEEP_ALIASES.items():
        if old in axes:
            if not isinstance(main[name], _Default):
                raise TypeError(f"sweep() got {name!r} and its older name {old!r}; give one")
            main[name] = axes.pop(old)
    fields = [f for f in FIELD_NAMES if f not in main and f != "tables"]
    check_names("sweep", axes, fields, hints=[*main, "seeds", *_SWEEP_OPTIONS])
    given = {name: _axis(v.value if isinstance(v, _Default) else v) for name, v in main.items()}
    if "seed" in axes:
        if not isinstance(seeds, _Default):
            raise TypeError("sweep() got 'seeds' (a count or the seeds) and 'seed' (the seeds); give one")
    else:
        axes["seed"] = _seed_values(seeds.value if isinstance(seeds, _Default) else seeds)
    return {**given, **{name: _axis(v) for name, v in axes.items()}}


_SWEEP_OPTIONS = ("out", "jobs", "executor", "address", "surrogate", "surrogate_dropout", "surrogate_no_dropout",
                  "tables", "progress", "force")


def _seed_values(seeds) -> list | range:
    """``seeds`` of :func:`sweep`: a count N (seeds 0..N-1) or a sequence of integer seeds (the
    grid checks their range)."""
    from nascsim._args import is_integer
    from nascsim.sweep.grid import MAX_RANGE_VALUES

    if is_integer(seeds):
        if seeds < 1:
            raise ValueError(f"seeds must be a count of at least 1 or a sequence of seeds, got {seeds}")
        return range(int(seeds))  # the grid refuses more than MAX_RANGE_VALUES
    if isinstance(seeds, range):
        return seeds
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise ValueError(f"seeds must be a count (an integer) or a sequence of seeds, got {seeds!r}")
    if hasattr(seeds, "__len__") and len(seeds) > MAX_RANGE_VALUES:
        raise ValueError(f"seeds: {len(seeds):,} seeds, more than {MAX_RANGE_VALUES:,}")
    return integers("seeds", list(seeds)).tolist()


def _sweep_options(out, jobs, progress) -> int | None:
    """``jobs`` of :func:`sweep` as an int (or None); ``ValueError`` naming a bad ``out``,
    ``jobs`` or ``progress``."""
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise ValueError(f"out must be a folder path or None, got {out!r}")
    if progress is not None and not callable(progress):
        raise ValueError(f"progress must be None or a callable f(n), got {progress!r}")
    if jobs is None:
        return None
    if integer("jobs", jobs) < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    return int(jobs)
