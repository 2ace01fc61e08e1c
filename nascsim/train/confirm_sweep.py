"""Re-training a sweep's cell: the paper's Fig. 2 with re-trained networks, and how far the
surrogate's accuracy can be trusted.

The paper's evidence (Fig. 2) is five final models per method at T_th = 30 ms and p = 0.2, each
re-trained stand-alone -- with split dropout 0.5 for NASC and HWNAS w/ dropout, without it for
HWNAS -- and tested with packet loss simulated at the split. A sweep reports, for the same cell, the
final (arch, split) of every run, its end-to-end latency T (eq. 3) and the accuracy the surrogate
predicts for it. :func:`confirm_cell` re-trains each of those networks
(:func:`nascsim.train.retrain.retrain`) and tabulates per network

- ``surrogate_acc``: the sweep's accuracy column (the surrogate of the method's final model at the
  cell's p; ``surrogate_acc_p*``: the same surrogate at every tested p);
- ``supernet_acc``: the supernet's accuracy of the pair on its held-out split (``--supernet``);
- ``retrain_acc``: the re-trained network's accuracy on the test split at the cell's p
  (``retrain_acc_p*``: at every tested p).

Proxy setting. Stand-alone networks are trained at the proxy setting (width, resolution;
:mod:`nascsim.train.proxy`) of the supernet behind the sweep's surrogates, read from their model
cards; a card that records none (written before proxy settings existed) means the full model.

Processes. ``jobs`` networks train at once, each in its own spawned process with one torch thread
(:mod:`nascsim._spawn`, :mod:`nascsim._children`); a network's result depends on its own seed and
settings only, so the table is the same whatever ``jobs``. Each network has its own folder under
the output folder (``<method>-seed<seed>``, with ``retrain.json`` when done): a rerun reads the
finished ones, resumes a cut one from its checkpoint and trains the rest. The table
(:mod:`nascsim.train.confirm_report`) is rewritten atomically after every finished network.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from nascsim.config import DEFAULT_LOSS_SET
from nascsim.space import get_space, parse_arch
from nascsim.train.confirm_report import dropout_of, write_outputs

FIG2_METHODS = ("nasc", "hwnas", "hwnas-dropout")
FIG2_THRESHOLD_MS = 30.0
FIG2_LOSS = 0.2
# Epochs per network on a CPU (the proxy budget; see ``nascsim confirm --help`` for the estimate).
DEFAULT_EPOCHS = 10
DONE_FILE = "retrain.json"
CHECKPOINT_FILE = "checkpoint.pt"
SUPERNET_CACHE = "supernet_acc.json"
LATENCY_REPEATS = 5  # CPU latency of the exported head and tail (recorded, not the sweep's T)


@dataclass(frozen=True)
class Cell:
    """Which runs of a sweep are re-trained: one (T_th, p) cell, some methods, some seeds (None:
    every seed the cell holds). The default is the paper's Fig. 2."""

    threshold_ms: float = FIG2_THRESHOLD_MS
    loss: float = FIG2_LOSS
    methods: tuple[str, ...] = FIG2_METHODS
    seeds: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Network:
    """One run's final candidate, as the sweep reports it."""

    method: str
    seed: int
    arch: tuple[int, ...]
    split: int
    T_ms: float
    surrogate_acc: float
    surrogate: str  # id of the surrogate that judged the final model (the sweep's ``surrogate``)
    space: str

    @property
    def folder(self) -> str:
        return f"{self.method}-seed{self.seed}"

    @property
    def role(self) -> str:
        """The surrogate role (hence the supernet) that judges this method's final model."""
        from nascsim.methods.common import EVAL_ROLE

        return EVAL_ROLE.get(self.method, "dropout")


def _close(column, value: float):
    import polars as pl

    return (pl.col(column) - value).abs() <= 1e-9 * max(1.0, abs(value))


def _values(xs) -> str:
    return ", ".join(f"{x:g}" if isinstance(x, float) else str(x) for x in sorted(set(xs)))


