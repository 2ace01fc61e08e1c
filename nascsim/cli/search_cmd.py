"""``nascsim search``: one search on the surrogate."""

from __future__ import annotations

from pathlib import Path

import click

from nascsim.cli.options import MAX_CLASSES, _rule, latency_options, surrogate_options
from nascsim.limits import MAX_SEARCH_SAMPLES

def classes_of_surrogate(ctx, param, value):
    """--classes within [2, MAX_CLASSES] (it must also match the surrogate's, checked later)."""
    if value is not None and not 2 <= value <= MAX_CLASSES:
        raise click.BadParameter(f"--classes {value} is outside [2, {MAX_CLASSES:,}]", ctx=ctx, param=param)
    return value


classes_of_surrogate.bounded_by = "classes"


def parse_loss_set(text: str) -> tuple[float, ...]:
    """``0,0.1,0.2`` -> rates (their range is checked with the rest of the config)."""
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip() != "")
    except ValueError:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise ValueError(f"loss set must be comma-separated rates, got {shown!r}") from None
    if not values:
        raise ValueError(f"loss set is empty: {text!r}")
    return values


def load_surrogates(space: str, surrogate: str | None, dropout: str | None, no_dropout: str | None) -> dict:
    """{"dropout", "no_dropout"} from the given files (``--surrogate`` both roles, the role options
    override it); the shipped defaults for roles left open."""
    from nascsim.api import surrogate_roles

    return surrogate_roles(space, surrogate, dropout, no_dropout)


def compile_notice(*lams: int) -> None:
    """One line on stderr when a search kernel (for the given λ) is not in numba's cache yet."""
    from nascsim.core.engine import kernels_ready

    if not all(kernels_ready(lam) for lam in lams):
        click.echo("nascsim: compiling the search kernels (once; later runs load them from the cache)", err=True)


def write_trace(trace: dict, path: str) -> None:
    """Per-step θ entropy, split marginal, Δ, ε_θ and each sample's objective, as parquet."""
    from pathlib import Path

    from nascsim.api import trace_frame
    from nascsim.hw.tables import atomic_write_parquet

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_parquet(trace_frame(trace), target)


@click.command()
@click.option("--method", default="nasc", show_default=True,
              help="nasc, hwnas, hwnas-dropout, random, or a registered method (docs/plugins.md).")
@click.option("--threshold", "threshold_ms", default=30.0, show_default=True, type=float, callback=_rule("threshold_ms"), help="Latency threshold T_th in ms.")
@click.option("--loss", default=0.0, show_default=True, type=float, callback=_rule("loss"), help="Packet-loss rate at which the final accuracy is reported.")
@click.option("--seed", default=0, show_default=True, type=int, callback=_rule("seed"), help="Seed of the run's random stream.")
@latency_options
@click.option("--classes", default=None, type=int, callback=classes_of_surrogate,
              help="Classifier outputs; must match the surrogate's dataset. [default: the surrogate's]")
@click.option("--steps", default=None, type=int, callback=_rule("steps"), help="Distribution-update steps (default: the paper's 90 epochs = 35,190).")
@click.option("--lam", default=2, show_default=True, type=int, callback=_rule("lam"), help="Samples per ASNG step (λ).")
@click.option("--eps-lat", default=1.0, show_default=True, type=float, callback=_rule("eps_lat"), help="Weight ε_lat of the latency penalty.")
@click.option("--eps-loss", default=1.0, show_default=True, type=float, callback=_rule("eps_loss"), help="Weight ε_loss of the loss term.")
@click.option("--loss-set", default="0,0.1,0.2,0.3,0.4,0.5", show_default=True, help="Dropout rates P averaged in l_SC.")
@click.option("--noise", default="shared", show_default=True, type=click.Choice(["shared", "independent", "none"]), help="How the loss term is observed: the λ samples of a step on one minibatch (shared), each on its own (independent), or noise-free (none).")
@click.option("--minibatch", default=64, show_default=True, type=int, callback=_rule("minibatch"), help="Images per minibatch; the surrogate's noise is scaled to it.")
@click.option("--no-split-search", is_flag=True, help="Ablation: keep the split fixed at --fixed-split.")
@click.option("--fixed-split", default=None, type=int, callback=_rule("fixed_split"), help="The split used with --no-split-search.")
@surrogate_options
@click.option("--trace", "trace_path", default=None, type=click.Path(dir_okay=False), help="Write per-step θ entropy, split marginal, Δ, ε_θ, objectives (parquet).")
@click.option("--trace-plot", "trace_plot", default=None, type=click.Path(dir_okay=False),
              help="Plot the θ / objective history (.png or .pdf).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (non-finite numbers as the strings \"inf\", \"nan\").")
