"""Options shared by several commands. Each value goes through its field's rule
(:mod:`nascsim.validate`), the same check the search, the sweep and the API apply."""

from __future__ import annotations

import click

MAX_CLASSES = 100_000


def _rule(field: str):
    """A click callback checking the option against SearchConfig field ``field``'s rule."""

    def callback(ctx, param, value):
        from nascsim.validate import check_field

        try:
            check_field(field, value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
        return value

    return callback


def _classes(ctx, param, value):
    if not 2 <= value <= MAX_CLASSES:
        raise click.BadParameter(f"must be an integer in [2, {MAX_CLASSES}], got {value}", ctx=ctx, param=param)
    return value


def latency_options(f):
    """--space, --head, --tail, --bits, --bandwidth, --source, --classes."""
    f = click.option("--classes", default=10, show_default=True, type=int, callback=_classes, help="Classifier outputs (10: CIFAR-10, 100: CIFAR-100).")(f)
    f = click.option("--source", default=None, callback=_rule("source"), help="Latency source: measured (HW-NAS-Bench) or flops (FLOPs/Π). Default: measured for fbnet, flops for extended.")(f)
    f = click.option("--bandwidth", default=8e6, show_default=True, type=float, callback=_rule("bandwidth"), help="Link bandwidth r in bit/s.")(f)
    f = click.option("--bits", default=32, show_default=True, type=float, callback=_rule("bits"), help="Bits q per payload element.")(f)
    f = click.option("--tail", default="edgegpu", show_default=True, callback=_rule("tail"), help="Device that runs the tail.")(f)
    f = click.option("--head", default="raspi4", show_default=True, callback=_rule("head"), help="Device that runs the head.")(f)
    f = click.option("--space", default="fbnet", show_default=True, callback=_rule("space"), help="Search space: fbnet or extended.")(f)
    return f
