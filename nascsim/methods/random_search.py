"""Random search: the best of N uniformly drawn (arch, split) by observed eq. 4a, with the same
budget of objective evaluations as ASNG (steps x λ) and NASC's surrogate; each draw is judged on
its own minibatch."""

from __future__ import annotations

from nascsim.config import SearchConfig
from nascsim.core.engine import make_rng, run_random_search
from nascsim.methods.common import NO_THETA, Choice, decode, latency_model_for, objective_of, split_variables, steps_of
from nascsim.space import Space


def run(config: SearchConfig, surrogates: dict, space: Space, trace: bool = False) -> Choice:
    """``config`` already validated (see :func:`nascsim.methods.run_search_losses`)."""
    sur = surrogates["dropout"]
    lat = latency_model_for(config, sur)
    steps = steps_of(config)
    res = run_random_search(
        objective_of(config), sur, lat, make_rng(config.seed), budget=steps * config.lam,
        n_ops=space.n_ops, n_layers=space.n_layers, noise=config.noise, minibatch=config.minibatch,
        **split_variables(config),
    )
    arch, split = decode(res.choice, config, space)
    return Choice(arch, split, sur, sur, lat, steps, {**NO_THETA, "search_s": res.wall_s})
