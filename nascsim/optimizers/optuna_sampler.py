"""Optuna's samplers on NASC's problem: the search methods ``optuna-tpe`` (TPE, Bergstra et al.
2011, Optuna's default sampler) and ``optuna-random`` (Optuna's uniform sampler).

Each (arch, split) is a trial with 22 categorical parameters ``op01`` .. ``op22`` (the op names
of the space) and an integer ``split`` in 0..22; its value is f of eq. 4a as the search observes
it (:meth:`nascsim.Problem.evaluate`: the surrogate's l_SC plus minibatch noise, each trial on
its own minibatch), so the latency threshold enters as NASC's penalty. The budget is NASC's
(``steps x λ`` evaluations of the run's config) and the final choice the incumbent (lowest
observed f: ``study.best_trial``), as for random search. The sampler's seed is the run's seed;
the noise comes from the problem's own generator (``SeedSequence(seed)``).

    >>> import nascsim                                             # doctest: +SKIP
    >>> problem = nascsim.Problem(threshold_ms=30.0, loss=0.2, budget=200)
    >>> arch, split = tpe(problem, seed=0)                         # 200 TPE trials
    >>> problem.record(arch, split, method="optuna-tpe", seed=0)["T_ms"] <= 30.0
    True

``nascsim bench --methods nasc,random,optuna-tpe,optuna-random --suite optimizers`` runs them
against NASC (docs/optimizers.md). TPE's time per trial grows with the trials before it, so at
NASC's full schedule (70,380 evaluations) it is far slower than the engine; the suite uses a
shorter schedule for every method alike.
"""

from __future__ import annotations

import numpy as np

from nascsim.problem import Problem, ProblemMethod

SAMPLERS = ("tpe", "random")


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ValueError("the optuna methods need optuna: pip install 'nascsim[optuna]' (or pip install optuna)") from None
    return optuna


def make_sampler(name: str, seed: int):
    """The Optuna sampler called ``name`` (:data:`SAMPLERS`), seeded with ``seed``."""
    optuna = _optuna()
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=int(seed))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=int(seed))
    raise ValueError(f"unknown Optuna sampler {name!r}; expected one of {', '.join(SAMPLERS)}")


def optimize(problem: Problem, seed: int, sampler: str = "tpe") -> tuple[np.ndarray, int]:
    """Spend ``problem``'s budget with an Optuna study (ask/tell) and return the best observed
    (arch, split). Optuna's per-trial log lines are silenced for the run."""
    optuna = _optuna()
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(direction="minimize", sampler=make_sampler(sampler, seed))
        _run(problem, study)
    finally:
        optuna.logging.set_verbosity(verbosity)
    names = problem.space.op_names
    best = study.best_trial.params
    arch = np.array([names.index(best[f"op{i + 1:02d}"]) for i in range(problem.space.n_layers)], dtype=np.int64)
    return arch, int(best["split"])


def _run(problem: Problem, study) -> None:
    """The ask/tell loop of ``study`` on ``problem`` until its budget is spent."""
    names = problem.space.op_names
    n_layers = problem.space.n_layers
    asked = []

    def ask():
        trial = study.ask()
        arch = [trial.suggest_categorical(f"op{i + 1:02d}", names) for i in range(n_layers)]
        asked.append(trial)
        return arch, trial.suggest_int("split", 0, n_layers)

    def tell(candidate, result):
        study.tell(asked.pop(), result["f"])

    problem.run(ask, tell)


def tpe(problem: Problem, seed: int) -> tuple[np.ndarray, int]:
    """:func:`optimize` with TPE."""
    return optimize(problem, seed, "tpe")


def random(problem: Problem, seed: int) -> tuple[np.ndarray, int]:
    """:func:`optimize` with Optuna's uniform sampler."""
    return optimize(problem, seed, "random")


run_tpe = ProblemMethod(tpe)  # the registry's ``optuna-tpe``
run_random = ProblemMethod(random)  # the registry's ``optuna-random``
