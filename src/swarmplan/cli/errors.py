"""The one error printer: every error a user can cause is one line on stderr and exit status 2.

Covers swarmplan's own SwarmplanError and typer's usage errors (a bad option value, a missing argument),
which would otherwise print a multi-line box. User text in the message (file, server or GPU names) is printed
as written: rich markup in it is escaped, never interpreted.
"""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.text import Text

from swarmplan.cli.common import err_console
from swarmplan.errors import NoSolutionError, SwarmplanError


def one_line(prefix: str, message: str) -> Text:
    """``error: message`` with only the prefix styled; the message is literal text."""
    text = Text(prefix, style="bold red")
    text.append(message)
    return text


def report(app) -> int:
    """Run the typer ``app``; return the exit status (2 for a user's error, printed as one line)."""
    try:
        result = app(standalone_mode=False)
    except SwarmplanError as err:  # a valid input without a solution says so
        err_console.print(one_line("no solution: " if isinstance(err, NoSolutionError) else "error: ", str(err)))
        return 2
    except typer.TyperException as err:  # typer's usage errors: bad option value, unknown option or command
        param = getattr(err, "param", None)
        opts = getattr(param, "opts", None) or []
        if opts:  # a bad value: lead with the option, as every other error leads with its field
            message = f"{'/'.join(opts)}: {getattr(err, 'message', None) or err}"
        else:
            message = err.format_message() if hasattr(err, "format_message") else str(err)
        ctx = getattr(err, "ctx", None)
        hint = f" — see `{ctx.command_path} --help`" if ctx is not None else ""
        err_console.print(one_line("error: ", message + hint))
        return getattr(err, "exit_code", 2)
    except typer.Abort:
        err_console.print(one_line("error: ", "aborted"))
        return 130
    return result if isinstance(result, int) else 0


__all__ = ["escape", "one_line", "report"]