def select_cell(frame, cell: Cell, where: str) -> list[Network]:
    """The networks of ``cell`` in the sweep rows ``frame``, in the order of ``cell.methods`` then
    seed. ``ValueError`` in one line when the cell, a method or a seed is not in the rows, or when
    the rows hold several runs of one (method, seed) in the cell (another axis varies)."""
    import polars as pl

    from nascsim.sweep.grid import FIELD_NAMES

    need = {"method", "threshold_ms", "loss", "seed", "split", "T_ms", "accuracy", "surrogate"}
    missing = sorted(need - set(frame.columns)) + ([] if {"arch_idx", "arch"} & set(frame.columns) else ["arch"])
    if missing:
        raise ValueError(f"{where} is not a sweep's result (it lacks {', '.join(missing)})")
    f = frame.filter(_close("threshold_ms", cell.threshold_ms))
    if f.height == 0:
        raise ValueError(f"no runs at --threshold {cell.threshold_ms:g} in {where} (thresholds: "
                         f"{_values(frame['threshold_ms'].to_list())})")
    g = f.filter(_close("loss", cell.loss))
    if g.height == 0:
        raise ValueError(f"no runs at --loss {cell.loss:g} and threshold {cell.threshold_ms:g} in {where} "
                         f"(loss rates: {_values(f['loss'].to_list())})")
    have = set(g["method"].to_list())
    absent = [m for m in cell.methods if m not in have]
    if absent:
        raise ValueError(f"no runs of method {absent[0]} in the cell threshold {cell.threshold_ms:g}, loss {cell.loss:g} "
                         f"of {where} (methods: {_values(have)})")
    g = g.filter(pl.col("method").is_in(list(cell.methods)))
    seeds = sorted(set(g["seed"].to_list()))
    if cell.seeds is not None:
        for m in cell.methods:
            got = set(g.filter(pl.col("method") == m)["seed"].to_list())
            lost = [s for s in cell.seeds if s not in got]
            if lost:
                raise ValueError(f"no run of {m} with seed {lost[0]} in the cell threshold {cell.threshold_ms:g}, "
                                 f"loss {cell.loss:g} of {where} (seeds: {_values(got) or 'none'})")
        seeds = sorted(set(cell.seeds))
        g = g.filter(pl.col("seed").is_in(seeds))
    axes = [c for c in FIELD_NAMES if c in g.columns and c not in ("method", "threshold_ms", "loss", "seed")
            and g.select(pl.col(c).cast(pl.String) if c != "loss_set" else pl.col(c).list.eval(
                pl.element().cast(pl.String)).list.join("/")).n_unique() > 1]
    counts = g.group_by(["method", "seed"]).len()
    if counts["len"].max() > 1:
        m, s = counts.filter(pl.col("len") > 1).sort(["method", "seed"]).row(0)[:2]
        why = f"they differ in {', '.join(axes)}" if axes else "the store holds the run twice"
        raise ValueError(f"the cell threshold {cell.threshold_ms:g}, loss {cell.loss:g} of {where} holds several runs "
                         f"of {m} seed {s} ({why}); re-train from a sweep with one run per method and seed")
    order = {m: i for i, m in enumerate(cell.methods)}
    rows = sorted(g.to_dicts(), key=lambda r: (order[r["method"]], r["seed"]))
    out = []
    for r in rows:
        space = r.get("space") or "fbnet"
        sp = get_space(space)
        arch = r.get("arch_idx") if r.get("arch_idx") is not None else r.get("arch")
        out.append(Network(r["method"], int(r["seed"]), tuple(int(x) for x in parse_arch(arch, sp)), int(r["split"]),
                           float(r["T_ms"]), float(r["accuracy"]), str(r["surrogate"]), space))
    return out


# -- surrogates and the proxy setting -------------------------------------------------------------

