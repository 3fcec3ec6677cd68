"""Examples stay runnable: every ``modelreg`` command shown in the docs and CI example exists.

The commands are read from the ``run:`` blocks of ``examples/ci/github-actions.yml`` and from
the fenced ``bash``/``sh`` blocks (every line) and ``console`` blocks (the ``$ `` lines) of the
README and ``docs/``. Each one must name a real command (and subcommand, for groups such as
``policy set``) of the Click tree, and each ``--option`` must exist on that command, so renaming
a command or an option fails here until the docs follow.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import yaml

from modelreg.cli.main import cli

ROOT = Path(__file__).parents[2]
WORKFLOW = ROOT / "examples" / "ci" / "github-actions.yml"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# These must show commands; a parser that silently finds none would pass everything.
MUST_SHOW = [WORKFLOW, ROOT / "docs" / "ci-cd.md", ROOT / "docs" / "lifecycle.md"]

SEPARATOR_WORDS = {"then", "else", "do", "if", "elif", "while", "until", "!", "time", "exec"}
PUNCTUATION = "();<>|&\n"
FENCE = re.compile(r"^```[ \t]*(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
HEREDOC = re.compile(r"<<-?[ \t]*(['\"]?)(\w+)\1")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class Shown:
    """One ``modelreg`` command line as a document shows it."""

    source: str
    words: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.source}: modelreg {shlex.join(self.words)}"


def _drop_heredocs(script: str) -> str:
    out: list[str] = []
    end: str | None = None
    for line in script.splitlines():
        if end is not None:
            end = None if line.strip() == end else end
            continue
        out.append(line)
        match = HEREDOC.search(line)
        if match:
            end = match[2]
    return "\n".join(out)


def _drop_comments(script: str) -> str:
    """Remove ``# …`` comments, honouring quotes (a comment may hold an apostrophe)."""
    out: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(script):
        char = script[i]
        if quote is None and char == "#" and (i == 0 or script[i - 1] in " \t\n;|&("):
            while i < len(script) and script[i] != "\n":
                i += 1
            continue
        if char == "\\" and quote != "'" and i + 1 < len(script):
            out.append(script[i : i + 2])
            i += 2
            continue
        if char in "'\"" and quote in (None, char):
            quote = None if quote == char else char
        out.append(char)
        i += 1
    return "".join(out)


def _words(script: str) -> list[str]:
    script = _drop_comments(_drop_heredocs(script)).replace("\\\n", " ")
    lexer = shlex.shlex(script, posix=True, punctuation_chars=PUNCTUATION)
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    lexer.commenters = ""
    return list(lexer)


def _is_separator(token: str) -> bool:
    return all(c in PUNCTUATION for c in token) or token in SEPARATOR_WORDS


def commands_in(script: str, source: str) -> list[Shown]:
    """Every ``modelreg …`` command of a shell script, including those inside ``$(…)``."""
    found: list[Shown] = []
    words = _words(script)
    at_start = True
    i = 0
    while i < len(words):
        word = words[i]
        if "$(" in word:
            # A substitution inside a quoted word, e.g. "$(modelreg show … --json)".
            for inner in word.split("$(")[1:]:
                found += commands_in(inner, source)
        if at_start and word == "modelreg":
            j = i + 1
            while j < len(words) and not _is_separator(words[j]):
                j += 1
            found.append(Shown(source, tuple(words[i + 1 : j])))
            i = j
            continue
        at_start = _is_separator(word) or (at_start and bool(ASSIGNMENT.match(word)))
        i += 1
    return found


def doc_commands(path: Path) -> list[Shown]:
    """Commands in a Markdown file: bash blocks whole, console blocks' ``$`` lines."""
    found: list[Shown] = []
    source = path.relative_to(ROOT).as_posix()
    for match in FENCE.finditer(path.read_text(encoding="utf-8")):
        language, body = match[1].lower(), match[2]
        if language in ("bash", "sh", "shell"):
            found += commands_in(body, source)
        elif language == "console":
            lines: list[str] = []
            more = False
            for line in body.splitlines():
                if line.startswith("$ ") or more:
                    lines.append(line.removeprefix("$ "))
                    more = line.endswith("\\")
            found += commands_in("\n".join(lines), source)
    return found


def load_workflow() -> dict[object, object]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "a workflow is a mapping"
    return data


def workflow_commands() -> list[Shown]:
    source = WORKFLOW.relative_to(ROOT).as_posix()
    jobs = load_workflow().get("jobs") or {}
    assert isinstance(jobs, dict)
    found: list[Shown] = []
    for name, job in jobs.items():
        for step in job.get("steps", []):
            if "run" in step:
                found += commands_in(step["run"], f"{source} job {name}")
    return found


