"""What every `chromaref` command shares: the console, logging setup and error handling."""

from __future__ import annotations

import inspect
import logging
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler

from chromaref.platform.errors import ChromarefError, ConfigError, FileError

console = Console(stderr=True, soft_wrap=True)  # one error = one line, never wrapped
F = TypeVar("F", bound=Callable[..., object])

EXIT_PARTIAL = 1
EXIT_ERROR = 2
EXIT_INTERNAL = 3


def setup_logging(verbose: bool) -> None:
    """Rich log lines on a terminal; elsewhere (pipes, CI logs) one plain line per record,
    never wrapped, so a message can be grepped whole."""
    if sys.stderr.isatty():
        handler: logging.Handler = RichHandler(console=console, show_path=False, show_time=False)
        style = "%(message)s"
    else:
        handler, style = logging.StreamHandler(sys.stderr), "%(levelname)s: %(message)s"
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format=style,
        handlers=[handler],
        force=True,
    )


def check_reference_choice(references: object, auto: bool) -> None:
    """References come from -r or from --auto: exactly one of the two.

    Raises:
        ConfigError: both given, or neither.
    """
    if references and auto:
        raise ConfigError("give references with --reference/-r or use --auto, not both")
    if not references and not auto:
        raise ConfigError("no reference: give one with --reference/-r, or use --auto")


def writable_folder(out: Path) -> None:
    """Make --out and check that files can be made in it: when they cannot, no result can be
    written, so the run stops before any work.

    Raises:
        FileError: --out cannot be made or written to.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".chromaref-probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        in_the_way = next((p for p in (out, *out.parents) if p.is_file()), None)
        reason = f"{in_the_way} is a file, not a folder" if in_the_way else exc.strerror or exc
        raise FileError(out, f"cannot write results here ({reason})") from None


def _option_for(setting: str, command: Callable[..., object]) -> str:
    """A setting as the user gave it: `command`'s option of that name (`--working-size` for
    `matching.working_size`), else the setting itself (a config file's or --set's key)."""
    name = setting.rsplit(".", 1)[-1]
    if name in inspect.signature(command).parameters:
        return "--" + name.replace("_", "-")
    return setting


def friendly_errors(command: F) -> F:
    """Turn known errors into one clear line and an exit code; unknown ones say how to report."""

    @wraps(command)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return command(*args, **kwargs)
        except ChromarefError as exc:
            console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(EXIT_ERROR) from None
        except ValidationError as exc:  # a setting out of range, an unknown choice
            for problem in exc.errors():
                where = _option_for(".".join(str(p) for p in problem["loc"]), command)
                got = problem.get("input")
                console.print(
                    f"[red]error:[/red] {where}: {problem['msg']} (got {got!r})", highlight=False
                )
            raise typer.Exit(EXIT_ERROR) from None
        except OSError as exc:  # disk full, permission denied, ...
            console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(EXIT_ERROR) from None
        except KeyboardInterrupt:
            console.print("interrupted; files written so far are complete")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            logging.getLogger(__name__).info("internal error", exc_info=True)  # shown by -v
            console.print(
                f"[red]internal error:[/red] {type(exc).__name__}: {exc} "
                "(rerun with --verbose for details and please report it)",
                highlight=False,
            )
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper  # type: ignore[return-value]
