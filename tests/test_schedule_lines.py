"""`tradedb maintain --print-schedule`: the printed lines run exactly
`PROGRAM maintain --once --db DATABASE` once installed, whatever the paths hold.

The machines are Linux only, so the Windows side is simulated by small parsers of the
documented rules, applied in the order the line meets them: cmd.exe at the prompt (or
PowerShell for the long form), then schtasks' own argument parsing and what it stores
as the task's program and arguments, then, at each run, the Task Scheduler's `%NAME%`
expansion and the C runtime's splitting of the task's command line into argv. The cron
side is simulated the same way (cron's `%` handling, then sh's words) and also run for
real with /bin/sh and cron's PATH.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli_harness import isolated_environ
from tradedb.cli.app import app
from tradedb.services.ops.schedule_lines import (
    CannotSchedule,
    WindowsTask,
    cron_line,
    password_note,
    schedule_lines,
    tradedb_command,
    windows_schedule,
)
from tradedb.store.engines import parse_target

USER_ERROR = 2
# schtasks: "Value for '/TR' option cannot be more than 261 character(s)".
SCHTASKS_TR_LIMIT = 261
MAINTAIN = ["maintain", "--once", "--db"]
# The environment the simulated cmd.exe and Task Scheduler expand %NAME% from.
WINDOWS_ENV = {"USERNAME": "me", "SystemRoot": r"C:\Windows", "TEMP": r"C:\Temp"}
# What PowerShell ends a single-quoted string at (a doubled one is one literal quote).
POWERSHELL_QUOTES = "'\u2018\u2019\u201a\u201b"


# --- cmd.exe, schtasks, the Task Scheduler and the C runtime, simulated ------------------


def expand_variables(text: str, env: Mapping[str, str]) -> str:
    """%NAME% of a defined variable (names ignore case) replaced by its value, anything
    else kept: what cmd.exe does at the prompt, inside quotes too, and what the Task
    Scheduler does to an action's program and arguments (ExpandEnvironmentStrings)."""
    values = {name.upper(): value for name, value in env.items()}
    expanded, i = [], 0
    while i < len(text):
        end = text.find("%", i + 1) if text[i] == "%" else -1
        if end > i + 1 and text[i + 1 : end].upper() in values:
            expanded.append(values[text[i + 1 : end].upper()])
            i = end + 1
            continue
        expanded.append(text[i])
        i += 1
    return "".join(expanded)


def cmd_exe_passes(line: str, env: Mapping[str, str] = WINDOWS_ENV) -> str:
    """The command line that cmd.exe gives the program a typed `line` starts (delayed
    expansion off, its default). Every `"` toggles cmd.exe's quoting, `\\"` included;
    outside quotes `^` makes the next character plain and is removed, and an unescaped
    & | < > would end, pipe or redirect the command. Unescaped parentheses are refused
    too: harmless at the prompt, they end or start a block when pasted into one."""
    text = expand_variables(line, env)
    passed, quoted, i = [], False, 0
    while i < len(text):
        character = text[i]
        if character == '"':
            quoted = not quoted
        elif not quoted and character == "^":
            i += 1
            assert i < len(text), "a final ^ makes cmd.exe wait for another line"
            character = text[i]
        elif not quoted and character in "&|<>()":
            raise AssertionError(f"cmd.exe acts on {character!r} here: {text[: i + 1]}")
        passed.append(character)
        i += 1
    return "".join(passed)


