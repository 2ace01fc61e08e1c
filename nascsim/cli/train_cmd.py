"""``nascsim supernet train|evaluate``, ``nascsim retrain`` and ``nascsim confirm`` (the torch stage).

torch is imported only inside the command bodies; without it each command fails with one line.
"""

from __future__ import annotations

import click

from nascsim.cli import fail
from nascsim.cli.options import count, number
from nascsim.train.confirm_sweep import DEFAULT_EPOCHS as DEFAULT_CONFIRM_EPOCHS
from nascsim.limits import (MAX_BATCH_SIZE, MAX_EPOCHS, MAX_EVAL_PAIRS, MAX_IMAGES, MAX_LAMBDA_X, MAX_MONITOR_PAIRS,
                            MAX_NOISE_BATCHES, MAX_ROWS_PER_CALL, MAX_SECONDS, MAX_SEED, MAX_THREADS, MAX_TOP)


def _torch(threads: int | None = None) -> None:
    from nascsim.train import require_torch

    try:
        require_torch()
    except ImportError as exc:
        fail(str(exc))
    if threads is not None:
        if threads < 1:
            fail(f"--threads must be at least 1, got {threads}")
        import torch

        torch.set_num_threads(threads)


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise click.BadParameter(f"{what} must be comma-separated numbers, got {text!r}") from None


def _positive(name: str, value, minimum: int = 1) -> None:
    if value is not None and value < minimum:
        fail(f"{name} must be at least {minimum}, got {value}")


def recipe_options(f=None, **defaults):
    """Training knobs shared by ``supernet train``, ``supernet campaign`` and ``retrain`` (see
    nascsim.train.loop.Recipe, whose defaults they are unless ``defaults`` overrides one)."""
    from nascsim.train.recipe import Recipe

    base = {**Recipe().to_dict(), **defaults}

    def deco(f):
        opts = [
            click.option("--threads", default=None, type=count(1, MAX_THREADS), help="torch CPU threads (default: torch's choice)."),
            click.option("--seed", default=0, show_default=True, type=count(0, MAX_SEED), help="Run seed (data split, init, sampling, augmentation, dropout)."),
            click.option("--no-augment", is_flag=True, help="Disable random crop + flip."),
            click.option("--zero-residual/--no-zero-residual", default=True, show_default=True, help="Zero-init the last BN of residual blocks."),
            click.option("--init", default=base["init"], show_default=True, type=click.Choice(["fan_out", "group_fan_out"]),
                         help="Conv init: torch's fan-out, or each output channel's own fan-out (depthwise: k*k)."),
            click.option("--sampling", default=base["sampling"], show_default=True, type=click.Choice(["uniform", "balanced", "sandwich"]),
                         help="Op sampling: independent uniform, every op of a layer once per block of paths (FairNAS), "
                              "or the largest architecture first in every minibatch (sandwich)."),
            click.option("--distill", default=base["distill"], show_default=True, type=number(0, 1),
                         help="In-place distillation weight of the other paths (sandwich sampling)."),
            click.option("--width", default=base["width"], show_default=True, type=number(0, 1, low_open=True),
                         help="Proxy setting: channel multiplier of stem, layers and header, in (0, 1]."),
            click.option("--resolution", default=base["resolution"], show_default=True, type=click.Choice(["8", "16", "24", "32"]),
                         callback=lambda ctx, param, v: int(v), help="Proxy setting: input images resized to this many pixels."),
            click.option("--sharing", default=base["sharing"], show_default=True, type=click.Choice(["none", "entangled", "entangled-bn"]),
                         help="Supernet ops with their own weights, or a layer's conv ops sliced from one set (superkernel)."),
            click.option("--op-lr-scale", default=base["op_lr_scale"], show_default=True, type=number(0, 1000, low_open=True),
                         help="Learning-rate factor of the supernet's op-private parameters."),
            click.option("--header-lr-scale", default=base["header_lr_scale"], show_default=True, type=number(0, 1000, low_open=True),
                         help="Learning-rate factor of the shared header and classifier."),
            click.option("--wd-scope", default=base["wd_scope"], show_default=True, type=click.Choice(["all", "weights"]),
                         help="Weight decay on every parameter, or on conv and linear weights only."),
            click.option("--clip", "grad_clip", default=base["grad_clip"], show_default=True, type=number(0, 1e6), help="Gradient-norm clip (0: off)."),
            click.option("--label-smoothing", default=base["label_smoothing"], show_default=True, type=number(0, 1)),
            click.option("--schedule", default=base["schedule"], show_default=True, type=click.Choice(["cosine", "constant"])),
            click.option("--warmup", "warmup_epochs", default=base["warmup_epochs"], show_default=True, type=number(0, MAX_EPOCHS), help="Linear lr warm-up, in epochs."),
            click.option("--wd", "weight_decay", default=base["weight_decay"], show_default=True, type=number(0, 1), help="Weight decay."),
            click.option("--momentum", default=base["momentum"], show_default=True, type=number(0, 1), help="SGD (Nesterov) momentum."),
            click.option("--lr", default=base["lr"], show_default=True, type=number(0, 1000, low_open=True), help="Peak learning rate."),
            click.option("--batch-size", default=base["batch_size"], show_default=True, type=count(1, MAX_BATCH_SIZE)),
        ]
        for o in opts:
            f = o(f)
        return f

    return deco(f) if f is not None else deco


