"""The lines that install `tradedb maintain --once` to run hourly: a crontab line and a
Windows Task Scheduler command, each quoted for every program that reads it on its way,
so that the task receives exactly the program, its arguments and the database.

A crontab line passes cron, which ends the command at an unescaped `%` (and turns `\\%`
into `%`), then /bin/sh. A Task Scheduler command typed into cmd.exe passes cmd.exe,
which replaces `%NAME%` even inside double quotes and acts on `^ & | < >` outside them;
then schtasks' own argument parsing (the Microsoft C runtime's: `\\"` is a quote,
backslashes before a quote are doubled); then, at each run, the Task Scheduler's own
`%NAME%` expansion and the C runtime's splitting of the task's command line.

schtasks refuses a task command line (/TR) longer than 261 characters; a longer one is
printed as a PowerShell `Register-ScheduledTask` line, which has no such limit. No escape
for `%` survives both cmd.exe's quotes and the Task Scheduler's expansion, and Windows
paths cannot hold `"` or control characters: a path holding one of them gets no Windows
line (nor a cron line, for a control character), and the refusal names the path and the
character.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

from tradedb.errors import TradeDBError
from tradedb.store.engines import PostgresTarget, Target, without_password

# schtasks: "Value for '/TR' option cannot be more than 261 character(s)".
SCHTASKS_TR_LIMIT = 261
TASK_NAME = "tradedb maintain"
# Past the hour, away from the jobs that everyone else starts at minute 0.
MINUTE = 17

WindowsShell = Literal["cmd", "powershell"]

# Outside double quotes cmd.exe runs, pipes or redirects at these, and ^ escapes the next
# character; the parentheses only matter inside a parenthesised block, escaped anyway so
# that the line also works pasted into one.
_CMD_SPECIAL = frozenset("^&|<>()")
# PowerShell ends a single-quoted string at any of these; each is escaped by doubling.
_POWERSHELL_QUOTES = frozenset("'\u2018\u2019\u201a\u201b")
# Left bare in a crontab line: /bin/sh gives none of them a meaning.
_SHELL_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-_.")

_NOT_ON_WINDOWS = {
    "%": "which cmd.exe and the Task Scheduler replace with environment variables "
    "(%NAME%), with no escape inside quotes",
    '"': "which Windows paths cannot hold and a Windows command line cannot carry",
}


class CannotSchedule(TradeDBError):
    """A path holds a character that a schedule line cannot carry to the program."""


@dataclass(frozen=True)
class ScheduleLines:
    """What to install so that `tradedb maintain --once` runs hourly: a crontab line and
    a Task Scheduler command (`windows_shell` says whether it is typed into cmd.exe or
    PowerShell), both with absolute paths, and where a password goes. On a system other
    than Windows, a Windows line that cannot carry a path is None, and `not_printed`
    says why."""

    command: list[str]
    database: str
    cron: str
    windows_task: str | None
    windows_shell: WindowsShell | None
    password_note: str | None
    not_printed: str | None


class WindowsTask(NamedTuple):
    shell: WindowsShell
    line: str


def tradedb_command() -> list[str]:
    """This tradedb as an absolute command: the `tradedb` script installed beside this
    Python, else this Python with `-m tradedb`. cron runs with PATH=/usr/bin:/bin and the
    Task Scheduler with the system's PATH: neither finds a bare `tradedb` in a virtual
    environment. The interpreter's path is kept as it is (not resolved), since a virtual
    environment's python is a link whose target lacks the environment's packages."""
    name = "tradedb.exe" if os.name == "nt" else "tradedb"
    interpreter = Path(sys.executable).absolute()
    for folder in (Path(sysconfig.get_path("scripts")), interpreter.parent):
        script = folder / name
        if script.is_file():
            return [str(script.absolute())]
    return [str(interpreter), "-m", "tradedb"]


def schedule_lines(
    database: Target, command: list[str] | None = None, *, system: str = os.name
) -> ScheduleLines:
    """Both lines. A path that the cron line cannot carry (a control character) raises
    CannotSchedule, as does one that the Windows line cannot carry when `system` (an
    `os.name`: the machine that runs the task) is Windows. Elsewhere the Windows line is
    left out (None) rather than printed wrong, and `not_printed` says why."""
    command = command or tradedb_command()
    windows: WindowsTask | None = None
    not_printed: str | None = None
    cron = cron_line(database, command)
    try:
        windows = windows_schedule(database, command)
    except CannotSchedule as refused:
        if system == "nt":
            raise
        not_printed = str(refused)
    return ScheduleLines(
        command=command,
        database=without_password(database),
        cron=cron,
        windows_task=None if windows is None else windows.line,
        windows_shell=None if windows is None else windows.shell,
        password_note=password_note(database),
        not_printed=not_printed,
    )


def cron_line(database: Target, command: list[str] | None = None) -> str:
    """Hourly: each job runs at the first hour after its period starts, and a failed job
    is retried an hour later. Each word is quoted for /bin/sh and each `%` escaped for
    cron."""
    command = command or tradedb_command()
    _refuse_uncarried(database, command, "crontab line", {})
    words = " ".join(_cron_word(word) for word in _task_words(database, command))
    return f"{MINUTE} * * * * {words} >/dev/null 2>&1"


def windows_task(database: Target, command: list[str] | None = None) -> str:
    """The Task Scheduler command that does what `cron_line` does, on Windows."""
    return windows_schedule(database, command).line


def windows_schedule(database: Target, command: list[str] | None = None) -> WindowsTask:
    """A schtasks line for cmd.exe, or a PowerShell line when the task's command line is
    longer than schtasks takes."""
    command = command or tradedb_command()
    _refuse_uncarried(database, command, "Task Scheduler command", _NOT_ON_WINDOWS)
    program, *arguments = _task_words(database, command)
    *options, where = arguments
    # The database is quoted even without spaces, so that the line reads the same for all.
    task_arguments = " ".join([*map(_windows_argument, options), _windows_quoted(where)])
    # The C runtime reads a program in quotes up to the next quote, backslashes included.
    quoted_program = f'"{program}"'
    run = f"{quoted_program} {task_arguments}"
    if len(run) <= SCHTASKS_TR_LIMIT:
        schtasks = ["schtasks", "/Create", "/TN", TASK_NAME, "/SC", "HOURLY", "/MO", "1"]
        schtasks += ["/ST", f"00:{MINUTE}", "/TR", run]
        return WindowsTask("cmd", _for_cmd(" ".join(map(_windows_argument, schtasks))))
    action = (
        f"New-ScheduledTaskAction -Execute {_powershell_string(quoted_program)}"
        f" -Argument {_powershell_string(task_arguments)}"
    )
    trigger = (
        f"New-ScheduledTaskTrigger -Once -At 00:{MINUTE}"
        " -RepetitionInterval (New-TimeSpan -Hours 1)"
    )
    return WindowsTask(
        "powershell",
        f"Register-ScheduledTask -TaskName {_powershell_string(TASK_NAME)}"
        f" -Action ({action}) -Trigger ({trigger})",
    )


def password_note(database: Target) -> str | None:
    """What to do with the password the schedule's lines leave out, if there is one."""
    if without_password(database) == str(database):
        return None
    return (
        "the password is not in these lines: put it in ~/.pgpass "
        "(host:port:database:user:password, mode 0600; on Windows in "
        "%APPDATA%\\postgresql\\pgpass.conf), where libpq finds it"
    )