def sweep_folder(results: str | os.PathLike) -> Path | None:
    """The sweep folder behind ``results`` (the folder itself, its ``runs/``, or a chunk in it);
    None for a parquet file outside a sweep folder."""
    from nascsim.sweep.store import RUNS_DIR, SWEEP_FILE

    p = Path(results)
    if p.is_dir():
        cands = [p, p.parent] if p.name == RUNS_DIR else [p]
    else:
        cands = [p.parent.parent] if p.parent.name == RUNS_DIR else []
    return next((c for c in cands if (c / SWEEP_FILE).is_file()), None)


def sweep_surrogates(results: str | os.PathLike, spaces: Sequence[str], ids: Sequence[str] = ()) -> list:
    """The surrogate objects the sweep ran on, read back from its ``sweep.toml`` (the files it
    records, unchanged since: their id must be the one recorded), then -- while some of ``ids``
    are still missing -- the shipped ones; the caller matches them to the rows by id. Those that
    cannot be loaded are left out."""
    from nascsim.surrogate.validate import SurrogateFileError

    found: list = []
    folder = sweep_folder(results)
    if folder is not None:
        from nascsim.api import parse_surrogate_label, surrogate_roles
        from nascsim.sweep.run import surrogate_id
        from nascsim.sweep.store import SWEEP_FILE, read_spec

        spec = read_spec(folder / SWEEP_FILE)
        try:
            roles = parse_surrogate_label(spec.surrogate)
            swept = dict.fromkeys(sp for g in spec.grids() for sp in g.as_dict["space"])
            sets = {sp: surrogate_roles(sp, **roles) for sp in swept}
            if surrogate_id(sets) == spec.surrogate_id:
                found += [s for r in sets.values() for s in r.values()]
        except (ValueError, TypeError, OSError, SurrogateFileError):
            pass
    if set(ids) <= {s.id for s in found}:
        return found
    from nascsim.surrogate import default_surrogates

    for space in spaces:
        try:
            found += list(default_surrogates(space).values())
        except (ValueError, OSError, SurrogateFileError):
            pass
    return found


def card_proxy(surrogate) -> dict | None:
    """``{"width", "resolution"}`` of the supernet behind ``surrogate`` as its model card records
    it (``card["supernet"]["recipe"]``, or the supernet record itself); None when the card records
    neither (a card written before proxy settings existed: the full model)."""
    card = getattr(surrogate, "card", None)
    rec = card.get("supernet") if isinstance(card, dict) else None
    if not isinstance(rec, dict):
        return None
    recipe = rec.get("recipe") if isinstance(rec.get("recipe"), dict) else rec
    if "width" not in recipe and "resolution" not in recipe:
        return None
    from nascsim.train.proxy import Proxy

    try:
        proxy = Proxy(float(recipe.get("width", 1.0)), int(recipe.get("resolution", 32)))
    except (TypeError, ValueError):
        raise ValueError(f"the model card of surrogate {surrogate.id!r} holds a bad proxy setting "
                         f"{ {k: recipe.get(k) for k in ('width', 'resolution')} }; pass --width and --resolution") from None
    return proxy.to_dict()


def proxy_setting(networks: Sequence[Network], surrogates: dict, width: float | None,
                  resolution: int | None) -> tuple[dict, str]:
    """(``{"width", "resolution"}``, where it came from) for the re-training. Given values win;
    otherwise the model cards of the surrogates that judged the networks, which must agree."""
    from nascsim.train.proxy import Proxy

    settings = {}
    for n in networks:
        s = surrogates.get(n.surrogate)
        settings[n.surrogate] = card_proxy(s) if s is not None else None
    known = {k: v for k, v in settings.items() if v is not None}
    distinct = {json.dumps(v, sort_keys=True) for v in known.values()}
    if len(distinct) > 1 and (width is None or resolution is None):
        detail = "; ".join(f"{k}: width {v['width']:g} at {v['resolution']} px" for k, v in sorted(known.items()))
        raise ValueError(f"the surrogates of the cell were fitted on supernets of different proxy settings ({detail}); "
                         "pass --width and --resolution")
    card = next(iter(known.values()), None)
    base = card or Proxy().to_dict()
    chosen = {"width": float(width if width is not None else base["width"]),
              "resolution": int(resolution if resolution is not None else base["resolution"])}
    Proxy(**chosen)
    if width is not None and resolution is not None:
        source = "given (--width, --resolution)"
    elif card is not None:
        source = "the surrogates' model card" + ("" if width is None and resolution is None else " and the options given")
    elif not surrogates or any(n.surrogate not in surrogates for n in networks):
        source = "full model (the surrogates are not at hand to read their model card)"
    else:
        source = "full model (the surrogates' model card records no proxy setting)"
    return chosen, source


