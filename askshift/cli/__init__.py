"""Command-line interface: ``python -m askshift SUBCOMMAND ...``.

Subcommands live in a flat registry. To add one, write a ``configure(parser)`` that adds
its arguments and a ``run(args) -> int`` that does the work, and register them::

    @register("name", help="one line", configure=_configure_name)
    def run_name(args) -> int: ...

in a module of this package listed in ``COMMAND_MODULES`` (imported before the parser is
built). ``run`` raises :class:`CLIError` for bad input; ``main``
prints it as one line on stderr and exits with status 2, with no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

PROG = "askshift"

#: Modules that register subcommands on import, one command each.
COMMAND_MODULES: list[str] = ["askshift.cli.er", "askshift.cli.probe", "askshift.cli.sweeps", "askshift.cli.download",
                              "askshift.cli.report", "askshift.cli.deps", "askshift.cli.summary",
                              "askshift.cli.bias_curve", "askshift.cli.ask"]


class CLIError(Exception):
    """Bad user input: reported as one line on stderr, exit status 2."""


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def register(name: str, *, help: str, configure: Callable[[argparse.ArgumentParser], None]):
    """Decorator registering ``run`` as subcommand ``name``."""

    def deco(run: Callable[[argparse.Namespace], int]):
        if name in COMMANDS:
            raise ValueError(f"subcommand {name!r} registered twice")
        COMMANDS[name] = Command(name, help, configure, run)
        return run

    return deco


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr (status 2)."""

    def error(self, message):  # noqa: D401 - argparse API
        raise CLIError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    for mod in COMMAND_MODULES:
        importlib.import_module(mod)
    parser = _Parser(prog=PROG, description="Ask your distribution shift if pre-training is right for you.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for cmd in COMMANDS.values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.configure(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return int(args._run(args) or 0)
    except CLIError as e:
        cmd = f"{PROG} {argv[0]}" if argv and argv[0] in COMMANDS else PROG
        print(f"{cmd}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `... | head`
        return 0