def c_runtime_argv(command_line: str) -> list[str]:
    """argv as the Microsoft C runtime (and CommandLineToArgvW) splits a command line.
    argv[0], the program, ends at a space or tab outside quotes, and its quotes are
    dropped, backslashes kept. After it: 2n backslashes and a quote give n backslashes
    and the quote toggles quoting; 2n+1 backslashes and a quote give n backslashes and a
    literal quote; other backslashes are literal. A `""` inside quotes is read
    differently by different runtime versions, so it fails here."""
    i, n = 0, len(command_line)
    program, quoted = [], False
    while i < n and (quoted or command_line[i] not in " \t"):
        if command_line[i] == '"':
            quoted = not quoted
        else:
            program.append(command_line[i])
        i += 1
    argv = ["".join(program)]
    while True:
        while i < n and command_line[i] in " \t":
            i += 1
        if i == n:
            return argv
        argument: list[str] = []
        quoted = False
        while i < n and (quoted or command_line[i] not in " \t"):
            character = command_line[i]
            if character == "\\":
                run_end = i
                while run_end < n and command_line[run_end] == "\\":
                    run_end += 1
                count = run_end - i
                if run_end < n and command_line[run_end] == '"':
                    argument.append("\\" * (count // 2))
                    if count % 2:
                        argument.append('"')
                        run_end += 1
                else:
                    argument.append("\\" * count)
                i = run_end
            elif character == '"':
                assert not (quoted and command_line[i + 1 : i + 2] == '"'), command_line
                quoted = not quoted
                i += 1
            else:
                argument.append(character)
                i += 1
        argv.append("".join(argument))


def schtasks_creates(argv: list[str]) -> dict[str, str]:
    """The options of `schtasks /Create NAME VALUE ...`, by upper-case name."""
    assert [part.lower() for part in argv[:2]] == ["schtasks", "/create"], argv
    pairs = argv[2:]
    assert len(pairs) % 2 == 0, argv
    return {pairs[k].upper(): pairs[k + 1] for k in range(0, len(pairs), 2)}


def schtasks_action(task_run: str) -> tuple[str, str]:
    """What schtasks stores from /TR as the action's program and arguments: a quoted
    program up to its closing quote, quotes kept, else up to the first space."""
    if task_run.startswith('"'):
        end = task_run.index('"', 1) + 1
        return task_run[:end], task_run[end:].lstrip(" ")
    program, _, arguments = task_run.partition(" ")
    return program, arguments


def task_runs(program: str, arguments: str, env: Mapping[str, str] = WINDOWS_ENV) -> list[str]:
    """The argv the task's program gets at each run: the Task Scheduler expands %NAME% in
    the program and the arguments and starts `program arguments` as they stand (a
    program with a space needs its own quotes, or `C:\\Program` is what runs), which the
    program's C runtime splits (a launcher such as Scripts\\tradedb.exe hands its
    arguments on as they are)."""
    return c_runtime_argv(f"{expand_variables(program, env)} {expand_variables(arguments, env)}")


def powershell_tokens(line: str) -> list[tuple[str, str]]:
    """`line` as PowerShell reads the little it may hold: bare words of letters, digits,
    `-` and `:`, parentheses, and single-quoted strings (literal, but for the quote
    characters, of which two in a row are one). Anything else fails: PowerShell would
    give it a meaning ($ for variables, ` for escapes, ; & | and more)."""
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(line)
    while i < n:
        character = line[i]
        if character == " ":
            i += 1
        elif character in "()":
            tokens.append(("punct", character))
            i += 1
        elif character in POWERSHELL_QUOTES:
            value, i = [], i + 1
            while True:
                assert i < n, f"unterminated string in {line}"
                if line[i] in POWERSHELL_QUOTES:
                    if i + 1 < n and line[i + 1] in POWERSHELL_QUOTES:
                        value.append(line[i + 1])
                        i += 2
                        continue
                    i += 1
                    break
                value.append(line[i])
                i += 1
            tokens.append(("string", "".join(value)))
        else:
            start = i
            while i < n and ((line[i].isascii() and line[i].isalnum()) or line[i] in "-:"):
                i += 1
            assert i > start, f"PowerShell would read {character!r} as code: {line}"
            tokens.append(("word", line[start:i]))
    return tokens


def powershell_registers(line: str) -> tuple[str, str]:
    """The program and arguments that the printed Register-ScheduledTask line gives its
    task, once its whole shape has been checked."""
    tokens = powershell_tokens(line)
    execute = tokens[7][1] if len(tokens) > 7 else ""
    argument = tokens[9][1] if len(tokens) > 9 else ""

    def words(text: str) -> list[tuple[str, str]]:
        return [("punct", w) if w in "()" else ("word", w) for w in text.split()]

    expected = [
        *words("Register-ScheduledTask -TaskName"),
        ("string", "tradedb maintain"),
        *words("-Action ( New-ScheduledTaskAction -Execute"),
        ("string", execute),
        ("word", "-Argument"),
        ("string", argument),
        *words(
            ") -Trigger ( New-ScheduledTaskTrigger -Once -At 00:17"
            " -RepetitionInterval ( New-TimeSpan -Hours 1 ) )"
        ),
    ]
    assert tokens == expected, line
    return execute, argument


def windows_task_runs(task: WindowsTask) -> list[str]:
    """The argv the installed task runs with, from the printed line typed into its shell."""
    if task.shell == "cmd":
        options = schtasks_creates(c_runtime_argv(cmd_exe_passes(task.line)))
        assert {name: options.pop(name, None) for name in ("/TN", "/SC", "/MO", "/ST")} == {
            "/TN": "tradedb maintain",
            "/SC": "HOURLY",
            "/MO": "1",
            "/ST": "00:17",
        }
        task_run = options.pop("/TR")
        assert not options, options
        assert len(task_run) <= SCHTASKS_TR_LIMIT
        return task_runs(*schtasks_action(task_run))
    assert task.shell == "powershell"
    return task_runs(*powershell_registers(task.line))


def cron_command(line: str) -> str:
    """The command cron gives /bin/sh for a crontab line: what follows the five time
    fields, up to the first unescaped `%` (the rest would be its input), with backslashes
    read in pairs and the one of `\\%` dropped."""
    fields = line.split(None, 5)
    assert fields[:5] == ["17", "*", "*", "*", "*"], line
    command, escaped = [], False
    for position, character in enumerate(fields[5]):
        if escaped:
            if character == "%":
                command[-1] = "%"
            else:
                command.append(character)
            escaped = False
        elif character == "%":
            raise AssertionError(f"cron ends the command here: {fields[5][: position + 1]}")
        else:
            escaped = character == "\\"
            command.append(character)
    return "".join(command)


def cron_runs(line: str) -> list[str]:
    """The words /bin/sh runs for a crontab line (sh's quoting read by shlex)."""
    return shlex.split(cron_command(line))


def test_the_c_runtime_simulation_agrees_with_microsofts_examples() -> None:
    """The examples of Microsoft's "Parsing C command-line arguments" table."""
    assert c_runtime_argv('prog "a b c" d e') == ["prog", "a b c", "d", "e"]
    assert c_runtime_argv(r'prog "ab\"c" "\\" d') == ["prog", 'ab"c', "\\", "d"]
    assert c_runtime_argv(r'prog a\\\b d"e f"g h') == ["prog", r"a\\\b", "de fg", "h"]
    assert c_runtime_argv(r"prog a\\\"b c d") == ["prog", r"a\"b", "c", "d"]
    assert c_runtime_argv(r'prog a\\\\"b c" d e') == ["prog", r"a\\b c", "d", "e"]
    assert c_runtime_argv(r'"C:\Program Files\x.exe" a') == [r"C:\Program Files\x.exe", "a"]


def test_the_cmd_exe_simulation_quotes_escapes_and_expands_as_cmd_does() -> None:
    assert cmd_exe_passes('x "a & b" c^&d ^"e^&f') == 'x "a & b" c&d "e&f'
    assert cmd_exe_passes('x "%TEMP%" %temp% %NOPE%') == r'x "C:\Temp" C:\Temp %NOPE%'
    with pytest.raises(AssertionError, match="acts on '&'"):
        cmd_exe_passes(r'x "\"a & b\""')


# --- Windows: the printed line runs exactly the maintain command -------------------------


def test_plain_paths_give_the_lines_the_operations_guide_shows() -> None:
    cron = cron_line(
        Path("/home/me/.local/share/tradedb/tradedb.sqlite"), ["/home/me/bot/.venv/bin/tradedb"]
    )
    task = windows_schedule(
        Path(r"D:\crypto-bot\tradedb.sqlite"), [r"C:\bot\.venv\Scripts\tradedb.exe"]
    )

    guide = (Path(__file__).parent.parent / "docs" / "operations.md").read_text()
    assert cron == (
        "17 * * * * /home/me/bot/.venv/bin/tradedb maintain --once"
        " --db /home/me/.local/share/tradedb/tradedb.sqlite >/dev/null 2>&1"
    )
    assert task.line == (
        'schtasks /Create /TN "tradedb maintain" /SC HOURLY /MO 1 /ST 00:17 /TR'
        r' "\"C:\bot\.venv\Scripts\tradedb.exe\" maintain --once'
        r' --db \"D:\crypto-bot\tradedb.sqlite\""'
    )
    assert f"\n{cron}\n" in guide
    assert f"\n{task.line}\n" in guide


SCRIPTS = r"C:\Program Files\bot env\Scripts\tradedb.exe"
PYTHON = r"C:\Program Files\Python311\python.exe"


@pytest.mark.parametrize(
    ("command", "database"),
    [
        ([r"C:\bot\.venv\Scripts\tradedb.exe"], r"D:\crypto-bot\tradedb.sqlite"),
        ([SCRIPTS], r"D:\crypto-bot\tradedb.sqlite"),
        ([SCRIPTS], r"D:\crypto bot\trade db.sqlite"),
        ([SCRIPTS], r"\\nas\share\bot\tradedb.sqlite"),
        ([r"C:\Program Files (x86)\R&D bot\Scripts\tradedb.exe"], r"D:\R&D (x86)\a^b!c.sqlite"),
        ([r"\\nas\tools\bot\Scripts\tradedb.exe"], r"D:\it's; a=b, [x] {y} $z `w\trade db.sqlite"),
        ([PYTHON, "-m", "tradedb"], r"D:\crypto bot\trade db.sqlite"),
        ([PYTHON, "-m", "tradedb"], r"\\nas\share\bot\tradedb.sqlite"),
    ],
)
def test_the_task_scheduler_command_runs_exactly_the_maintain_command(
    command: list[str], database: str
) -> None:
    task = windows_schedule(Path(database), command)

    assert task.shell == "cmd"
    assert task.line.startswith("schtasks /Create ")
    assert windows_task_runs(task) == [*command, *MAINTAIN, database]


def test_a_postgresql_url_goes_in_without_its_password() -> None:
    target = parse_target(
        "postgresql://bot:s3cret@db.example:5432/trades?sslmode=require&application_name=bot"
    )
    bare = "postgresql://bot@db.example:5432/trades?application_name=bot&sslmode=require"

    task = windows_schedule(target, [SCRIPTS])
    cron = cron_line(target, ["/opt/bot/bin/tradedb"])

    assert windows_task_runs(task) == [SCRIPTS, *MAINTAIN, bare]
    assert cron_runs(cron) == ["/opt/bot/bin/tradedb", *MAINTAIN, bare, ">/dev/null", "2>&1"]
    assert "s3cret" not in task.line + cron
    assert "~/.pgpass" in (password_note(target) or "")
    assert password_note(Path(r"D:\crypto-bot\tradedb.sqlite")) is None


def test_a_command_longer_than_schtasks_takes_is_printed_for_powershell() -> None:
    """schtasks refuses a /TR over 261 characters: a deep virtual environment gets a
    PowerShell line, which has no such limit, and runs the same."""
    folder = "D:\\" + "deep folder\\" * 14
    database = r"D:\crypto bot\trade db.sqlite"
    # The task's command line: the quoted program, the options, the quoted database.
    fixed = len(f'"" maintain --once --db "{database}"')
    longest_for_schtasks = folder + "x" * (SCHTASKS_TR_LIMIT - fixed - len(folder))

    at_the_limit = windows_schedule(Path(database), [longest_for_schtasks])
    beyond = windows_schedule(Path(database), [longest_for_schtasks + "x"])

    assert at_the_limit.shell == "cmd"
    assert windows_task_runs(at_the_limit) == [longest_for_schtasks, *MAINTAIN, database]
    assert beyond.shell == "powershell"
    assert beyond.line.startswith("Register-ScheduledTask ")
    assert windows_task_runs(beyond) == [longest_for_schtasks + "x", *MAINTAIN, database]


# Characters a Windows path may hold, and those that break naive quoting, without the
# refused % and " and control characters; the padding reaches the PowerShell form too.
WINDOWS_TEXT = st.text(
    alphabet=st.sampled_from(
        list("aZ09 \\&^()|<>!',;=$`~#@[]{}+-._:/?*\u00e9\u4e2d\u2018\u2019\u201a\u201b")
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(
    program=WINDOWS_TEXT,
    database=WINDOWS_TEXT,
    padding=st.integers(min_value=0, max_value=260),
    module_form=st.booleans(),
)
def test_any_carried_path_reaches_the_task_exactly(
    program: str, database: str, padding: int, module_form: bool
) -> None:
    command = [program, "-m", "tradedb"] if module_form else [program]
    path = Path("D:\\" + "p" * padding + "\\" + database)

    task = windows_schedule(path, command)

    assert windows_task_runs(task) == [*command, *MAINTAIN, str(path)]


@pytest.mark.parametrize(
    ("command", "database", "named"),
    [
        ([SCRIPTS], r"D:\100%\tradedb.sqlite", r"the database path 'D:\100%\tradedb.sqlite'"),
        ([SCRIPTS], r"D:\%USERNAME%\tradedb.sqlite", "the database path 'D:\\%USERNAME%"),
        ([r"C:\50%\Scripts\tradedb.exe"], r"D:\bot.sqlite", r"the program path 'C:\50%"),
        ([SCRIPTS], 'D:\\say "hi"\\tradedb.sqlite', 'the database path \'D:\\say "hi"'),
    ],
)
def test_a_character_windows_cannot_carry_is_refused_naming_the_path(
    command: list[str], database: str, named: str
) -> None:
    with pytest.raises(CannotSchedule) as refused:
        windows_schedule(Path(database), command)

    message = str(refused.value)
    assert message.startswith("no Task Scheduler command: ")
    assert named in message
    assert ("'%'" in message) != ("'\"'" in message)
    assert "\n" not in message


def test_this_systems_line_is_refused_and_the_other_systems_left_out() -> None:
    """A line for the machine that runs the task must work or not be printed at all;
    the other system's line is dropped with the reason."""
    percent = Path("/srv/bot 100%/tradedb.sqlite")

    on_linux = schedule_lines(percent, ["/opt/bot/bin/tradedb"], system="posix")

    assert on_linux.windows_task is None
    assert on_linux.windows_shell is None
    assert on_linux.not_printed == (
        "no Task Scheduler command: the database path '/srv/bot 100%/tradedb.sqlite' holds"
        " '%', which cmd.exe and the Task Scheduler replace with environment variables"
        " (%NAME%), with no escape inside quotes; rename or move it"
    )
    assert cron_runs(on_linux.cron)[:-2] == ["/opt/bot/bin/tradedb", *MAINTAIN, str(percent)]
    with pytest.raises(CannotSchedule, match="'%'"):
        schedule_lines(Path(r"D:\100%\tradedb.sqlite"), [SCRIPTS], system="nt")
    for system in ("posix", "nt"):
        with pytest.raises(CannotSchedule, match="'\\\\n', a control character"):
            schedule_lines(Path("D:\\bot\nx\\tradedb.sqlite"), [SCRIPTS], system=system)


# --- cron --------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    program=st.text(st.characters(min_codepoint=0x20, exclude_characters="\x7f"), min_size=1),
    database=st.text(st.characters(min_codepoint=0x20), min_size=1),
)
def test_the_cron_line_carries_any_path_to_sh_exactly(program: str, database: str) -> None:
    """% (which cron turns into a newline), quotes, backslashes, $ and spaces included."""
    path = Path("/" + database)

    line = cron_line(path, ["/" + program])

    assert cron_runs(line) == ["/" + program, *MAINTAIN, str(path), ">/dev/null", "2>&1"]


def test_print_schedule_refuses_a_path_its_own_line_cannot_carry(tmp_path: Path) -> None:
    database = tmp_path / "bot\nnight.sqlite"

    result = CliRunner().invoke(app, ["maintain", "--print-schedule", "--db", str(database)])

    assert result.exit_code == USER_ERROR, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("error: no crontab line: the database path ")
    assert "bot\\nnight.sqlite' holds '\\n'" in line
    assert not database.exists()


def test_print_schedule_says_which_shell_takes_the_windows_line(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["a folder deep inside"] * 12, "tradedb.sqlite")
    short = tmp_path / "tradedb.sqlite"
    percent = tmp_path / "100%" / "tradedb.sqlite"
    runner = CliRunner()

    shown = {
        path: runner.invoke(app, ["maintain", "--print-schedule", "--db", str(path)])
        for path in (short, deep, percent)
    }

    assert all(result.exit_code == 0 for result in shown.values())
    lines = {path: result.stdout.splitlines() for path, result in shown.items()}
    assert lines[short][0] == "# cron (Linux, macOS): crontab -e, then add"
    assert lines[short][2:] == [
        "# Windows (Task Scheduler), in a command prompt (cmd.exe, not PowerShell):",
        windows_schedule(short, tradedb_command()).line,
    ]
    assert lines[deep][2] == (
        "# Windows (Task Scheduler), in PowerShell (the command is longer than the 261"
        " characters schtasks takes):"
    )
    assert lines[deep][3].startswith("Register-ScheduledTask -TaskName 'tradedb maintain' ")
    assert len(lines[deep]) == 4
    assert lines[percent][2:] == [
        f"# no Task Scheduler command: the database path '{percent}' holds '%', which cmd.exe"
        " and the Task Scheduler replace with environment variables (%NAME%), with no escape"
        " inside quotes; rename or move it"
    ]


def test_print_schedule_lines_run_from_anywhere_with_crons_path(tmp_path: Path) -> None:
    """The printed cron line, run as cron runs it (from /, PATH=/usr/bin:/bin, after
    cron's % handling), reaches tradedb with the database whose folder holds spaces,
    quotes, $, a backtick and % (here it prints the schedule again, as JSON, to show
    what it received)."""
    folder = tmp_path / "my 'bot' \"data\" $HOME `id` 100% a\\%b"
    folder.mkdir()
    env = isolated_environ(tmp_path)
    command = [sys.executable, "-m", "tradedb", "maintain", "--print-schedule", "--json"]

    shown = subprocess.run(
        [*command, "--db", "trade db.sqlite"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=folder,
    )

    lines = json.loads(shown.stdout)
    assert set(lines) == {
        "command",
        "database",
        "cron",
        "windows_task",
        "windows_shell",
        "password_note",
        "not_printed",
    }
    program = lines["command"]
    assert Path(program[0]).is_absolute()
    assert Path(program[0]).is_file()
    assert program in (
        [str(Path(sys.executable).parent / "tradedb")],
        [sys.executable, "-m", "tradedb"],
    )
    database = str(folder / "trade db.sqlite")
    assert lines["database"] == database
    assert cron_runs(lines["cron"]) == [*program, *MAINTAIN, database, ">/dev/null", "2>&1"]
    # No Windows line can carry the %: it is left out, and the reason given.
    assert lines["windows_task"] is None
    assert lines["windows_shell"] is None
    assert lines["not_printed"].startswith(
        f"no Task Scheduler command: the database path '{folder}"
    )
    assert lines["password_note"] is None

    shell_command = (
        cron_command(lines["cron"])
        .removesuffix(" >/dev/null 2>&1")
        .replace(" maintain --once ", " maintain --print-schedule --json ", 1)
    )
    ran = subprocess.run(
        ["/bin/sh", "-c", shell_command],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd="/",
        check=False,
    )

    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["database"] == database