def shown_commands() -> list[Shown]:
    return workflow_commands() + [c for path in DOCS for c in doc_commands(path)]


def _options(command: click.Command) -> dict[str, click.Option | None]:
    """Option names of ``command``; ``None`` stands for the help option every command has."""
    names: dict[str, click.Option | None] = {"-h": None, "--help": None}
    for param in command.params:
        if isinstance(param, click.Option):
            for name in (*param.opts, *param.secondary_opts):
                names[name] = param
    return names


def _check_options(
    shown: Shown, command: click.Command, words: list[str], path: str, *, group: bool = False
) -> list[str]:
    """Check each option in ``words`` exists on ``command``, skipping option values.

    For a group, stop at the first positional word (the subcommand) and return the words from
    there on (``modelreg --registry X server`` → ``["server"]``).
    """
    options = _options(command)
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            break
        if not word.startswith("-") or word == "-" or re.fullmatch(r"-\d.*", word):
            if group:
                return words[i:]
            i += 1
            continue
        name, has_value, _ = word.partition("=")
        assert name in options, f"{shown}: `modelreg {path}` has no option {name}"
        param = options[name]
        i += 2 if param is not None and not param.is_flag and not has_value else 1
    return []


def check(shown: Shown) -> None:
    """Walk the Click tree along ``shown``: each command and subcommand, and their options."""
    command: click.Command = cli
    path = ""
    words = list(shown.words)
    while isinstance(command, click.Group):
        words = _check_options(shown, command, words, path.strip() or "(root)", group=True)
        if not words:  # `modelreg --help`, `modelreg policy --help`
            return
        name = words.pop(0)
        sub = command.commands.get(name)
        known = ", ".join(sorted(command.commands))
        assert sub is not None, f"{shown}: no command `modelreg {path}{name}` ({known})"
        command, path = sub, f"{path}{name} "
    _check_options(shown, command, words, path.strip())


SHOWN = shown_commands()


def test_the_example_is_a_workflow():
    data = load_workflow()
    # YAML 1.1 reads a bare `on` key as True; GitHub reads it as the trigger list.
    triggers = data.get("on", data.get(True))
    assert triggers, "a workflow needs `on:`"
    assert "workflow_dispatch" in triggers
    jobs = data.get("jobs")
    assert isinstance(jobs, dict)
    assert jobs
    for name, job in jobs.items():
        assert "runs-on" in job, name
        assert job.get("steps"), name
        for step in job["steps"]:
            assert ("run" in step) != ("uses" in step), (name, step)


@pytest.mark.parametrize("path", MUST_SHOW, ids=lambda p: p.name)
def test_commands_are_found(path):
    source = path.relative_to(ROOT).as_posix()
    assert any(s.source.startswith(source) for s in SHOWN), f"no modelreg command in {source}"


@pytest.mark.parametrize("shown", SHOWN, ids=str)
def test_shown_command_exists(shown):
    check(shown)


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("modelreg promote m 2 --to staging", [("promote", "m", "2", "--to", "staging")]),
        ("V=$(modelreg show m --json | jq .version)", [("show", "m", "--json")]),
        ('echo "$(modelreg versions m)"', [("versions", "m")]),
        ("rc=0; MODELREG_ACTOR=bob modelreg approve 7 || rc=$?", [("approve", "7")]),
        (
            "modelreg rollback m \\\n  --reason 'it broke'  # don't",
            [("rollback", "m", "--reason", "it broke")],
        ),
        ("pip install modelreg && modelreg models", [("models",)]),
        ("cat <<EOF\nmodelreg nope\nEOF\nmodelreg policy list", [("policy", "list")]),
    ],
)
def test_commands_are_extracted(script, expected):
    assert [s.words for s in commands_in(script, "t")] == expected


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (("promote", "m", "1", "--too", "staging"), "has no option --too"),
        (("policy", "sett", "m"), "no command `modelreg policy sett`"),
        (("promot", "m"), "no command `modelreg promot`"),
        (("--regisry", "x", "models"), "`modelreg \\(root\\)` has no option --regisry"),
        (("alias", "set", "m", "a", "1", "--expect", "1"), "has no option --expect"),
    ],
)
def test_the_check_catches_drift(words, message):
    with pytest.raises(AssertionError, match=message):
        check(Shown("t", words))


@pytest.mark.parametrize(
    "words",
    [
        ("--registry", "/srv/registry", "server", "--port", "9000"),
        ("policy", "set", "*", "--stage=production", "--require", "--approvals"),
        ("rollback", "m", "--reason", "--to", "--to", "3"),
        ("policy", "--help"),
    ],
)
def test_the_check_skips_option_values(words):
    check(Shown("t", words))
