"""Run a sweep's pending configs in batches: in this process, on local worker processes, or on a
dask.distributed cluster, committing each finished batch to the store as one chunk.

Each run is a pure function of its :class:`SearchConfig` (the search seeds its own generator from
``config.seed``), so the rows do not depend on the executor, the job count or the batch order.
The surrogates travel to each worker once (a process pool's initializer; a dask scatter with
``broadcast=True``), never with every run.
"""

from __future__ import annotations

import math
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Sequence

from nascsim._children import PARENT_POLL_S, watch_parent  # noqa: F401 (PARENT_POLL_S: re-exported)
from nascsim.config import SearchConfig
from nascsim.sweep.store import ResultStore, make_row

EXECUTORS = ("local", "dask")
MAX_BATCH = 64
BATCHES_PER_WORKER = 8
CONNECT_TIMEOUT = "10s"  # waiting for a dask scheduler
_ADDRESS = re.compile(r"^(tcp|tls|ucx|ws|wss)://[A-Za-z0-9_.\-]+:[0-9]{1,5}$|^(tcp|tls|ucx|ws|wss)://\[[0-9A-Fa-f:.]+\]:[0-9]{1,5}$")

Search = Callable[[list, dict | None], list]


def default_search() -> Search:
    from nascsim.methods import run_search_group

    return run_search_group


def search_key(config: SearchConfig, surrogates: dict | None = None) -> SearchConfig:
    """Runs with the same key share one search (:func:`nascsim.methods.shared_search`: the
    evaluation loss rate, ``hwnas`` vs ``hwnas-dropout``, thresholds below the lowest reachable
    latency). ``surrogates``: space -> surrogate set, as for :func:`run_batch`."""
    from nascsim.methods import shared_search

    return shared_search(config, None if surrogates is None else surrogates[config.space])


def run_batch(configs: Sequence[dict], surrogates: dict | None, search: Search | None = None) -> list[dict]:
    """Rows of a batch of runs (configs as dicts, see :meth:`SearchConfig.to_dict`), in order.

    Runs of the batch with the same :func:`search_key` are served by one search, called as
    ``search(configs, surrogate_set)``. ``surrogates`` maps a space name to that space's
    ``{"dropout": s, "no_dropout": s}`` (see :func:`nascsim.sweep.run.load_surrogate_sets`); None
    lets the search load its defaults.
    """
    search = search if search is not None else default_search()
    parsed = [SearchConfig.from_dict(d) for d in configs]
    groups: dict[SearchConfig, list[int]] = {}
    for i, config in enumerate(parsed):
        groups.setdefault(search_key(config, surrogates), []).append(i)
    rows: list[dict | None] = [None] * len(parsed)
    for key, members in groups.items():
        t0 = time.perf_counter()
        records = search([parsed[i] for i in members], None if surrogates is None else surrogates[key.space])
        wall = (time.perf_counter() - t0) / len(members)
        for i, record in zip(members, records):
            rows[i] = make_row(parsed[i], record, wall)
    return rows


_WORKER_SURROGATES: dict | None = None


def _init_worker(surrogates_file: str | None, parent_pid: int | None = None) -> None:
    """A local worker's set-up: a watch that ends the worker as soon as the sweep that started it
    is gone (killed with SIGKILL included), so no orphan keeps computing, then the surrogates,
    read from the file the sweep wrote (not sent down the start-up pipe: a worker that died
    before reading a large start-up message left its parent blocked on the pipe forever)."""
    global _WORKER_SURROGATES
    if parent_pid is not None:
        watch_parent(parent_pid)
    if surrogates_file is not None:
        import pickle

        with open(surrogates_file, "rb") as fh:
            _WORKER_SURROGATES = pickle.load(fh)  # written by this sweep's parent process (execute)


def check_address(address: str) -> str:
    """A dask scheduler address, ``tcp://HOST:PORT`` (``ValueError`` naming it otherwise)."""
    if not isinstance(address, str) or not _ADDRESS.match(address.strip()) or not 0 < int(address.rsplit(":", 1)[1]) < 65536:
        raise ValueError(f"dask scheduler address {address!r} is not of the form tcp://HOST:PORT")
    return address.strip()


def _run_batch_in_worker(configs: Sequence[dict], search: Search | None) -> list[dict]:
    return run_batch(configs, _WORKER_SURROGATES, search)


def batch_size(n_runs: int, workers: int) -> int:
    """About :data:`BATCHES_PER_WORKER` batches per worker, at most :data:`MAX_BATCH` runs each:
    big enough to amortise task overhead, small enough that a kill loses little."""
    return max(1, min(MAX_BATCH, math.ceil(n_runs / (max(1, workers) * BATCHES_PER_WORKER))))