# -- the plan -------------------------------------------------------------------------------------

@dataclass
class ConfirmSettings:
    """Everything one ``confirm`` of a cell needs; ``recipe`` holds the training knobs other than
    epochs, split dropout, width and resolution (:class:`nascsim.train.recipe.Recipe` fields)."""

    results: str
    data: str
    out: str
    cell: Cell = field(default_factory=Cell)
    epochs: int = DEFAULT_EPOCHS
    ps: tuple[float, ...] = DEFAULT_LOSS_SET
    jobs: int = 1
    width: float | None = None
    resolution: int | None = None
    dropout: dict = field(default_factory=dict)  # method -> split dropout, overriding PAPER_DROPOUT
    supernets: dict = field(default_factory=dict)  # role ("dropout" | "no_dropout") -> checkpoint
    recipe: dict = field(default_factory=dict)
    cache_dir: str | None = None
    device: str = "cpu"
    train_images: int | None = None
    bits: float = 32
    command: tuple[str, ...] = ()


@dataclass
class Plan:
    """The checked plan: networks, their recipes and folders, and what each folder holds."""

    settings: ConfirmSettings
    networks: list[Network]
    recipes: list[dict]  # Recipe.to_dict() per network
    state: list[str]  # "done" | "resume" | "new" per network
    ps: tuple[float, ...]
    proxy: dict
    proxy_source: str
    surrogates: dict  # id -> Surrogate (those at hand)
    sweep_rows: object  # the cell's rows of the sweep (polars), for the provenance line

    @property
    def out(self) -> Path:
        return Path(self.settings.out)


def _recipe_for(settings: ConfirmSettings, network: Network, proxy: dict) -> dict:
    from nascsim.train.recipe import Recipe

    kw = {**settings.recipe, "epochs": settings.epochs, "split_dropout": dropout_of(network.method, settings.dropout),
          "lambda_x": 1, **proxy}
    return Recipe(**kw).to_dict()


def _folder_state(folder: Path, network: Network, recipe: dict, ps: Sequence[float]) -> str:
    """"done", "resume" or "new"; ``ValueError`` when the folder holds a network of other settings
    (re-training it under this plan would mix two settings in one table)."""
    done, ckpt = folder / DONE_FILE, folder / CHECKPOINT_FILE
    other = f"{folder} holds a network re-trained with other settings"
    if done.exists():
        res = read_done(folder)
        if list(res.get("arch", [])) != list(network.arch) or res.get("split") != network.split:
            raise ValueError(f"{other} (another architecture or split); choose another --out")
        for k, v in recipe.items():
            if res.get("recipe", {}).get(k) != v:
                raise ValueError(f"{other} ({k} {res.get('recipe', {}).get(k)!r}, not {v!r}); choose another --out")
        if [round(r["p"], 9) for r in res.get("rows", [])] != [round(p, 9) for p in ps]:
            raise ValueError(f"{other} (tested at other loss rates); choose another --out")
        return "done"
    if ckpt.exists():
        from nascsim.train.checkpoint import load_checkpoint
        from nascsim.train.recipe import Recipe

        state = load_checkpoint(ckpt, "child")
        if list(state.get("arch", [])) != list(network.arch) or state.get("split") != network.split:
            raise ValueError(f"{other} (another architecture or split); choose another --out")
        stored = Recipe.from_dict(state["recipe"]).to_dict() if isinstance(state.get("recipe"), dict) else {}
        for k, v in recipe.items():
            if stored.get(k) != v:
                raise ValueError(f"{other} ({k} {stored.get(k)!r}, not {v!r}); choose another --out")
        return "resume"
    return "new"