def device_defaults(kw: dict, device: str) -> dict:
    """``kw`` with the CPU proxy recipe (:data:`nascsim.train.recipe.CPU_PROXY`) in place of every
    recipe option left at its default, when ``device`` is (or ``auto`` resolves to) a CPU."""
    import torch

    from nascsim.train.recipe import CPU_PROXY

    cpu = device == "cpu" or device.startswith("cpu:") or (device == "auto" and not torch.cuda.is_available())
    if not cpu:
        return kw
    ctx = click.get_current_context()
    out = dict(kw)
    for k, v in CPU_PROXY.items():
        if ctx.get_parameter_source(k) in (click.core.ParameterSource.DEFAULT, None):
            out[k] = v
    return out


def _recipe_kw(kw) -> dict:
    keys = ("batch_size", "lr", "momentum", "weight_decay", "warmup_epochs", "schedule", "label_smoothing", "grad_clip",
            "zero_residual", "seed", "header_lr_scale", "wd_scope", "sampling", "init", "width", "resolution", "sharing",
            "op_lr_scale", "distill")
    out = {k: kw[k] for k in keys}
    out["augment"] = not kw["no_augment"]
    return out


def _recipe(epochs, dropout, lambda_x, kw):
    from nascsim.train.recipe import Recipe

    _positive("--batch-size", kw["batch_size"])
    _positive("--epochs", epochs)
    return Recipe(epochs=epochs, split_dropout=dropout, lambda_x=lambda_x, **_recipe_kw(kw))


@click.group()
def supernet():
    """Train a single-path supernet (Algorithm 1, lines 2-4) and evaluate its subnets."""


