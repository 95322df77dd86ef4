"""The `tabpilot` process: its entry point, its one-line input errors and its exit.

`main` runs the Typer app (tabpilot.cli and the commands its modules register) and turns
input errors into one `error:` line and exit 2; `entry` is the console script, which also
ends the process without the native libraries' teardown.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from typing import Any

import typer

from tabpilot.errors import TabpilotError

MAX_ERROR_CHARS = 1000


def _error_line(message: str) -> None:
    """`error: ...` as one line, however long or multi-line the message: scripts and
    people read the first line, and a quoted 10 MB header must not flood the terminal."""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    if len(line) > MAX_ERROR_CHARS:
        line = line[:MAX_ERROR_CHARS - 3] + "..."
    from tabpilot.cli import err

    err.print(f"error: {line}", markup=False, highlight=False, soft_wrap=True)


def main() -> None:
    from tabpilot.cli import app  # the app with every command registered (no import cycle)

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        code = app(standalone_mode=False)  # typer.Exit(n) comes back as n in this mode
    except TabpilotError as exc:
        _error_line(str(exc))
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        # usage errors (typer's own copy of click) carry exit code 2; shown as one line
        # like every other input error, except a bare `tabpilot`, which shows the help
        if hasattr(exc, "format_message") and type(exc).__name__ != "NoArgsIsHelpError" \
                and getattr(exc, "exit_code", None) == 2:
            ctx = getattr(exc, "ctx", None)
            where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            _error_line(exc.format_message() + where)
            sys.exit(2)
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        if type(exc).__name__ == "Abort":  # Ctrl-C outside a job
            sys.exit(130)
        raise
    sys.exit(code if isinstance(code, int) else 0)


def entry() -> None:
    """The `tabpilot` command: `main`, then the interpreter's own exit work (non-daemon
    threads joined, atexit handlers run, output flushed) and an exit that skips the
    teardown of native libraries. pyarrow's thread pools, destroyed at exit while one of
    their threads is alive, now and then abort a process whose exit code is already
    decided ("terminate called without an active exception", exit -6, apache/arrow#34314:
    once in a `make test`, on an input error right after a CSV read)."""
    try:
        main()
        code: Any = 0
    except SystemExit as exc:
        code = exc.code
    if code is not None and not isinstance(code, int):  # sys.exit("message")
        print(code, file=sys.stderr)
        code = 1
    threading._shutdown()  # type: ignore[attr-defined]  # what the interpreter does first
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code or 0)
