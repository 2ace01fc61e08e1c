"""Options shared by several commands."""

from __future__ import annotations

import click

DEVICE_CHOICES = ("edgegpu", "raspi4", "pixel3", "eyeriss", "fpga")


def _positive(ctx, param, value):
    if value is not None and not value > 0:
        raise click.BadParameter(f"must be positive, got {value}", ctx=ctx, param=param)
    return value


def _device(ctx, param, value):
    """Devices are checked against the latency table in use (``--tables``) when the model is built."""
    if not value or not value.strip():
        raise click.BadParameter("a device name is needed", ctx=ctx, param=param)
    return value.strip()


def tables_option(f):
    """--tables FILE: a latency table in the schema of tables/README.md instead of the shipped one."""
    return click.option("--tables", "tables", default=None, type=click.Path(dir_okay=False),
                        help="Latency-table file (schema of tables/README.md) whose <device>_latency columns "
                             "name the devices; default: the shipped HW-NAS-Bench table.")(f)


def latency_options(f):
    """--space, --head, --tail, --bits, --bandwidth, --source, --tables (``--classes``: see
    :func:`classes_option`, not every command takes it)."""
    f = tables_option(f)
    f = click.option("--source", default=None, help="Latency source: measured (HW-NAS-Bench) or flops (FLOPs/Π). Default: measured for fbnet, flops for extended.")(f)
    f = click.option("--bandwidth", default=8e6, show_default=True, type=float, callback=_positive, help="Link bandwidth r in bit/s.")(f)
    f = click.option("--bits", default=32, show_default=True, type=float, callback=_positive, help="Bits q per payload element.")(f)
    f = click.option("--tail", default="edgegpu", show_default=True, callback=_device, help="Device that runs the tail (a device of the latency table).")(f)
    f = click.option("--head", default="raspi4", show_default=True, callback=_device, help="Device that runs the head (a device of the latency table).")(f)
    f = click.option("--space", default="fbnet", show_default=True, help="Search space: fbnet or extended.")(f)
    return f


def classes_option(f):
    """--classes: classifier outputs (the latency of the FC layer depends on it)."""
    return click.option("--classes", default=10, show_default=True, type=int, callback=_positive,
                        help="Classifier outputs (10: CIFAR-10, 100: CIFAR-100).")(f)


def surrogate_options(f):
    """--surrogate (both roles), --surrogate-dropout, --surrogate-no-dropout."""
    f = click.option("--surrogate-no-dropout", "surrogate_no_dropout", default=None, type=click.Path(dir_okay=False),
                     help="Surrogate of a supernet trained without split dropout (judges hwnas).")(f)
    f = click.option("--surrogate-dropout", "surrogate_dropout", default=None, type=click.Path(dir_okay=False),
                     help="Surrogate of a supernet trained with split dropout (nasc, hwnas-dropout, random).")(f)
    f = click.option("--surrogate", "surrogate", default=None, type=click.Path(dir_okay=False),
                     help="One surrogate file for both roles (hwnas then equals hwnas-dropout; a warning says so). "
                          "[default: the shipped pair]")(f)
    return f
