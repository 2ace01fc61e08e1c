"""Random search: the best of N uniformly drawn (arch, split) by observed eq. 4a, with the same
budget of objective evaluations as ASNG (steps x λ) and NASC's surrogate."""

from __future__ import annotations

from nascsim.config import SearchConfig
from nascsim.engine import make_rng, run_random_search
from nascsim.methods.common import Choice, latency_model_for, steps_of, validate
from nascsim.objective import LAT_SPLIT, LOSS_SC, Objective


def run(config: SearchConfig, surrogates: dict, trace: bool = False) -> Choice:
    space = validate(config)
    sur = surrogates["dropout"]
    lat = latency_model_for(config, sur)
    objective = Objective(config.threshold_ms, config.eps_loss, config.eps_lat, tuple(config.loss_set), LOSS_SC, LAT_SPLIT)
    steps = steps_of(config)
    res = run_random_search(
        objective, sur, lat, make_rng(config.seed), budget=steps * config.lam,
        search_split=config.split_search,
        fixed_split=-1 if config.split_search else int(config.fixed_split),
        n_ops=space.n_ops, n_layers=space.n_layers,
    )
    arch = res.choice[: space.n_layers]
    split = int(res.choice[space.n_layers]) if config.split_search else int(config.fixed_split)
    total = res.cache_hits + res.cache_misses
    extra = {"search_s": res.wall_s, "cache_hit_rate": res.cache_hits / total if total else 0.0}
    return Choice(arch, split, sur, sur, lat, steps, extra)