def batches(configs: Sequence[SearchConfig], size: int, surrogates: dict | None = None) -> list[list[dict]]:
    """Batches of about ``size`` runs in grid order, never splitting the runs that share one
    search (same :func:`search_key`) across batches."""
    groups: dict[SearchConfig, list[dict]] = {}
    for c in configs:
        groups.setdefault(search_key(c, surrogates), []).append(c.to_dict())
    out: list[list[dict]] = []
    current: list[dict] = []
    for members in groups.values():
        if current and len(current) + len(members) > size:
            out.append(current)
            current = []
        current.extend(members)
    if current:
        out.append(current)
    return out


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def execute(
    configs: Sequence[SearchConfig],
    store: ResultStore,
    surrogates: dict | None = None,
    *,
    jobs: int | None = None,
    executor: str = "local",
    address: str | None = None,
    search: Search | None = None,
    on_commit: Callable[[int], None] | None = None,
    size: int | None = None,
    connect_timeout: str | None = None,
    client=None,
) -> int:
    """Run ``configs`` and commit each finished batch to ``store``. ``on_commit(n)`` is called
    after each commit with the number of runs it held (progress). Returns the number run.

    ``executor="local"`` with ``jobs == 1`` (or a single batch) runs in this process; with more
    jobs on a pool of spawned processes (:func:`_run_pool`: not forked, and not re-running the
    calling script, so a script needs no ``__main__`` guard). ``executor="dask"`` connects to the scheduler at ``address`` (waiting up to
    ``connect_timeout``, default :data:`CONNECT_TIMEOUT`) before anything is run or written, then
    submits the batches to it (or uses ``client``, from :func:`connect_dask`, left open). Local
    workers end when this process dies (:func:`watch_parent`).
    The store writes nothing before the first batch has finished (:meth:`ResultStore.commit`).
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; expected one of {', '.join(EXECUTORS)}")
    jobs = default_jobs() if jobs is None else jobs
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    if not configs:
        return 0
    if executor == "dask":
        own = client is None
        client = connect_dask(address, connect_timeout) if own else client
        try:
            return _execute_dask(configs, store, surrogates, client, search, on_commit, size)
        finally:
            if own:
                client.close()
    work = batches(configs, size or batch_size(len(configs), jobs), surrogates)

    def commit(rows: list[dict]) -> None:
        store.commit(rows)
        if on_commit is not None:
            on_commit(len(rows))

    if jobs == 1 or len(work) == 1:
        for b in work:
            commit(run_batch(b, surrogates, search))
        return len(configs)
    _run_pool(work, surrogates, search, min(jobs, len(work)), commit)
    return len(configs)


def _run_pool(work: list[list[dict]], surrogates: dict | None, search: Search | None, workers: int,
              commit: Callable[[list[dict]], None]) -> None:
    """The batches on ``workers`` spawned processes (not forked: the parent holds polars and numba
    threads) that do not re-run the calling script (:mod:`nascsim._spawn`) unless ``search``
    needs a function defined there. A worker that dies (at start-up included) ends the sweep at
    once with one line (``RuntimeError``); the batches committed so far stay stored."""
    import pickle
    import tempfile
    from nascsim._spawn import context, drain, needs_main

    main = needs_main(search)
    with tempfile.TemporaryDirectory(prefix="nascsim-workers-") as tmp:
        surrogates_file = None
        if surrogates is not None:
            surrogates_file = os.path.join(tmp, "surrogates.pickle")
            with open(surrogates_file, "wb") as fh:
                pickle.dump(surrogates, fh, protocol=pickle.HIGHEST_PROTOCOL)
        with ProcessPoolExecutor(max_workers=workers, mp_context=context(main=main),
                                 initializer=_init_worker, initargs=(surrogates_file, os.getpid())) as pool:
            drain(pool, {i: (_run_batch_in_worker, b, search) for i, b in enumerate(work)},
                  lambda _, batch: commit(batch), "sweep", main)


def connect_dask(address: str | None, timeout: str | None = None):
    """A dask.distributed client of the scheduler at ``address``; ``ValueError`` naming the
    address when it is malformed or no scheduler answers within ``timeout`` (default
    :data:`CONNECT_TIMEOUT`)."""
    if not address:
        raise ValueError("--executor dask needs --address tcp://HOST:PORT of a dask scheduler")
    address = check_address(address)
    from dask.distributed import Client

    timeout = timeout or CONNECT_TIMEOUT
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"cannot reach the dask scheduler at {address!r} within {timeout}: {why[:200]}") from None


def _execute_dask(configs, store, surrogates, client, search, on_commit, size) -> int:
    from dask.distributed import as_completed

    workers = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values()) or 1
    work = batches(configs, size or batch_size(len(configs), workers), surrogates)
    shipped = client.scatter([surrogates], broadcast=True, hash=False)[0] if surrogates is not None else None
    futures = [client.submit(run_batch, b, shipped, search, pure=False) for b in work]
    try:
        for fut in as_completed(futures, loop=client.loop):
            rows = fut.result()
            store.commit(rows)
            if on_commit is not None:
                on_commit(len(rows))
    except BaseException:
        client.cancel(futures)
        raise
    return len(configs)


def load_surrogate_sets(spaces: Iterable[str], path: str | None = None) -> dict[str, dict]:
    """Space -> ``{"dropout": s, "no_dropout": s}``: the shipped defaults of each space, or the one
    surrogate file at ``path`` in both roles (it must have been fitted on every space asked for)."""
    from nascsim.surrogate.model import default_surrogates, load_surrogate

    spaces = list(dict.fromkeys(spaces))
    if path is None:
        return {sp: default_surrogates(sp) for sp in spaces}
    s = load_surrogate(path)
    for sp in spaces:
        if s.space != sp:
            raise ValueError(f"surrogate {str(path)!r} was fitted on the {s.space} space, not {sp!r}")
    return {sp: {"dropout": s, "no_dropout": s} for sp in spaces}


def surrogate_id(sets: dict[str, dict]) -> str:
    """One id for a set of surrogates (what the store's fingerprint records)."""
    import hashlib
    import json

    ids = set()
    for roles in sets.values():
        for role, s in roles.items():
            digest = hashlib.sha256(json.dumps(s.doc, sort_keys=True).encode()).hexdigest()[:8]
            ids.add(f"{role}={s.id}@{digest}")
    return ";".join(sorted(ids))


def pending_configs(cells: Iterable[SearchConfig], done: set[str]) -> list[SearchConfig]:
    """The cells whose content hash is not in ``done``, in grid order."""
    return [c for c in cells if c.content_hash() not in done]
