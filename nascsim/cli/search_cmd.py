"""``nascsim search``: one search on the surrogate."""

from __future__ import annotations

import json

import click

from nascsim.cli.options import latency_options

METHOD_CHOICES = ("nasc", "hwnas", "hwnas-dropout", "random")


def parse_loss_set(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip() != "")
    except ValueError:
        raise ValueError(f"loss set must be comma-separated rates, got {text!r}") from None
    if not values:
        raise ValueError(f"loss set is empty: {text!r}")
    return values


def load_surrogates(path: str | None, path_no_dropout: str | None) -> dict | None:
    """None (shipped defaults), or {"dropout", "no_dropout"} from the given files."""
    if path is None and path_no_dropout is None:
        return None
    from nascsim.surrogate import default_surrogates, load_surrogate

    base = default_surrogates() if path is None else None
    s = load_surrogate(path) if path is not None else base["dropout"]
    s0 = load_surrogate(path_no_dropout) if path_no_dropout is not None else (s if path is not None else base["no_dropout"])
    return {"dropout": s, "no_dropout": s0}


def compile_notice(*lams: int) -> None:
    """One line on stderr when a search kernel (for the given λ) is not in numba's cache yet."""
    from nascsim.engine import kernels_ready

    if not all(kernels_ready(lam) for lam in lams):
        click.echo("nascsim: compiling the search kernels (once; later runs load them from the cache)", err=True)


def write_trace(trace: dict, path: str) -> None:
    """Per-step θ entropy, split marginal, Δ, ε_θ and each sample's objective, as parquet."""
    import polars as pl

    from pathlib import Path

    from nascsim.tables import atomic_write_parquet

    steps = len(trace["entropy"])
    cols = {"step": list(range(1, steps + 1)), "theta_entropy": trace["entropy"], "Delta": trace["Delta"], "eps_theta": trace["eps"]}
    for i in range(trace["f"].shape[1]):
        cols[f"f_sample{i}"] = trace["f"][:, i]
    if trace.get("split_marginal") is not None:
        for k in range(trace["split_marginal"].shape[1]):
            cols[f"theta_split_{k:02d}"] = trace["split_marginal"][:, k]
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_parquet(pl.DataFrame(cols), target)


@click.command()
@click.option("--method", default="nasc", show_default=True, help="nasc, hwnas, hwnas-dropout or random.")
@click.option("--threshold", "threshold_ms", default=30.0, show_default=True, type=float, help="Latency threshold T_th in ms.")
@click.option("--loss", default=0.0, show_default=True, type=float, help="Packet-loss rate at which the final accuracy is reported.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the run's random stream.")
@latency_options
@click.option("--steps", default=None, type=int, help="Distribution-update steps (default: the paper's 90 epochs = 35,190).")
@click.option("--lam", default=2, show_default=True, type=int, help="Samples per ASNG step (λ).")
@click.option("--eps-lat", default=1.0, show_default=True, type=float, help="Weight ε_lat of the latency penalty.")
@click.option("--eps-loss", default=1.0, show_default=True, type=float, help="Weight ε_loss of the loss term.")
@click.option("--loss-set", default="0,0.1,0.2,0.3,0.4,0.5", show_default=True, help="Dropout rates P averaged in l_SC.")
@click.option("--noise", default="shared", show_default=True, type=click.Choice(["shared", "independent", "none"]), help="How the loss term is observed: the λ samples of a step on one minibatch (shared), each on its own (independent), or noise-free (none).")
@click.option("--minibatch", default=64, show_default=True, type=int, help="Images per minibatch; the surrogate's noise is scaled to it.")
@click.option("--no-split-search", is_flag=True, help="Ablation: keep the split fixed at --fixed-split.")
@click.option("--fixed-split", default=None, type=int, help="The split used with --no-split-search.")
@click.option("--surrogate", "surrogate_path", default=None, type=click.Path(dir_okay=False), help="Surrogate file (both roles) instead of the shipped defaults.")
@click.option("--surrogate-no-dropout", "surrogate_nd_path", default=None, type=click.Path(dir_okay=False), help="Surrogate of a supernet trained without split dropout (hwnas).")
@click.option("--trace", "trace_path", default=None, type=click.Path(dir_okay=False), help="Write per-step θ entropy, split marginal, Δ, ε_θ, objectives (parquet).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def search(method, threshold_ms, loss, seed, space, head, tail, bits, bandwidth, source, classes, steps, lam, eps_lat,
           eps_loss, loss_set, noise, minibatch, no_split_search, fixed_split, surrogate_path, surrogate_nd_path, trace_path,
           as_json):
    """Search an architecture and split point under a latency threshold (NASC or a baseline).

    The number of classes comes from the surrogate's dataset; --classes is ignored here.
    """
    from nascsim.config import SearchConfig
    from nascsim.methods import run_search
    from nascsim.methods.common import validate

    if method not in METHOD_CHOICES:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHOD_CHOICES)}")
    if trace_path is not None and method == "random":
        raise ValueError("--trace records the ASNG distribution; random search has none")
    config = SearchConfig(
        method=method, threshold_ms=threshold_ms, loss=loss, seed=seed, space=space, head=head, tail=tail,
        bits=bits, bandwidth=bandwidth, source=source, steps=steps, lam=lam, eps_lat=eps_lat, eps_loss=eps_loss,
        loss_set=parse_loss_set(loss_set), split_search=not no_split_search, fixed_split=fixed_split,
        noise=noise, minibatch=minibatch,
    )
    validate(config)
    surrogates = load_surrogates(surrogate_path, surrogate_nd_path)
    compile_notice(config.lam)
    rec = run_search(config, surrogates, trace=trace_path is not None)
    trace = rec.pop("_trace", None)
    if trace_path is not None:
        write_trace(trace, trace_path)
    if as_json:
        click.echo(json.dumps(rec))
        return
    click.echo(f"{rec['method']} | T_th {rec['threshold_ms']:g} ms | loss {rec['loss']:g} | seed {rec['seed']} | {rec['steps']} steps in {rec['search_s']:.3f} s")
    click.echo(f"  arch   {','.join(rec['arch'])}")
    click.echo(f"  split  {rec['split']}  (payload {rec['payload_bits']:.0f} bit)")
    click.echo(f"  T = {rec['T_head_ms']:.3f} (head) + {rec['T_comm_ms']:.3f} (comm) + {rec['T_tail_ms']:.3f} (tail) = {rec['T_ms']:.3f} ms  "
               f"-> {'feasible' if rec['feasible'] else 'NOT feasible'} (T <= {rec['threshold_ms']:g})")
    click.echo(f"  expected accuracy at loss {rec['loss']:g}: {rec['accuracy']:.4f}")
    click.echo(f"  surrogate {rec['surrogate']} (dataset: {rec['dataset']}); search surrogate {rec['search_surrogate']}")