def read_done(folder: Path) -> dict:
    """A finished network's ``retrain.json``."""
    from nascsim.atomic import read_regular_bytes
    from nascsim.safe_load import loads_json

    path = folder / DONE_FILE
    doc = loads_json(read_regular_bytes(path, "re-training result"), str(path))
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
        raise ValueError(f"{path} is not a re-training result")
    return doc


def plan(settings: ConfirmSettings) -> Plan:
    """Read the sweep, select the cell, resolve the surrogates, the proxy setting and every
    network's recipe, and check the output folder; writes nothing. ``ValueError`` /
    ``FileNotFoundError`` in one line for anything that does not fit."""
    import polars as pl

    from nascsim.config import check_method
    from nascsim.sweep.store import read_runs
    from nascsim.train.channel import check_bits, check_loss_rates

    check_bits(settings.bits)
    if settings.jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {settings.jobs}")
    for m in list(settings.cell.methods) + list(settings.dropout):
        check_method(m)
    for m, p in settings.dropout.items():
        if not (isinstance(p, (int, float)) and math.isfinite(p) and 0 <= p < 1):
            raise ValueError(f"split dropout of {m} must lie in [0, 1), got {p!r}")
    for role in settings.supernets:
        if role not in ("dropout", "no_dropout"):
            raise ValueError(f"--supernet role must be dropout or no_dropout, got {role!r}")
    ps = check_loss_rates(settings.ps)
    if not any(abs(p - settings.cell.loss) < 1e-9 for p in ps):
        ps = sorted(ps + [float(settings.cell.loss)])
    results = Path(settings.results)
    if not results.exists():
        raise FileNotFoundError(f"no sweep result at {results}")
    frame = read_runs(results)
    networks = select_cell(frame, settings.cell, str(results))
    spaces = sorted({n.space for n in networks})
    found = sweep_surrogates(results, spaces, [n.surrogate for n in networks])
    surrogates = {s.id: s for s in found}
    proxy, source = proxy_setting(networks, surrogates, settings.width, settings.resolution)
    recipes = [_recipe_for(settings, n, proxy) for n in networks]
    out = Path(settings.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} exists and is not a folder")
    if out.is_dir():
        from nascsim.atomic import check_tree

        check_tree(out, "output folder")
    state = [_folder_state(out / n.folder, n, r, ps) for n, r in zip(networks, recipes)]
    for role, ckpt in settings.supernets.items():
        if not Path(ckpt).exists():
            raise FileNotFoundError(f"--supernet {role}: no checkpoint at {ckpt}")
    keys = pl.DataFrame({"method": [n.method for n in networks], "seed": [n.seed for n in networks]})
    rows = frame.filter(_close("threshold_ms", settings.cell.threshold_ms) & _close("loss", settings.cell.loss)).join(
        keys, on=["method", "seed"], how="semi")
    return Plan(settings, networks, recipes, state, tuple(ps), proxy, source, surrogates, rows)


# -- surrogate and supernet accuracies ------------------------------------------------------------

def surrogate_curves(p: Plan) -> list[list[float] | None]:
    """Each network's accuracy predicted by the surrogate that judged it, at every p of the plan
    (None where that surrogate is not at hand)."""
    out = []
    for n in p.networks:
        s = p.surrogates.get(n.surrogate)
        if s is None:
            out.append(None)
            continue
        k = len(p.ps)
        acc = s.predict("acc", np.repeat(np.asarray(n.arch, np.int64)[None, :], k, axis=0), np.full(k, n.split), np.asarray(p.ps))
        out.append([float(a) for a in acc])
    return out


