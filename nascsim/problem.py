"""NASC's search problem as a black box, for other optimizers (the way HW-NAS-Bench, NAS-Bench-301
and Syne Tune's simulated backends are used): sample an (arch, split), evaluate it as the search
would observe it, count the cost, record the final choice as a sweep row.

    >>> import numpy as np, nascsim
    >>> problem = nascsim.Problem(threshold_ms=30.0, loss=0.2, budget=100)  # the paper's setting
    >>> rng = np.random.default_rng(0)
    >>> arch, split = problem.sample(rng)                  # a uniform (arch, split)
    >>> r = problem.evaluate(arch, split, seed=1)          # one noisy observation (eq. 4a)
    >>> r == problem.evaluate(arch, split, seed=1)         # same seed, same value
    True
    >>> exact = problem.evaluate(arch, split, noisy=False) # expected values: no noise, no cost
    >>> exact["f"] == r["f_expected"] and r["T_ms"] == exact["T_ms"]
    True
    >>> problem.budget.evaluations, problem.budget.expected_queries
    (2, 1)

An ask/tell loop (here uniform random search; any optimizer's ``ask`` and ``tell`` fit), run until
the budget is spent; the final choice is the incumbent (lowest observed f), recorded in the
schema of a sweep row::

    >>> rec = problem.optimize(lambda: problem.sample(rng), method="random")
    >>> problem.budget.evaluations, rec["method"], rec["feasible"] == (rec["T_ms"] <= 30.0)
    (100, 'random', True)

What :meth:`Problem.evaluate` observes is what the engine's searches observe (one sample of
:mod:`nascsim.core._engine_kernels`): the loss term of eq. 4 is the surrogate's expected l_SC
(:func:`nascsim.core.objective.expected_objective`) plus minibatch noise with the sds of
:func:`nascsim.core.engine.noise_vector` (the surrogate's noise model scaled to ``minibatch`` images);
``noise="shared"`` draws the part b common to one minibatch and then each sample's own part e,
as the engine does. Several (arch, split) given to one call are judged on one minibatch (one b,
as the λ samples of an ASNG step); separate calls on separate minibatches (as random search).

Cost (:class:`Budget`). One *evaluation* is one (arch, split) judged on one minibatch at every p
of the loss set. NASC spends λ evaluations per step, so ``steps`` = evaluations / λ is the number
of NASC steps the same evaluations buy, and the default budget is NASC's: ``steps x λ``
(35,190 x 2 at the paper's schedule). ``gpu_s`` is the simulated GPU time of the real search
(as Syne Tune reports simulated time): evaluations x :func:`gpu_seconds_per_evaluation`, the
evaluation throughput measured when the surrogate's supernet was evaluated (its card: wall
seconds of the evaluation phase / rows, one row = one (arch, split, p) on ``n_images`` images;
for a CPU campaign's supernet, its noise set's seconds per minibatch evaluation on one core),
scaled to ``minibatch`` images and the |P| loss rates of one evaluation. It counts supernet
evaluations only (the pre-trained supernet's weights are not updated in the simulated search).
Noise-free evaluations (``noisy=False``) are oracle queries the real search cannot make: they
are counted apart (``expected_queries``) and cost nothing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from nascsim.config import SearchConfig

# SearchConfig fields a problem takes besides space, threshold, loss rate and devices (method,
# seed and the ASNG's own settings belong to a search, not to the problem)
PROBLEM_OPTIONS = ("bits", "bandwidth", "source", "eps_loss", "eps_lat", "loss_set", "noise", "minibatch", "lam",
                   "steps")


class BudgetExhausted(RuntimeError):
    """A noisy evaluation past the problem's budget of evaluations."""


