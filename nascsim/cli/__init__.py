"""The ``nascsim`` command line. Subcommands live in their own modules and are imported only when
invoked, so ``nascsim --help`` stays fast (no numba, torch or scikit-learn at import)."""

from __future__ import annotations

from typing import NoReturn

import importlib
import sys

import click

from nascsim import __version__

# name -> (module, attribute, one-line help shown by ``nascsim --help``)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "latency": ("nascsim.cli.latency_cmd", "latency", "End-to-end latency breakdown of one (architecture, split)."),
    "devices": ("nascsim.cli.latency_cmd", "devices", "Compute power Π per device (Table III; eq. 8) and the fit's R²."),
    "tables": ("nascsim.cli.latency_cmd", "tables", "Import HW-NAS-Bench lookup tables; check a latency table file."),
    "search": ("nascsim.cli.search_cmd", "search", "One search (nasc, hwnas, hwnas-dropout, random) on the surrogate."),
    "sweep": ("nascsim.cli.sweep_cmd", "sweep", "Grid of searches over thresholds, loss rates, methods and seeds."),
    "bench": ("nascsim.cli.bench_cmd", "bench", "Regression benchmark of search methods on a fixed suite, against a baseline."),
    "report": ("nascsim.cli.sweep_cmd", "report", "Summaries and plots of a sweep's result store."),
    "surrogate": ("nascsim.cli.surrogate_cmd", "surrogate", "Fit, report and inspect accuracy surrogates."),
    "supernet": ("nascsim.cli.train_cmd", "supernet", "Train a supernet and evaluate its subnets (torch)."),
    "retrain": ("nascsim.cli.train_cmd", "retrain", "Re-train one architecture from scratch and confirm its split (torch)."),
    "confirm": ("nascsim.cli.train_cmd", "confirm", "Re-train the top candidates of a search or sweep (torch)."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nascsim")
def cli() -> None:
    """nascsim: simulate NASC (architecture + split-point search for split computing) and its
    baselines over HW-NAS-Bench tables and a fitted accuracy surrogate."""


def fail(message: str) -> NoReturn:
    """One-line error on stderr, exit code 2."""
    _error(message)
    sys.exit(2)


def _error(message) -> None:
    """``Error: <message>`` as exactly one line on stderr (line breaks and other non-printable
    characters escaped: a message may quote a file's content)."""
    from nascsim.limits import printable

    click.echo(f"Error: {printable(str(message).strip())}", err=True)


def warn(message: str) -> None:
    """``Warning: <message>``: one line on stderr, printed when the command ends well (held back
    until then, so that a failing command prints its error line alone; :mod:`nascsim._stderr`)."""
    from nascsim._stderr import warning_line

    warning_line(f"Warning: {message}")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Python warnings (of nascsim or a library) as one held line each (see :func:`warn`)."""
    text = str(message).strip().splitlines()
    warn(f"{text[0] if text else category.__name__}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: click's own usage errors, the library's ``ValueError`` and ``OSError`` (bad
    values, missing or unwritable paths) become one line on stderr and exit code 2; a diverged
    training run (``FloatingPointError``) one line and exit code 1. Warnings (nascsim's and
    Python's) are held until the command ends: shown when it succeeds, dropped when it fails, so
    an error is always exactly one line on stderr."""
    import warnings

    from nascsim import _stderr

    _stderr.hold()
    ok = False
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            code = _run(argv)
        ok = not code
    except SystemExit as exc:
        ok = exc.code in (None, 0)
        raise
    finally:
        _stderr.release(ok)
    sys.exit(code or 0)


def _run(argv: list[str] | None):
    try:
        return cli.main(args=argv, prog_name="nascsim", standalone_mode=False)
    except click.UsageError as exc:
        bad = f" (in {exc.ctx.command_path})" if exc.ctx is not None else ""
        _error(f"{exc.format_message()}{bad}")
        sys.exit(2)
    except click.ClickException as exc:
        _error(exc.format_message())
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except (ValueError, OSError) as exc:  # bad values, missing or unwritable paths
        _error(exc)
        sys.exit(2)
    except MemoryError:
        _error("out of memory (an input larger than docs/limits.md allows?)")
        sys.exit(2)
    except FloatingPointError as exc:
        _error(exc)
        sys.exit(1)
