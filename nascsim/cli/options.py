"""Options shared by several commands. Each search option's value goes through its field's rule
(:mod:`nascsim.validate`), the same check the search, the sweep and the API apply; devices are
also checked against the latency table in use (``--tables``) when the model is built."""

from __future__ import annotations

import math

import click

MAX_CLASSES = 100_000


class Number(click.FloatRange):
    """A float option within [low, high] (both finite; NaN refused, which click's FloatRange lets
    through). Every numeric option has a finite upper bound (docs/limits.md)."""

    name = "number"

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if isinstance(rv, float) and math.isnan(rv):
            self.fail(f"{value!r} is not a number in the range {self._describe_range()}", param, ctx)
        return rv


def count(low: int, high: int) -> click.IntRange:
    """An integer option within [low, high] (e.g. ``type=count(1, MAX_EVAL_PAIRS)``)."""
    return click.IntRange(low, high)


def number(low: float, high: float, low_open: bool = False) -> Number:
    """A float option within [low, high] (``(low, high]`` with ``low_open``)."""
    return Number(low, high, min_open=low_open)


def _rule(field: str):
    """A click callback checking the option against SearchConfig field ``field``'s rule."""

    def callback(ctx, param, value):
        from nascsim.validate import check_field

        if isinstance(value, str):
            value = value.strip()
        try:
            check_field(field, value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
        return value

    callback.bounded_by = field  # the rule's range bounds the option (tests/test_limits.py)
    return callback


def _classes(ctx, param, value):
    if value is not None and not 2 <= value <= MAX_CLASSES:
        raise click.BadParameter(f"must be an integer in [2, {MAX_CLASSES}], got {value}", ctx=ctx, param=param)
    return value


_classes.bounded_by = "classes"


def tables_option(f):
    """--tables FILE: a latency table in the schema of tables/README.md instead of the shipped one."""
    return click.option("--tables", "tables", default=None, type=click.Path(dir_okay=False),
                        help="Latency-table file (schema of tables/README.md) whose <device>_latency columns "
                             "name the devices; default: the shipped HW-NAS-Bench table.")(f)


def latency_options(f):
    """--space, --head, --tail, --bits, --bandwidth, --source, --tables (``--classes``: see
    :func:`classes_option`, not every command takes it)."""
    f = tables_option(f)
    f = click.option("--source", default=None, callback=_rule("source"), help="Latency source: measured (HW-NAS-Bench) or flops (FLOPs/Π). Default: measured for fbnet, flops for extended.")(f)
    f = click.option("--bandwidth", default=8e6, show_default=True, type=float, callback=_rule("bandwidth"), help="Link bandwidth r in bit/s.")(f)
    f = click.option("--bits", default=32, show_default=True, type=float, callback=_rule("bits"), help="Bits q per payload element.")(f)
    f = click.option("--tail", default="edgegpu", show_default=True, callback=_rule("tail"), help="Device that runs the tail (a device of the latency table).")(f)
    f = click.option("--head", default="raspi4", show_default=True, callback=_rule("head"), help="Device that runs the head (a device of the latency table).")(f)
    f = click.option("--space", default="fbnet", show_default=True, callback=_rule("space"), help="Search space: fbnet or extended.")(f)
    return f


def classes_option(f):
    """--classes: classifier outputs (the latency of the FC layer depends on it)."""
    return click.option("--classes", default=10, show_default=True, type=int, callback=_classes,
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