def supernet_curves(p: Plan, log: Callable[[str], None] = lambda s: None) -> list[list[float] | None]:
    """Each network's accuracy on the held-out split of the supernet of its role (``--supernet
    ROLE=CHECKPOINT``) at every p; None where no supernet of its role is given. Cached in
    ``OUT/supernet_acc.json`` (keyed by checkpoint, size and mtime) so a resumed run does not
    evaluate again."""
    out: list[list[float] | None] = [None] * len(p.networks)
    if not p.settings.supernets:
        return out
    cache_path = p.out / SUPERNET_CACHE
    cache = {}
    if cache_path.exists():
        try:
            from nascsim.atomic import read_regular_bytes
            from nascsim.safe_load import loads_json

            cache = loads_json(read_regular_bytes(cache_path, "supernet cache"), str(cache_path))
        except (ValueError, OSError):
            cache = {}
        cache = cache if isinstance(cache, dict) else {}
    changed = False
    for role, ckpt in sorted(p.settings.supernets.items()):
        idx = [i for i, n in enumerate(p.networks) if n.role == role]
        if not idx:
            continue
        st = os.stat(ckpt if not Path(ckpt).is_dir() else Path(ckpt) / CHECKPOINT_FILE)
        key = json.dumps([str(Path(ckpt).resolve()), st.st_size, st.st_mtime_ns, list(p.ps)])
        entry = cache.get(key, {}) if isinstance(cache.get(key), dict) else {}
        todo = [i for i in idx if _pair_key(p.networks[i]) not in entry]
        if todo:
            log(f"supernet {role}: evaluating {len(todo)} networks on its held-out split")
            acc = supernet_accuracy(ckpt, p.settings.data, p.settings.cache_dir,
                                    np.asarray([p.networks[i].arch for i in todo], np.int64),
                                    np.asarray([p.networks[i].split for i in todo], np.int64), p.ps,
                                    p.networks[idx[0]].space)
            for j, i in enumerate(todo):
                entry[_pair_key(p.networks[i])] = [float(a) for a in acc[j]]
            cache[key] = entry
            changed = True
        for i in idx:
            out[i] = entry[_pair_key(p.networks[i])]
    if changed:
        from nascsim.atomic import atomic_write_bytes

        p.out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(json.dumps(cache, indent=1).encode(), cache_path)
    return out


def _pair_key(n: Network) -> str:
    return ",".join(map(str, n.arch)) + f"/{n.split}"


def supernet_accuracy(checkpoint: str, data: str, cache_dir: str | None, archs: np.ndarray, splits: np.ndarray,
                      ps: Sequence[float], space: str = "fbnet") -> np.ndarray:
    """(n, len(ps)) accuracy of each pair on the supernet's whole held-out split (BatchNorm on batch
    statistics, as every supernet evaluation; as ``scripts/standalone.py``)."""
    import torch

    from nascsim.train.data import holdout_split, load_dataset, normalise, to_device
    from nascsim.train.evaluate import EvalTable, Evaluator, HeldOut, default_max_rows
    from nascsim.train.pretrain import checkpoint_proxy, load_supernet, stored_recipe
    from nascsim.train.proxy import proxy_dataset

    model, state = load_supernet(checkpoint, "cpu")
    if state["space"] != space:
        raise ValueError(f"{checkpoint} is a supernet of the {state['space']} space, not of the sweep's {space}")
    ds = proxy_dataset(load_dataset(data, cache_dir), checkpoint_proxy(state))
    if ds.n_classes != state["classes"]:
        raise ValueError(f"{checkpoint} was trained on {state['classes']} classes, --data holds {ds.n_classes}")
    _, valid_idx = holdout_split(len(ds.y_train), state["valid_images"], stored_recipe(state).seed)
    held = HeldOut(normalise(to_device(ds.x_train[valid_idx], "cpu"), *state["stats"]), torch.as_tensor(ds.y_train[valid_idx]))
    table = EvalTable("sn", ds.name, 0, ps)
    torch.manual_seed(0)
    Evaluator(model, held, table, ps, min(1000, len(held)), default_max_rows(torch.device("cpu"))).lowvar(archs, splits)
    return np.asarray(table.cols["acc"]).reshape(len(splits), len(ps))