@click.option("--force", is_flag=True, help=f"Run a search of more than {MAX_SEARCH_SAMPLES:,} samples (steps x λ; docs/limits.md).")
def search(method, threshold_ms, loss, seed, space, head, tail, bits, bandwidth, source, tables, classes, steps, lam,
           eps_lat, eps_loss, loss_set, noise, minibatch, no_split_search, fixed_split, surrogate, surrogate_dropout,
           surrogate_no_dropout, trace_path, trace_plot, as_json, force):
    """Search an architecture and split point under a latency threshold (NASC or a baseline).

    Every option is checked (nascsim.validate) before anything runs or is written.
    """
    from nascsim.api import _tables_path, role_warning, to_json
    from nascsim.config import SearchConfig
    from nascsim.methods import run_search
    from nascsim.limits import check_search_work
    from nascsim.methods.common import validate
    from nascsim.surrogate.provenance import of_record

    if (trace_path is not None or trace_plot is not None) and method == "random":
        raise ValueError("--trace records the ASNG distribution; random search has none")
    if trace_plot is not None and Path(trace_plot).suffix.lower() not in (".png", ".pdf", ".svg"):
        raise ValueError(f"--trace-plot {trace_plot!r}: expected a .png, .pdf or .svg file")
    from nascsim.atomic import check_output_target

    for flag, target in (("--trace", trace_path), ("--trace-plot", trace_plot)):
        if target is not None:
            check_output_target(target, flag)  # a FIFO, device or link is refused before the search runs
    config = SearchConfig(
        method=method, threshold_ms=threshold_ms, loss=loss, seed=seed, space=space, head=head, tail=tail,
        bits=bits, bandwidth=bandwidth, source=source, steps=steps, lam=lam, eps_lat=eps_lat, eps_loss=eps_loss,
        loss_set=parse_loss_set(loss_set), split_search=not no_split_search, fixed_split=fixed_split,
        tables=_tables_path(tables), noise=noise, minibatch=minibatch,
    )
    validate(config)
    check_search_work(config.steps, config.lam, force, "--force")
    surrogates = load_surrogates(space, surrogate, surrogate_dropout, surrogate_no_dropout)
    if classes is not None and classes != surrogate_classes(surrogates):
        raise ValueError(f"--classes {classes} does not match the surrogate's {surrogate_classes(surrogates)} classes "
                         "(the classifier comes from the surrogate's dataset)")
    message = role_warning(surrogates, [method])
    if message:
        from nascsim.cli import warn

        warn(message)
    want_trace = trace_path is not None or trace_plot is not None
    compile_notice(config.lam)
    rec = run_search(config, surrogates, trace=want_trace)
    rec["provenance"] = of_record(rec, surrogates)
    trace = rec.pop("_trace", None)
    if want_trace and trace is None:
        raise ValueError(f"method {method!r} recorded no trace")
    if trace_path is not None:
        write_trace(trace, trace_path)
    if trace_plot is not None:
        from nascsim.api import trace_frame
        from nascsim.sweep.plots import plot_trace

        plot_trace(trace_frame(trace), trace_plot, rec)
    if as_json:
        click.echo(to_json(rec))
        return
    click.echo(f"{rec['method']} | T_th {rec['threshold_ms']:g} ms | loss {rec['loss']:g} | seed {rec['seed']} | {rec['steps']} steps in {rec['search_s']:.3f} s")
    click.echo(f"  arch   {','.join(rec['arch'])}")
    click.echo(f"  split  {rec['split']}  (payload {rec['payload_bits']:.0f} bit)")
    click.echo(f"  T = {rec['T_head_ms']:.3f} (head) + {rec['T_comm_ms']:.3f} (comm) + {rec['T_tail_ms']:.3f} (tail) = {rec['T_ms']:.3f} ms  "
               f"-> {'feasible' if rec['feasible'] else 'NOT feasible'} (T <= {rec['threshold_ms']:g})")
    click.echo(f"  expected accuracy at loss {rec['loss']:g}: {100 * rec['accuracy']:.2f}%")
    if rec.get("theta_op_confidence") is not None:
        decided = rec.get("theta_decided_share")
        more = f", {100 * decided:.0f}% of variables decided (max θ >= 0.9)" if decided is not None else ""
        click.echo(f"  θ at the end: mean max-probability of the ops {rec['theta_op_confidence']:.2f}{more}")
    click.echo(f"  {rec['provenance']}")
    click.echo(f"  judged by {rec['surrogate']}; searched with {rec['search_surrogate']}")


def surrogate_classes(surrogates: dict) -> int:
    return int(surrogates["dropout"].classes)
