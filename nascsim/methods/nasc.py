"""NASC: ASNG over (architecture, split) with the full objective of eq. 4; final choice argmax θ.

Searches, and evaluates the final model, with the surrogate of the supernet trained with dropout
at the split (Algorithm 1: pre-training with dropout 0.5; re-training with dropout).
"""

from __future__ import annotations

from nascsim.config import SearchConfig
from nascsim.core.engine import make_rng, run_asng_search
from nascsim.methods.common import (Choice, asng_options, decode, latency_model_for, objective_of, split_variables,
                                    steps_of, theta_summary)
from nascsim.space import Space


def run(config: SearchConfig, surrogates: dict, space: Space, trace: bool = False) -> Choice:
    """``config`` already validated (see :func:`nascsim.methods.run_search_losses`)."""
    sur = surrogates["dropout"]
    lat = latency_model_for(config, sur)
    steps = steps_of(config)
    res = run_asng_search(
        objective_of(config), sur, lat, make_rng(config.seed), steps=steps, n_ops=space.n_ops,
        n_layers=space.n_layers, trace=trace, **asng_options(config), **split_variables(config),
    )
    arch, split = decode(res.choice, config, space)
    return Choice(arch, split, sur, sur, lat, steps, theta_summary(res, space.n_layers, split), res.trace)
