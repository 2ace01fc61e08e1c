"""HWNAS baselines: ASNG over the architecture alone with device-only latency and the loss at
p = 0 (no packet loss), then the split that minimises eq. 4a for that architecture.

``hwnas`` and ``hwnas-dropout`` share the search (same seed: same architecture) and differ in the
final model: re-trained without / with dropout at the split. The surrogate tells them apart by
data: the search uses the surrogate of the supernet trained *without* split dropout; the split
choice and the reported accuracy use the surrogate of the final model's training -- "no_dropout"
for ``hwnas``, "dropout" for ``hwnas-dropout``. When both roles hold the same surrogate, the data
cannot tell the two apart and the record says so (``dropout_distinguished = False``).
"""

from __future__ import annotations

import numpy as np

from nascsim.config import SearchConfig
from nascsim.engine import make_rng, run_asng_search
from nascsim.methods.common import Choice, latency_model_for, objective_of, steps_of
from nascsim.methods.nasc import _theta_summary
from nascsim.objective import LAT_DEVICE, LOSS_P0, Objective, expected_objective
from nascsim.space import Space


def best_split(objective: Objective, surrogate, latency_model, arch: np.ndarray, n_splits: int) -> int:
    """argmin_k of eq. 4a (expected values) for a fixed architecture."""
    archs = np.repeat(np.asarray(arch, dtype=np.int64)[None, :], n_splits, axis=0)
    f = expected_objective(objective, surrogate, latency_model, archs, np.arange(n_splits))["f"]
    return int(np.argmin(f))


def run(config: SearchConfig, surrogates: dict, space: Space, trace: bool = False) -> Choice:
    """``config`` already validated (see :func:`nascsim.methods.run_search_losses`)."""
    search_sur = surrogates["no_dropout"]
    final_sur = surrogates["dropout"] if config.method == "hwnas-dropout" else surrogates["no_dropout"]
    lat = latency_model_for(config, search_sur)
    steps = steps_of(config)
    res = run_asng_search(
        objective_of(config, LOSS_P0, LAT_DEVICE), search_sur, lat, make_rng(config.seed),
        steps=steps, lam=config.lam, alpha=config.alpha, delta0=config.delta0, Delta_max=config.Delta_max,
        search_split=False, fixed_split=space.n_layers,
        n_ops=space.n_ops, n_layers=space.n_layers, trace=trace,
    )
    arch = res.choice[: space.n_layers]
    if config.split_search:
        split = best_split(objective_of(config), final_sur, lat, arch, space.n_splits)
    else:
        split = int(config.fixed_split)
    extra = _theta_summary(res, space.n_layers, split)
    extra["dropout_distinguished"] = surrogates["dropout"].id != surrogates["no_dropout"].id
    return Choice(arch, split, final_sur, search_sur, lat, steps, extra, res.trace)
