"""HWNAS baselines: ASNG over the architecture alone with device-only latency and the loss at
p = 0 (no packet loss), then one split for that architecture by eq. 4a.

As in the paper, the architecture is split once and only then re-trained in two variants:
``hwnas`` (re-trained without dropout at the split) and ``hwnas-dropout`` (with it). Both the
search and the split choice use the surrogate of the supernet the search ran on, trained without
split dropout ("no_dropout"); the variants differ only in the surrogate that judges the final
model: "no_dropout" for ``hwnas``, "dropout" for ``hwnas-dropout``. When both roles hold the same
surrogate, the data cannot tell the two apart and the record says so
(``dropout_distinguished = False``).
"""

from __future__ import annotations

import numpy as np

from nascsim.config import SearchConfig
from nascsim.core.engine import make_rng, noise_vector, run_asng_search
from nascsim.methods.common import Choice, asng_options, latency_model_for, objective_of, steps_of, theta_summary
from nascsim.core.objective import LAT_DEVICE, LOSS_P0, Objective, expected_objective
from nascsim.space import Space

SPLIT_STREAM = 1  # the split choice's random stream: SeedSequence(seed, spawn_key=(1,))


def choose_split(objective: Objective, surrogate, latency_model, arch: np.ndarray, n_splits: int, *,
                 noise: str, minibatch: int | None, rng: np.random.Generator) -> int:
    """argmin_k of eq. 4a over the ``n_splits`` split points of one architecture, each candidate's
    loss term observed the way the search observes it.

    All candidates are judged on one shared minibatch, as the λ samples of one ASNG step are: with
    ``noise="shared"`` they share its common part b (which cannot change the argmin) and each
    draws its own part e_k; with ``"independent"`` each draws the whole noise; with ``"none"`` this
    is the argmin of the expected objective. The noise sds are the search's (surrogate, minibatch).
    """
    archs = np.repeat(np.asarray(arch, dtype=np.int64)[None, :], n_splits, axis=0)
    exp = expected_objective(objective, surrogate, latency_model, archs, np.arange(n_splits))
    if noise == "none":
        return int(np.argmin(exp["f"]))
    _, sd_total, sd_shared, sd_own = noise_vector(objective, surrogate, noise, minibatch)
    if noise == "independent":
        loss = exp["loss"] + sd_total * rng.standard_normal(n_splits)
    else:
        b = sd_shared * rng.standard_normal()
        loss = exp["loss"] + b + sd_own * rng.standard_normal(n_splits)
    f = objective.eps_loss * loss + objective.eps_lat * np.maximum(0.0, exp["T_ms"] - objective.threshold_ms)
    return int(np.argmin(f))


def run(config: SearchConfig, surrogates: dict, space: Space, trace: bool = False) -> Choice:
    """``config`` already validated (see :func:`nascsim.methods.run_search_losses`)."""
    search_sur = surrogates["no_dropout"]
    final_sur = surrogates["dropout"] if config.method == "hwnas-dropout" else surrogates["no_dropout"]
    lat = latency_model_for(config, search_sur)
    steps = steps_of(config)
    res = run_asng_search(
        objective_of(config, LOSS_P0, LAT_DEVICE), search_sur, lat, make_rng(config.seed), steps=steps,
        search_split=False, fixed_split=space.n_layers, n_ops=space.n_ops, n_layers=space.n_layers, trace=trace,
        **asng_options(config),
    )
    arch = res.choice[: space.n_layers]
    if config.split_search:
        split = choose_split(objective_of(config), search_sur, lat, arch, space.n_splits, noise=config.noise,
                             minibatch=config.minibatch, rng=make_rng(config.seed, SPLIT_STREAM))
    else:
        split = int(config.fixed_split)
    extra = theta_summary(res, space.n_layers, split)
    extra["dropout_distinguished"] = surrogates["dropout"].id != surrogates["no_dropout"].id
    return Choice(arch, split, final_sur, search_sur, lat, steps, extra, res.trace)
