"""NASC: ASNG over (architecture, split) with the full objective of eq. 4; final choice argmax θ.

Searches, and evaluates the final model, with the surrogate of the supernet trained with dropout
at the split (Algorithm 1: pre-training with dropout 0.5; re-training with dropout).
"""

from __future__ import annotations

from nascsim.config import SearchConfig
from nascsim.engine import make_rng, run_asng_search
from nascsim.methods.common import Choice, decode, latency_model_for, objective_of, split_variables, steps_of
from nascsim.space import Space


def run(config: SearchConfig, surrogates: dict, space: Space, trace: bool = False) -> Choice:
    """``config`` already validated (see :func:`nascsim.methods.run_search_losses`)."""
    sur = surrogates["dropout"]
    lat = latency_model_for(config, sur)
    steps = steps_of(config)
    res = run_asng_search(
        objective_of(config), sur, lat, make_rng(config.seed),
        steps=steps, lam=config.lam, alpha=config.alpha, delta0=config.delta0, Delta_max=config.Delta_max,
        n_ops=space.n_ops, n_layers=space.n_layers, trace=trace, **split_variables(config),
    )
    arch, split = decode(res.choice, config, space)
    return Choice(arch, split, sur, sur, lat, steps, _theta_summary(res, space.n_layers, split), res.trace)


def _theta_summary(res, n_layers: int, split: int) -> dict:
    """θ summary: mean max-probability of the op variables, the split's probability, Δ, updates."""
    import numpy as np

    theta, C = res.theta, res.C
    op_conf = float(np.mean([theta[d, : C[d]].max() for d in range(n_layers)]))
    split_prob = float(theta[n_layers, split]) if len(C) > n_layers else 1.0
    total = res.cache_hits + res.cache_misses
    return {
        "theta_op_confidence": op_conf,
        "theta_split_prob": split_prob,
        "Delta": res.Delta,
        "n_updates": res.n_updates,
        "search_s": res.wall_s,
        "cache_hit_rate": res.cache_hits / total if total else 0.0,
    }