# -- training -------------------------------------------------------------------------------------

def _init_worker(parent_pid: int) -> None:
    """A training process: ends with its parent, one torch thread (one process per core)."""
    from nascsim._children import watch_parent

    watch_parent(parent_pid)
    import torch

    torch.set_num_threads(1)


def _train_one(job: dict) -> dict:
    """Re-train one network in its folder (resuming its checkpoint when there is one)."""
    from nascsim.train.recipe import Recipe
    from nascsim.train.retrain import retrain

    folder = Path(job["folder"])
    return retrain(job["data"], folder, job["arch"], job["split"], space=job["space"], recipe=Recipe(**job["recipe"]),
                   ps=job["ps"], cache_dir=job["cache_dir"], device=job["device"],
                   resume=(folder / CHECKPOINT_FILE).exists(), progress=False, train_images=job["train_images"],
                   bits=job["bits"], latency_repeats=LATENCY_REPEATS)


def confirm_cell(settings: ConfirmSettings, log: Callable[[str], None] = lambda s: None):
    """Re-train every network of the cell (module docstring) and write ``confirm.parquet``,
    ``confirm.md`` and ``confirm.png`` in ``settings.out``; returns the table (polars)."""
    from concurrent.futures import ProcessPoolExecutor

    from nascsim._spawn import context, drain
    from nascsim.train.data import load_dataset

    p = plan(settings)
    load_dataset(settings.data, settings.cache_dir)  # a bad --data fails here, once; the workers read the cache
    sur = surrogate_curves(p)
    sn = supernet_curves(p, log)
    results: list[dict | None] = [read_done(p.out / n.folder) if s == "done" else None for n, s in zip(p.networks, p.state)]
    todo = [i for i, s in enumerate(p.state) if s != "done"]
    log(f"{len(p.networks)} networks ({len(p.networks) - len(todo)} done, "
        f"{sum(s == 'resume' for s in p.state)} to resume); {settings.epochs} epochs each at width "
        f"{p.proxy['width']:g}, {p.proxy['resolution']} px ({p.proxy_source}); {min(settings.jobs, max(len(todo), 1))} processes")
    p.out.mkdir(parents=True, exist_ok=True)
    table = write_outputs(p, results, sur, sn)
    if not todo:
        return table
    jobs = {i: {"data": settings.data, "folder": str(p.out / p.networks[i].folder), "arch": list(p.networks[i].arch),
                "split": p.networks[i].split, "space": p.networks[i].space, "recipe": p.recipes[i], "ps": list(p.ps),
                "cache_dir": settings.cache_dir, "device": settings.device, "train_images": settings.train_images,
                "bits": settings.bits} for i in todo}
    with ProcessPoolExecutor(max_workers=min(settings.jobs, len(todo)), mp_context=context(),
                             initializer=_init_worker, initargs=(os.getpid(),)) as pool:
        def finished(i: int, result: dict) -> None:
            nonlocal table
            results[i] = result
            at = next(r["test_acc"] for r in result["rows"] if abs(r["p"] - settings.cell.loss) < 1e-9)
            log(f"{p.networks[i].folder}: re-trained accuracy {100 * at:.1f}% at p = {settings.cell.loss:g} "
                f"({result['train_s']:.0f} s)")
            table = write_outputs(p, results, sur, sn)

        drain(pool, {i: (_train_one, jobs[i]) for i in todo}, finished, "confirm")
    return table