def _task_words(database: Target, command: list[str] | None = None) -> list[str]:
    """The arguments the scheduled task runs with, the program first. A PostgreSQL URL
    goes in without its password (see `password_note`)."""
    program = command or tradedb_command()
    return [*program, "maintain", "--once", "--db", without_password(database)]


def _refuse_uncarried(
    database: Target, command: list[str], line: str, refused: Mapping[str, str]
) -> None:
    """CannotSchedule naming the first path that holds a control character or one of
    `refused` (a character and why `line` cannot carry it)."""
    kind = "URL" if isinstance(database, PostgresTarget) else "path"
    named = [("the program path", command[0])]
    named += [("the program argument", argument) for argument in command[1:]]
    named.append((f"the database {kind}", without_password(database)))
    for what, text in named:
        for character in text:
            if _is_control(character):
                why = f"a control character, which a {line} cannot carry"
            elif character in refused:
                why = refused[character]
            else:
                continue
            raise CannotSchedule(
                f"no {line}: {what} '{_shown(text)}' holds {character!r}, {why}; rename or move it"
            )


def _is_control(character: str) -> bool:
    return ord(character) < 0x20


def _shown(text: str) -> str:
    """`text` on one line: control characters as their escapes."""
    return "".join(repr(c)[1:-1] if _is_control(c) else c for c in text)


def _cron_word(text: str) -> str:
    """A word for /bin/sh, with each `%` outside its quotes as `\\%`: cron strips that
    backslash, and the quote just before it keeps a backslash of the path from pairing
    with it (cron reads backslashes in pairs)."""
    if not text:
        return "''"
    return "\\%".join(_sh_word(piece) if piece else "" for piece in text.split("%"))


def _sh_word(text: str) -> str:
    if set(text) <= _SHELL_PLAIN:
        return text
    return "'" + text.replace("'", "'\\''") + "'"


def _windows_argument(text: str) -> str:
    """One argument as the Microsoft C runtime splits a command line: bare when it has no
    space, tab or quote, else quoted."""
    if text and not any(character in ' \t"' for character in text):
        return text
    return _windows_quoted(text)


def _windows_quoted(text: str) -> str:
    """`text` in double quotes for the C runtime: a quote inside becomes `\\"`, and the
    backslashes just before a quote (the closing one included) are doubled."""
    quoted = ['"']
    backslashes = 0
    for character in text:
        if character == "\\":
            backslashes += 1
            continue
        if character == '"':
            quoted.append("\\" * (2 * backslashes + 1) + '"')
        else:
            quoted.append("\\" * backslashes + character)
        backslashes = 0
    quoted.append("\\" * (2 * backslashes) + '"')
    return "".join(quoted)


def _for_cmd(line: str) -> str:
    """`line` as typed into cmd.exe: outside its double quotes (every `"` toggles them,
    `\\"` too) each special character is escaped with `^`, which cmd.exe removes."""
    typed = []
    quoted = False
    for character in line:
        if character == '"':
            quoted = not quoted
        elif not quoted and character in _CMD_SPECIAL:
            typed.append("^")
        typed.append(character)
    return "".join(typed)


def _powershell_string(text: str) -> str:
    """A PowerShell single-quoted string: literal but for its quote characters, doubled."""
    return "'" + "".join(c * 2 if c in _POWERSHELL_QUOTES else c for c in text) + "'"