def gpu_seconds_per_evaluation(surrogate, n_p: int, minibatch: int | None) -> float:
    """Simulated GPU seconds of one evaluation: ``eval_s / rows`` of the surrogate's supernet
    record (seconds per (arch, split, p) on ``n_images`` images, the evaluation phase of the run
    its data came from) x ``minibatch / n_images`` x ``n_p`` loss rates. NaN when the card does
    not record the evaluation time (e.g. a surrogate fitted on synthetic data)."""
    supernet = (getattr(surrogate, "card", None) or {}).get("supernet") or {}
    eval_s, rows = supernet.get("eval_s"), supernet.get("rows")
    n_images = int(surrogate.doc["noise"]["n_images"])
    images = n_images if minibatch is None else int(minibatch)
    if isinstance(eval_s, (int, float)) and isinstance(rows, int) and rows >= 1 and eval_s > 0:
        return float(eval_s) / rows * images / n_images * n_p
    return _campaign_seconds(supernet, n_p, minibatch)


def _campaign_seconds(supernet: dict, n_p: int, minibatch: int | None) -> float:
    """The same from a campaign's record (:mod:`nascsim.train.lane`): its noise set's wall time
    over its pairs x minibatches (each one evaluation of ``noise_images`` images at every p of
    its loss set), scaled to ``minibatch`` images and ``n_p`` loss rates; NaN when not recorded."""
    try:
        seconds = float(supernet["wall_s"]["noise_s"])
        units = int(supernet["plan"]["noise_pairs"]) * int(supernet["plan"]["noise_batches"])
        images, rates = int(supernet["eval"]["noise_images"]), len(supernet["eval"]["loss_set"])
    except (KeyError, TypeError, ValueError):
        return math.nan
    if not (math.isfinite(seconds) and seconds > 0 and units >= 1 and images >= 1 and rates >= 1):
        return math.nan
    return seconds / units * (images if minibatch is None else int(minibatch)) / images * n_p / rates


@dataclass
class Budget:
    """The cost counter of one problem (see the module docstring).

    ``evaluations``: noisy evaluations so far; ``expected_queries``: noise-free ones (free);
    ``lam``: evaluations per NASC step; ``seconds_per_evaluation``: simulated GPU seconds of one;
    ``max_evaluations``: the budget (None: unlimited).
    """

    lam: int
    seconds_per_evaluation: float
    max_evaluations: int | None
    evaluations: int = 0
    expected_queries: int = 0

    @property
    def steps(self) -> float:
        """NASC steps the evaluations so far would buy (evaluations / λ)."""
        return self.evaluations / self.lam

    @property
    def gpu_s(self) -> float:
        """Simulated GPU seconds of the evaluations so far."""
        return self.evaluations * self.seconds_per_evaluation

    @property
    def remaining(self) -> int | None:
        return None if self.max_evaluations is None else self.max_evaluations - self.evaluations

    @property
    def exhausted(self) -> bool:
        return self.max_evaluations is not None and self.evaluations >= self.max_evaluations

    def as_dict(self) -> dict:
        return {"evaluations": self.evaluations, "expected_queries": self.expected_queries, "steps": self.steps,
                "gpu_s": self.gpu_s, "max_evaluations": self.max_evaluations}