@supernet.command("train")
@click.option("--data", required=True, type=click.Path(), help="Dataset folder (CIFAR pickles, image folder, or .tar.gz).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder (checkpoint.pt).")
@click.option("--space", default="fbnet", show_default=True, help="fbnet or extended.")
@click.option("--epochs", default=30, show_default=True, type=count(1, MAX_EPOCHS), help="Pre-training epochs (paper: 30).")
@click.option("--dropout", default=0.5, show_default=True, type=number(0, 1), help="Dropout rate p at the split (0: the HWNAS w/o dropout supernet).")
@click.option("--lambda-x", default=2, show_default=True, type=count(1, MAX_LAMBDA_X), help="(arch, split) pairs per minibatch.")
@click.option("--valid-images", default=5000, show_default=True, type=count(1, MAX_IMAGES), help="Training images held out for evaluations.")
@click.option("--train-images", default=None, type=count(1, MAX_IMAGES), help="Cap on training images (smoke runs).")
@click.option("--max-epochs", default=None, type=count(1, MAX_EPOCHS), help="Stop after this many epochs of this call (resume later).")
@click.option("--monitor-pairs", default=8, show_default=True, type=count(0, MAX_MONITOR_PAIRS), help="Subnets evaluated after each epoch (accuracy mean and spread).")
@click.option("--cache-dir", default=None, type=click.Path(file_okay=False), help="Where decoded images are cached (default: next to the data).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:0 ...")
@click.option("--resume", is_flag=True, help="Continue the checkpoint in --out exactly (its stored recipe).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@recipe_options
def supernet_train(data, out_dir, space, epochs, dropout, lambda_x, valid_images, train_images, max_epochs,
                   monitor_pairs, cache_dir, device, resume, no_progress, **kw):
    """Pre-train a supernet; checkpoint after every epoch."""
    _torch(kw.pop("threads"))
    _positive("--train-images", train_images)
    _positive("--valid-images", valid_images)
    _positive("--max-epochs", max_epochs)
    from nascsim.train.pretrain import pretrain

    last = pretrain(data, out_dir, space, _recipe(epochs, dropout, lambda_x, kw), valid_images, cache_dir, device,
                    resume, not no_progress, max_epochs, monitor_pairs, train_images=train_images)
    for e in last["log"]:
        spread = (f"  subnet acc {e['subnet_acc_mean']:.3f} sd {e['subnet_acc_sd']:.3f} "
                  f"({e['subnet_acc_min']:.3f}..{e['subnet_acc_max']:.3f})") if "subnet_acc_mean" in e else ""
        click.echo(f"epoch {e['epoch']:3d}  loss {e['loss']:.4f}  {e['images_per_s']:.1f} img/s  {e['s']:.1f} s{spread}")
    click.echo(f"wrote {out_dir}/checkpoint.pt ({last['id']}, {last['epoch']} epochs)")


@supernet.command("evaluate")
@click.option("--checkpoint", required=True, type=click.Path(), help="Supernet checkpoint (file or its folder).")
@click.option("--data", required=True, type=click.Path(), help="The dataset the supernet was trained on.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Evaluation parquet to write.")
@click.option("--pairs", default=20000, show_default=True, type=count(0, MAX_EVAL_PAIRS), help="(arch, split) pairs on single batches.")
@click.option("--lowvar-pairs", default=500, show_default=True, type=count(0, MAX_EVAL_PAIRS), help="Pairs of the low-noise test set (whole held-out split).")
@click.option("--ps", default="0,0.1,0.2,0.3,0.4,0.5", show_default=True, help="Loss rates P.")
@click.option("--batch-images", default=1000, show_default=True, type=count(1, MAX_IMAGES), help="Images per held-out batch.")
@click.option("--repeat-share", default=0.15, show_default=True, type=number(0, 1), help="Share of pairs re-evaluated on another batch.")
@click.option("--near-share", default=0.3, show_default=True, type=number(0, 1), help="Share of pairs drawn near the latency thresholds.")
@click.option("--thresholds", default="30,35,40,50", show_default=True, help="T_th values (ms) for the near-threshold pairs.")
@click.option("--band", default=0.1, show_default=True, type=number(0, 1), help="Relative band around T_th.")
@click.option("--head", default="raspi4", show_default=True)
@click.option("--tail", default="edgegpu", show_default=True)
@click.option("--seed", default=0, show_default=True, type=count(0, MAX_SEED))
@click.option("--cache-dir", default=None, type=click.Path(file_okay=False))
@click.option("--device", default="auto", show_default=True)
@click.option("--threads", default=None, type=count(1, MAX_THREADS), help="torch CPU threads (default: torch's choice).")
@click.option("--noise-pairs", default=0, show_default=True, type=count(0, MAX_EVAL_PAIRS), help="Pairs of the minibatch-noise set (0: none).")
@click.option("--noise-batches", default=20, show_default=True, type=count(1, MAX_NOISE_BATCHES), help="Shared minibatches of the noise set.")
@click.option("--noise-images", default=64, show_default=True, type=count(1, MAX_IMAGES), help="Images per noise minibatch.")
@click.option("--max-rows", default=None, type=count(1, MAX_ROWS_PER_CALL), help="Rows (images x p x pairs) per evaluation call.")
@click.option("--no-progress", is_flag=True)
def supernet_evaluate(checkpoint, data, out, pairs, lowvar_pairs, ps, batch_images, repeat_share, near_share,
                      thresholds, band, head, tail, seed, cache_dir, device, threads, noise_pairs, noise_batches,
                      noise_images, max_rows, no_progress):
    """Evaluate sampled (arch, split) pairs at every p; one parquet row per evaluation."""
    _torch(threads)
    from nascsim.train.evaluate import evaluate_supernet

    _positive("--batch-images", batch_images)

    _positive("--noise-batches", noise_batches)
    _positive("--noise-images", noise_images)
    _positive("--max-rows", max_rows)
    meta = evaluate_supernet(checkpoint, data, out, pairs, lowvar_pairs, _floats(ps, "--ps"), batch_images,
                             repeat_share, near_share, _floats(thresholds, "--thresholds"), band, head, tail,
                             seed, cache_dir, device, not no_progress, noise_pairs, noise_batches, noise_images, max_rows)
    ev = meta["eval"]
    rate = f"{ev['evals_per_s']:.1f} evaluations/s ({ev['pairs_per_s']:.2f} pairs/s)" if ev["evals_per_s"] else ""
    noise = f" + {noise_pairs} noise pairs x {noise_batches} minibatches" if noise_pairs else ""
    click.echo(f"wrote {out}: {pairs} pairs + {lowvar_pairs} low-noise pairs{noise}, {rate}")


@click.command()
@click.option("--data", required=True, type=click.Path())
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder (checkpoint, head.pt, tail.pt, retrain.json).")
@click.option("--arch", required=True, help="22 ops as names or indices, comma separated.")
@click.option("--split", required=True, type=count(0, 22), help="Split point: 0 = after the stem, k = after layer k.")
@click.option("--space", default="fbnet", show_default=True)
@click.option("--dropout", default=0.5, show_default=True, type=number(0, 1), help="Dropout at the split during training.")
@click.option("--epochs", default=300, show_default=True, type=count(1, MAX_EPOCHS), help="Paper: 300.")
@click.option("--ps", default="0,0.1,0.2,0.3,0.4,0.5", show_default=True, help="Loss rates to test at.")
@click.option("--bits", default=32, show_default=True, type=number(0, 64), help="Bits q per payload element on the channel.")
@click.option("--train-images", default=None, type=count(1, MAX_IMAGES), help="Cap on training images (smoke runs).")
@click.option("--cache-dir", default=None, type=click.Path(file_okay=False))
@click.option("--device", default="auto", show_default=True)
@click.option("--resume", is_flag=True)
@click.option("--no-progress", is_flag=True)
@recipe_options
def retrain(data, out_dir, arch, split, space, dropout, epochs, ps, bits, train_images, cache_dir, device, resume,
            no_progress, **kw):
    """Re-train one architecture from scratch, test it at each p, export head and tail, and confirm
    the split over a lossy channel."""
    _torch(kw.pop("threads"))
    _positive("--train-images", train_images)
    _check_channel(bits, ps)
    from nascsim.train.retrain import retrain as run

    res = run(data, out_dir, arch, split, space, _recipe(epochs, dropout, 1, kw), _floats(ps, "--ps"), cache_dir,
              device, resume, not no_progress, train_images, bits)
    click.echo(f"head {res['head_ms']:.2f} ms, tail {res['tail_ms']:.2f} ms ({res['latency_device']}), payload {res['payload_elements']} elements")
    click.echo(f"{'p':>5s} {'test acc':>9s} {'channel acc':>12s}")
    for r in res["rows"]:
        click.echo(f"{r['p']:5.2f} {r['test_acc']:9.4f} {r['channel_acc']:12.4f}")
    click.echo(f"wrote {out_dir}/retrain.json, head.pt, tail.pt")


def _check_channel(bits: float, ps: str) -> None:
    """The channel's bits per element and the loss rates to test at, checked before any training."""
    from nascsim.train.channel import check_bits, check_loss_rates

    try:
        check_bits(bits)
        check_loss_rates(_floats(ps, "--ps"))
    except ValueError as exc:
        fail(str(exc))


@click.command()
@click.argument("results", type=click.Path())
@click.option("--data", required=True, type=click.Path())
@click.option("--out", required=True, type=click.Path(),
              help="A sweep's cell: output folder (confirm.parquet, confirm.md, confirm.png, one subfolder per network). "
                   "With --top or a search JSON: the parquet of predicted vs measured accuracy.")
@click.option("--threshold", default=30.0, show_default=True, type=number(0, 1e6, low_open=True), help="The cell's T_th (ms).")
@click.option("--loss", default=0.2, show_default=True, type=number(0, 1), help="The cell's loss rate p.")
@click.option("--methods", default="nasc,hwnas,hwnas-dropout", show_default=True, help="Methods of the cell, comma separated.")
@click.option("--seeds", default=None, help="Seeds of the cell, comma separated. [default: every seed the cell holds]")
@click.option("--method-dropout", multiple=True, metavar="METHOD=P",
              help="Split dropout in re-training of one method (repeatable). [default: 0.5 for nasc and hwnas-dropout, "
                   "0 for hwnas, as the paper re-trains]")
@click.option("--jobs", default=1, show_default=True, type=count(1, MAX_THREADS),
              help="Networks trained at once, one process each with one torch thread (one per core).")
@click.option("--supernet", "supernets", multiple=True, metavar="ROLE=CHECKPOINT",
              help="Add each network's accuracy on this supernet's held-out split; ROLE dropout (judges nasc and "
                   "hwnas-dropout) or no_dropout (hwnas). Repeatable.")
@click.option("--top", default=None, type=count(1, MAX_TOP),
              help="The older mode: re-train the top K distinct candidates of a search JSON or sweep parquet by "
                   "predicted accuracy (default 3 for a search JSON).")
@click.option("--space", default="fbnet", show_default=True, help="Search space of a search JSON (--top mode).")
@click.option("--dropout", default=None, type=number(0, 1),
              help="Split dropout in re-training: of every method (a sweep's cell), or of the candidates (--top mode, default 0.5).")
@click.option("--epochs", default=None, type=count(1, MAX_EPOCHS),
              help=f"Epochs per network, the proxy budget. A sweep's cell: default {DEFAULT_CONFIRM_EPOCHS}, sized for the "
                   "Fig. 2 cell (15 networks) on 2 CPU cores within 120 min at width 0.25, 16 px: 10-epoch stand-alone runs "
                   "there took 451-463 s with the other core busy (5-epoch runs 201-348 s, docs/torch-stage.md), so 8 "
                   "networks on the busier core take about 62 min; after 5 epochs networks were still 8-10 points below "
                   "their 10-epoch accuracy. A full-width 32 px proxy costs many times more per "
                   "epoch. --top mode: default 300 (paper).")
@click.option("--ps", default="0,0.1,0.2,0.3,0.4,0.5", show_default=True, help="Loss rates to test at.")
@click.option("--bits", default=32, show_default=True, type=number(0, 64))
@click.option("--train-images", default=None, type=count(1, MAX_IMAGES))
@click.option("--cache-dir", default=None, type=click.Path(file_okay=False))
@click.option("--device", default="auto", show_default=True)
@click.option("--no-progress", is_flag=True)
@recipe_options
def confirm(results, data, out, threshold, loss, methods, seeds, method_dropout, jobs, supernets, top, space, dropout,
            epochs, ps, bits, train_images, cache_dir, device, no_progress, **kw):
    """Re-train a sweep's final models and compare with the surrogate: by default the paper's Fig. 2
    cell (T_th 30 ms, p 0.2; nasc, hwnas, hwnas-dropout; every seed), each network re-trained
    stand-alone at the proxy setting of the sweep's surrogates (their model card; full width 32 px
    when it records none, unless --width/--resolution are given) and tested at each p. Resumable:
    run it again with the same options to continue. With --top K (or a search JSON): the older
    top-K re-training, predicted vs measured accuracy in one parquet."""
    _torch(kw.pop("threads"))
    from pathlib import Path

    _positive("--train-images", train_images)
    _check_channel(bits, ps)
    ctx = click.get_current_context()
    explicit = lambda name: ctx.get_parameter_source(name) not in (click.core.ParameterSource.DEFAULT, None)  # noqa: E731
    if top is not None or (Path(results).is_file() and Path(results).suffix != ".parquet"):
        for name, flag in CELL_OPTIONS.items():
            if explicit(name):
                fail(f"{flag} applies to a sweep's cell, not to the --top mode (--top or a search JSON)")
        _confirm_top(results, data, out, space, top or 3, 0.5 if dropout is None else dropout, epochs or 300, ps, bits,
                     train_images, cache_dir, device, no_progress, kw)
        return
    from nascsim.train.confirm_sweep import Cell, ConfirmSettings, confirm_cell

    try:
        cell = Cell(threshold, loss, _names(methods, "--methods"), None if seeds is None else _ints(seeds, "--seeds"))
        per_method = {m: dropout for m in cell.methods} if dropout is not None else {}
        per_method.update(_pairs(method_dropout, "--method-dropout", "METHOD=P", float))
        settings = ConfirmSettings(
            results=results, data=data, out=out, cell=cell, epochs=epochs or DEFAULT_CONFIRM_EPOCHS,
            ps=tuple(_floats(ps, "--ps")), jobs=jobs, width=kw["width"] if explicit("width") else None,
            resolution=kw["resolution"] if explicit("resolution") else None, dropout=per_method,
            supernets=_pairs(supernets, "--supernet", "ROLE=CHECKPOINT", str), recipe=_recipe_kw(kw),
            cache_dir=cache_dir, device=device, train_images=train_images, bits=bits,
            command=tuple(_command_words(ctx, results)))
        for k in ("width", "resolution"):
            settings.recipe.pop(k)
        table = confirm_cell(settings, log=lambda line: click.echo(line, err=True))
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        fail(str(exc))
    from nascsim.train.confirm_report import REPORT, rank_agreement

    p = f"p = {loss:g}"
    for a, b, tau, n in rank_agreement(table):
        click.echo(f"Kendall tau {a} vs {b} at {p}: {tau:.2f} ({n} networks)")
    click.echo(f"wrote {out}/confirm.parquet, {out}/{REPORT}, {out}/confirm.png")


def _command_words(ctx, results: str) -> list[str]:
    """The command line, rebuilt from the options given (defaults omitted), for the record."""
    words = ["nascsim", ctx.info_name, str(results)]
    for param in ctx.command.params:
        if param.name == "results" or ctx.get_parameter_source(param.name) in (click.core.ParameterSource.DEFAULT, None):
            continue
        value = ctx.params[param.name]
        if getattr(param, "is_flag", False):
            words.append(param.opts[0] if value or not param.secondary_opts else param.secondary_opts[0])
        else:
            for v in (value if getattr(param, "multiple", False) else [value]):
                words += [param.opts[0], str(v)]
    return words


CELL_OPTIONS = {"threshold": "--threshold", "loss": "--loss", "methods": "--methods", "seeds": "--seeds",
                "method_dropout": "--method-dropout", "jobs": "--jobs", "supernets": "--supernet"}


def _names(text: str, what: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    if not names:
        raise ValueError(f"{what} needs at least one name, got {text!r}")
    return names


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        out = tuple(dict.fromkeys(int(t) for t in text.split(",") if t.strip()))
    except ValueError:
        raise ValueError(f"{what} must be comma-separated whole numbers, got {text!r}") from None
    if not out:
        raise ValueError(f"{what} needs at least one value, got {text!r}")
    return out


def _pairs(items, what: str, form: str, kind) -> dict:
    """``KEY=VALUE`` options as a dict (``ValueError`` naming a malformed one)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{what} takes {form}, got {item!r}")
        try:
            out[key.strip()] = kind(value.strip())
        except ValueError:
            raise ValueError(f"{what} {item!r}: {value.strip()!r} is not a number") from None
    return out


def _confirm_top(results, data, out, space, top, dropout, epochs, ps, bits, train_images, cache_dir, device, no_progress, kw):
    """The older mode: the top candidates of a search JSON or sweep parquet."""
    from nascsim.train.confirm import confirm_results

    rows = confirm_results(results, data, out, space, top, dict(
        recipe=_recipe(epochs, dropout, 1, kw), ps=_floats(ps, "--ps"), cache_dir=cache_dir, device=device,
        progress=not no_progress, train_images=train_images, bits=bits))
    click.echo(f"{'cand':>4s} {'split':>5s} {'p':>5s} {'predicted':>9s} {'measured':>9s} {'channel':>8s}")
    for r in rows:
        pred = "" if r["predicted_acc"] is None else f"{r['predicted_acc']:.4f}"
        click.echo(f"{r['candidate']:4d} {r['split']:5d} {r['p']:5.2f} {pred:>9s} {r['measured_acc']:9.4f} {r['channel_acc']:8.4f}")
    click.echo(f"wrote {out}")


def _given_settings(ctx: click.Context) -> dict[str, str]:
    """The campaign settings given on the command line (not left at their defaults), each with
    its option name: ``recipe.<field>`` for a recipe option (``--resume`` compares them)."""
    from dataclasses import fields

    from nascsim.train.campaign import CampaignSettings
    from nascsim.train.recipe import Recipe

    recipe_fields = set(Recipe().to_dict()) - {f.name for f in fields(CampaignSettings)}  # --epochs: the campaign's
    field_of = {"out_dir": "out", "no_augment": "recipe.augment", "lambda_x": "recipe.lambda_x"}
    out = {}
    for param in ctx.command.params:
        if param.name in ("resume", "budget_s") or ctx.get_parameter_source(param.name) in (
                click.core.ParameterSource.DEFAULT, None):
            continue
        key = field_of.get(param.name, f"recipe.{param.name}" if param.name in recipe_fields else param.name)
        out[key] = param.opts[0]
    return out


@supernet.command("campaign")
@click.option("--data", default=None, type=click.Path(), help="Dataset folder (CIFAR pickles, image folder, or .tar.gz); required unless --resume.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder: one parquet per supernet + campaign.json.")
@click.option("--budget-s", required=True, type=number(0, MAX_SECONDS), help="Wall-clock seconds for everything, from start to the last file written (with --resume: for the rest).")
@click.option("--resume", is_flag=True, help="Continue the campaign cut off in --out: its settings and plan from campaign.json "
              "(options given must match), each lane from its last epoch and its rows.")
@click.option("--space", default="fbnet", show_default=True, help="fbnet or extended.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:0 ...")
@click.option("--workers", default="auto", show_default=True, type=click.Choice(["auto", "1", "2"]),
              help="Lanes as processes: auto = one per lane on CUDA (concurrent if faster) and on a CPU with a core "
                   "per lane (side by side, cores // lanes threads each); else 1 (one after the other).")
@click.option("--dropouts", default="0.5,0", show_default=True, help="Split dropout of each supernet (one lane each).")
@click.option("--lambda-x", default=2, show_default=True, type=count(1, MAX_LAMBDA_X), help="(arch, split) pairs per minibatch.")
@click.option("--valid-images", default=5000, show_default=True, type=count(1, MAX_IMAGES), help="Training images held out for evaluations.")
@click.option("--train-images", default=None, type=count(1, MAX_IMAGES), help="Cap on training images (smoke runs).")
@click.option("--max-epochs", default=200, show_default=True, type=count(1, MAX_EPOCHS), help="Upper bound on the planned epochs.")
@click.option("--epochs", default=None, type=count(1, MAX_EPOCHS), help="Fixed plan: exactly this many epochs and the target pair counts (fails if they do not fit).")
@click.option("--monitor-pairs", default=16, show_default=True, type=count(0, MAX_MONITOR_PAIRS), help="Subnets whose held-out accuracy is logged per epoch.")
@click.option("--monitor-images", default=1000, show_default=True, type=count(1, MAX_IMAGES))
@click.option("--main-pairs", default=5000, show_default=True, type=count(0, MAX_EVAL_PAIRS), help="Target of main pairs per supernet (more if time is left).")
@click.option("--repeat-share", default=0.15, show_default=True, type=number(0, 1), help="Share of main pairs re-evaluated on a second batch.")
@click.option("--lowvar-pairs", default=300, show_default=True, type=count(0, MAX_EVAL_PAIRS), help="Target of low-noise pairs (whole held-out split).")
@click.option("--noise-pairs", default=50, show_default=True, type=count(0, MAX_EVAL_PAIRS), help="Target of minibatch-noise pairs.")
@click.option("--noise-batches", default=20, show_default=True, type=count(1, MAX_NOISE_BATCHES), help="Target of shared minibatches of the noise set.")
@click.option("--noise-images", default=64, show_default=True, type=count(1, MAX_IMAGES), help="Images per noise minibatch (ASNG's minibatch).")
@click.option("--batch-images", default=500, show_default=True, type=count(1, MAX_IMAGES), help="Images per main-pair batch.")
@click.option("--ps", default="0,0.1,0.2,0.3,0.4,0.5", show_default=True, help="Loss rates P.")
@click.option("--near-share", default=0.3, show_default=True, type=number(0, 1), help="Share of pairs drawn near the latency thresholds.")
@click.option("--thresholds", default="30,35,40,50", show_default=True, help="T_th values (ms) for the near-threshold pairs.")
@click.option("--band", default=0.1, show_default=True, type=number(0, 1), help="Relative band around T_th.")
@click.option("--head", default="raspi4", show_default=True)
@click.option("--tail", default="edgegpu", show_default=True)
@click.option("--max-rows", default=None, type=count(1, MAX_ROWS_PER_CALL), help="Rows (images x p x pairs) per evaluation call (default: 24576 on CUDA, 3072 on CPU).")
@click.option("--cache-dir", default=None, type=click.Path(file_okay=False), help="Where decoded images are cached (default: next to the data).")
@click.option("--checkpoint-dir", default=None, type=click.Path(file_okay=False), help="Also save each trained supernet here (not in --out).")
@click.option("--calibrate-s", default=4.0, show_default=True, type=number(0, 3600), help="Seconds each speed measurement runs (evaluation calls: after one warm-up run of the same call).")
@click.option("--flush-s", default=15.0, show_default=True, type=number(0, MAX_SECONDS), help="Rewrite the evaluation files at least this often.")
@recipe_options(batch_size=512, lr=0.3, warmup_epochs=2.0)
def supernet_campaign(data, out_dir, budget_s, resume, space, device, workers, dropouts, lambda_x, valid_images, train_images,
                      max_epochs, epochs, monitor_pairs, monitor_images, main_pairs, repeat_share, lowvar_pairs, noise_pairs,
                      noise_batches, noise_images, batch_images, ps, near_share, thresholds, band, head, tail, max_rows,
                      cache_dir, checkpoint_dir, calibrate_s, flush_s, **kw):
    """Train both supernets (split dropout 0.5 and 0) and evaluate them, all within --budget-s:
    plans by the clock, prints the plan, writes files as it goes (see nascsim.train.campaign).
    On a CPU the recipe options left at their defaults take the CPU proxy recipe (width 0.25,
    16 px, entangled ops, batch 128, lr 0.1). A campaign cut off at any moment continues with
    --resume and the same --out (OUT/resume holds each lane's checkpoint until the end)."""
    import time

    t0 = time.time()
    if data is None and not resume:
        fail("--data is required (unless --resume)")
    given = _given_settings(click.get_current_context())
    threads = kw.pop("threads")
    _torch(threads)
    from nascsim.train.campaign import CampaignFailed, CampaignSettings, resume_settings, run_campaign

    kw = device_defaults({**kw, "lambda_x": lambda_x}, device)
    recipe = {**_recipe_kw(kw), "lambda_x": kw["lambda_x"]}
    settings = CampaignSettings(
        data=data or "", out=out_dir, budget_s=budget_s, space=space, device=device, workers=workers,
        dropouts=tuple(_floats(dropouts, "--dropouts")), recipe=recipe, valid_images=valid_images,
        train_images=train_images, monitor_pairs=monitor_pairs, monitor_images=monitor_images,
        ps=tuple(_floats(ps, "--ps")), batch_images=batch_images, noise_images=noise_images, main_pairs=main_pairs,
        repeat_share=repeat_share, lowvar_pairs=lowvar_pairs, noise_pairs=noise_pairs, noise_batches=noise_batches,
        max_epochs=max_epochs, epochs=epochs, near_share=near_share, thresholds=tuple(_floats(thresholds, "--thresholds")), band=band,
        head=head, tail=tail, cache_dir=cache_dir, checkpoint_dir=checkpoint_dir, threads=threads, max_rows=max_rows,
        calibrate_s=calibrate_s, flush_s=flush_s,
    )
    if resume:
        settings = resume_settings(settings, given)
        if settings.threads is not None:
            _torch(settings.threads)
    try:
        run_campaign(settings, t0, resume=resume)
    except CampaignFailed as exc:
        from nascsim.cli import _error

        _error(exc)
        raise SystemExit(1) from None