class Problem:
    """NASC's problem: minimise f of eq. 4a over (architecture, split) under the latency threshold.

    ``space`` (a name or :class:`~nascsim.space.Space`), ``threshold_ms`` (T_th), ``loss`` (the
    loss rate p at which the final model's accuracy is reported), ``head`` and ``tail`` devices;
    ``options``: the SearchConfig fields of :data:`PROBLEM_OPTIONS` (``bits``, ``bandwidth``,
    ``eps_lat``, ``loss_set``, ``noise``, ``minibatch``, ``lam``, ``steps``, ...). ``surrogate``:
    a role name of the shipped pair, a file or a fitted surrogate (NASC's, ``"dropout"``, by
    default); ``tables``: a latency-table file. ``seed``: the problem's own generator (the noise
    of evaluations given no ``seed`` or ``rng``). ``budget``: evaluations allowed, ``"nasc"``
    (default: NASC's steps x λ for ``steps``/``lam``) or None (unlimited).
    ``gpu_s_per_evaluation`` overrides :func:`gpu_seconds_per_evaluation`.
    """

    def __init__(self, space="fbnet", threshold_ms: float = 30.0, loss: float = 0.0, head: str = "raspi4",
                 tail: str = "edgegpu", *, surrogate="dropout", tables=None, seed: int = 0, budget="nasc",
                 gpu_s_per_evaluation: float | None = None, **options):
        from nascsim.api import _load_surrogate, _space, _tables_path

        unknown = sorted(set(options) - set(PROBLEM_OPTIONS))
        if unknown:
            raise ValueError(f"unknown problem option(s): {', '.join(unknown)}; expected any of "
                             f"{', '.join(PROBLEM_OPTIONS)}")
        if "loss_set" in options:
            options["loss_set"] = tuple(float(x) for x in options["loss_set"])
        sp = _space(space)
        config = SearchConfig(method="nasc", threshold_ms=float(threshold_ms), loss=float(loss), seed=int(seed),
                              space=sp.name, head=head, tail=tail, tables=_tables_path(tables), **options)
        self._setup(config, _load_surrogate(surrogate, sp.name), budget, gpu_s_per_evaluation)

    @classmethod
    def from_config(cls, config: SearchConfig, surrogate, budget="nasc",
                    gpu_s_per_evaluation: float | None = None) -> "Problem":
        """The problem a search config poses (its method's own settings ignored), on ``surrogate``
        (a fitted :class:`~nascsim.surrogate.Surrogate`)."""
        self = cls.__new__(cls)
        self._setup(config, surrogate, budget, gpu_s_per_evaluation)
        return self

    def _setup(self, config: SearchConfig, surrogate, budget, gpu_s) -> None:
        from nascsim.api import _is_fitted
        from nascsim.core.engine import categories, make_rng, noise_vector
        from nascsim.methods.common import latency_model_for, objective_of, steps_of, validate

        self.space = validate(config)
        if not _is_fitted(surrogate):
            raise TypeError(f"the surrogate is a {type(surrogate).__name__}, not a fitted nascsim Surrogate: the "
                            "problem observes its noise model (use nascsim.query for any predictor)")
        if surrogate.space != config.space:
            raise ValueError(f"surrogate {surrogate.id!r} was fitted on the {surrogate.space} space, not {config.space!r}")
        self.config = config
        self.surrogate = surrogate
        self.objective = objective_of(config)
        self.latency_model = latency_model_for(config, surrogate)
        self.categories = categories(self.space.n_ops, self.space.n_layers, True)
        mode, sd_total, sd_shared, sd_own = noise_vector(self.objective, surrogate, config.noise, config.minibatch)
        self.noise = {"mode": config.noise, "sd_total": float(sd_total), "sd_shared": float(sd_shared),
                      "sd_own": float(sd_own)}
        self.rng = make_rng(config.seed)
        if budget == "nasc":
            budget = steps_of(config) * config.lam
        elif budget is not None and (isinstance(budget, bool) or int(budget) != budget or budget < 1):
            raise ValueError(f"budget must be a positive number of evaluations, 'nasc' or None, got {budget!r}")
        if gpu_s is None:
            gpu_s = gpu_seconds_per_evaluation(surrogate, len(self.objective.loss_set), config.minibatch)
        self.budget = Budget(config.lam, float(gpu_s), None if budget is None else int(budget))
        self.incumbent: tuple[np.ndarray, int] | None = None
        self.incumbent_f = math.inf
        self._t0 = time.perf_counter()

    def __repr__(self) -> str:
        c = self.config
        return (f"Problem(space={c.space!r}, threshold_ms={c.threshold_ms:g}, loss={c.loss:g}, head={c.head!r}, "
                f"tail={c.tail!r}, surrogate={self.surrogate.id!r}, evaluations={self.budget.evaluations}/"
                f"{self.budget.max_evaluations})")

    # -- sampling -------------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator, n: int | None = None):
        """Uniform (arch, split): op indices (n_layers,) and an int, or (n, n_layers) and (n,).

        The draws of the engine's uniform sampling: one ``rng.random()`` per variable, the ops
        layer by layer and then the split, each ``floor(u · K)``; so ``sample`` followed by
        ``evaluate(..., rng=rng)`` draws exactly as the engine's random search does."""
        C = self.categories
        u = rng.random((1 if n is None else int(n), len(C)))
        c = np.minimum(np.floor(u * C).astype(np.int64), C - 1)
        archs, splits = c[:, : self.space.n_layers], c[:, self.space.n_layers]
        return (archs[0], int(splits[0])) if n is None else (archs, splits)

    # -- evaluation -----------------------------------------------------------------------------

    def evaluate(self, arch, split, noisy: bool = True, seed: int | None = None,
                 rng: np.random.Generator | None = None):
        """One (arch, split) as the search observes it: a dict, or a polars DataFrame for many
        (several archs and/or splits, judged on one minibatch).

        Keys: ``f`` (eq. 4a, observed), ``l_sc`` (the loss term, eq. 4b, observed), their
        expected values ``f_expected``, ``l_sc_expected``, ``accuracy`` (expected, at the
        problem's loss rate), ``T_ms``, ``T_head_ms``, ``T_comm_ms``, ``T_tail_ms`` (eq. 3),
        ``payload_bits``, ``feasible`` (T <= T_th), ``penalty`` (ε_lat · max(0, T - T_th)),
        ``arch`` (op names) and ``split``. With ``noisy=False`` the observed values are the
        expected ones. Noise from ``rng``, else a generator of ``seed``, else the problem's own.
        A noisy evaluation counts against the budget (:class:`BudgetExhausted` past it).
        """
        from nascsim.api import _archs
        from nascsim.core.engine import make_rng
        from nascsim.hw.latency import breakdown_batch
        from nascsim.core.objective import expected_objective
        from nascsim.space import arch_names, check_split

        archs, one = _archs(arch, self.space)
        scalar = one and np.ndim(split) == 0
        n = np.broadcast_shapes((archs.shape[0],), np.shape(np.atleast_1d(split)))[0]
        archs = np.ascontiguousarray(np.broadcast_to(archs, (n, self.space.n_layers)))
        splits = np.array([check_split(k, self.space) for k in np.broadcast_to(np.atleast_1d(split), (n,))],
                          dtype=np.int64)
        if noisy and self.budget.max_evaluations is not None and self.budget.evaluations + n > self.budget.max_evaluations:
            raise BudgetExhausted(f"the budget of {self.budget.max_evaluations} evaluations is spent "
                                  f"({self.budget.evaluations} done, {n} asked)")
        exp = expected_objective(self.objective, self.surrogate, self.latency_model, archs, splits)
        obj = self.objective
        penalty = obj.eps_lat * np.maximum(0.0, exp["T_ms"] - obj.threshold_ms)
        loss = exp["loss"]
        if noisy:
            g = rng if rng is not None else (make_rng(seed) if seed is not None else self.rng)
            loss = loss + self._noise(g, n)
            self.budget.evaluations += n
        else:
            self.budget.expected_queries += n
        f = obj.eps_loss * loss + penalty
        parts = breakdown_batch(self.latency_model, archs, splits)  # bit-identical to latency.breakdown
        out = {
            "arch": [arch_names(a, self.space) for a in archs], "split": splits,
            "f": f, "l_sc": loss, "f_expected": exp["f"], "l_sc_expected": exp["loss"],
            "accuracy": self.surrogate.predict("acc", archs, splits, np.full(n, self.config.loss)),
            "T_ms": exp["T_ms"], **{key: parts[key] for key in ("T_head_ms", "T_comm_ms", "T_tail_ms", "payload_bits")},
            "feasible": exp["T_ms"] <= obj.threshold_ms, "penalty": penalty,
        }
        if noisy:
            best = int(np.argmin(f))
            if f[best] < self.incumbent_f:
                self.incumbent, self.incumbent_f = (archs[best].copy(), int(splits[best])), float(f[best])
        if scalar:
            return {k: (v[0] if isinstance(v, list) else v[0].item()) for k, v in out.items()}
        import polars as pl

        return pl.DataFrame(out)

    def _noise(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """The minibatch noise of n samples judged on one minibatch, drawn as the engine draws it
        (:mod:`nascsim.core._engine_kernels`): b (``shared`` only), then e_1..e_n."""
        mode = self.noise["mode"]
        if mode == "none":
            return np.zeros(n)
        if mode == "independent":
            return self.noise["sd_total"] * rng.standard_normal(n)
        b = self.noise["sd_shared"] * rng.standard_normal()
        return b + self.noise["sd_own"] * rng.standard_normal(n)

    # -- ask / tell ---------------------------------------------------------------------------------

    def run(self, ask: Callable[[], tuple], tell: Callable[[tuple, dict], None] | None = None) -> tuple[np.ndarray, int]:
        """An ask/tell loop until the budget is spent; returns the incumbent (arch, split).

        ``ask()`` returns an (arch, split); each is evaluated (noisy, from the problem's generator)
        and ``tell((arch, split), result)`` gets the result dict of :meth:`evaluate`. The incumbent
        is the (arch, split) of the lowest observed f, the final choice of random search.
        Needs a finite budget.
        """
        if self.budget.max_evaluations is None:
            raise ValueError("an ask/tell loop needs a finite budget (Problem(..., budget=N) or 'nasc')")
        while not self.budget.exhausted:
            candidate = ask()
            result = self.evaluate(*candidate)
            if tell is not None:
                tell(candidate, result)
        return self.incumbent

    def optimize(self, ask: Callable[[], tuple], tell: Callable[[tuple, dict], None] | None = None, *,
                 method: str = "problem", seed: int | None = None) -> dict:
        """:meth:`run`, then the :meth:`record` of the incumbent under ``method`` and ``seed``."""
        arch, split = self.run(ask, tell)
        return self.record(arch, split, method=method, seed=seed)

    # -- the record ---------------------------------------------------------------------------------

    def record(self, arch, split: int, *, method: str = "problem", seed: int | None = None) -> dict:
        """The result record of a final choice, in the schema of ``nascsim search --json`` and of a
        sweep row (:func:`nascsim.sweep.store.make_row`): the problem's config with ``method`` and
        ``seed``, the (arch, split), its latency breakdown, expected accuracy at the loss rate and
        l_SC, plus the cost so far (``evaluations``, ``sim_steps``, ``sim_gpu_s``)."""
        from nascsim.api import _archs
        from nascsim.methods.common import NO_THETA, make_record, steps_of

        archs, one = _archs(arch, self.space)
        if not one:
            raise ValueError("record takes one architecture")
        config = self.config.with_(method=method, seed=self.config.seed if seed is None else int(seed))
        extra = {**NO_THETA, "search_s": time.perf_counter() - self._t0, "evaluations": self.budget.evaluations,
                 "sim_steps": self.budget.steps, "sim_gpu_s": self.budget.gpu_s}
        from nascsim.surrogate.provenance import provenance_line

        rec = make_record(config, self.space, archs[0], int(split), self.surrogate, self.surrogate,
                          self.latency_model, steps_of(config), self._t0, extra)
        rec["provenance"] = provenance_line([self.surrogate])  # as in nascsim.search's records
        return rec


@dataclass(frozen=True)
class ProblemMethod:
    """A search method (:mod:`nascsim.methods.registry`) made of an optimizer that works on a
    :class:`Problem`: ``optimize(problem, seed)`` spends the problem's budget (NASC's steps x λ
    of the run's config) and returns the final (arch, split), or None for the incumbent.
    Register it like any method (``register_method(name, ProblemMethod(fn), roles=("dropout",))``)
    and ``nascsim search/sweep/bench`` run it; ``optimize`` must be importable for sweep workers."""

    optimize: Callable

    def __call__(self, config: SearchConfig, surrogates: dict, space, trace: bool = False):
        from nascsim.methods.common import NO_THETA, Choice, steps_of

        sur = surrogates["dropout"]
        problem = Problem.from_config(config, sur)
        chosen = self.optimize(problem, config.seed)
        arch, split = chosen if chosen is not None else problem.incumbent
        extra = {**NO_THETA, "search_s": time.perf_counter() - problem._t0, "evaluations": problem.budget.evaluations,
                 "sim_steps": problem.budget.steps, "sim_gpu_s": problem.budget.gpu_s}
        return Choice(np.asarray(arch, dtype=np.int64), int(split), sur, sur, problem.latency_model,
                      steps_of(config), extra)
