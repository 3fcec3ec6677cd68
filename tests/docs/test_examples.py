"""Examples stay runnable: every ``modelreg`` command shown in the docs and CI example exists.

The commands are read from the ``run:`` blocks of ``examples/ci/github-actions.yml`` and from
the fenced ``bash``/``sh`` blocks (every line) and ``console`` blocks (the ``$ `` lines) of the
README and ``docs/``. Each one must name a real command (and subcommand, for groups such as
``policy set``) of the Click tree, and each ``--option`` must exist on that command, so renaming
a command or an option fails here until the docs follow.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
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


# -- Running the docs ----------------------------------------------------------------------------
#
# Every ``bash``/``sh`` block of the README and docs/ runs, page by page and in order, on a fresh
# embedded registry (``MODELREG_HOME`` in a temporary folder, a fresh working folder), as someone
# pasting the page into a shell would; a command that fails fails the test. A block that cannot
# run here says so in the Markdown, right before its fence, with the reason:
#
#     <!-- docs-test: skip (starts a server that runs until stopped) -->
#
# and a block that needs a state the page describes in prose can get it from a hidden set-up:
#
#     <!-- docs-test: setup
#     modelreg register fraud_detector model.pkl
#     -->
#
# Output examples belong in ``console`` blocks, which are not run.

DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(?P<kind>\w+)(?P<rest>.*?)-->\s*\Z", re.DOTALL)
SHELLS = ("bash", "sh", "shell")
BLOCK_TIMEOUT = 900.0  # a safety net for a hung command, far above a slow machine's minute


@dataclass(frozen=True)
class Block:
    """One shell block of a page, with what its ``docs-test`` comment asks."""

    source: str
    line: int
    body: str
    skip: str | None = None
    setup: str = ""


def doc_blocks(text: str, source: str) -> list[Block]:
    """The shell blocks of a Markdown text, in order, with their skip reason or set-up."""
    blocks: list[Block] = []
    for match in FENCE.finditer(text):
        if match[1].lower() not in SHELLS:
            continue
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip()
        directive = DIRECTIVE.search(before[before.rfind("<!--") :]) if "<!--" in before else None
        skip, setup = None, ""
        if directive:
            kind, rest = directive["kind"], directive["rest"].strip()
            if kind == "skip":
                reason = re.fullmatch(r"\((.+)\)", rest, re.DOTALL)
                assert reason, f"{source}:{line}: `docs-test: skip` needs a reason: skip (why)"
                skip = " ".join(reason[1].split())
            elif kind == "setup":
                assert rest, f"{source}:{line}: `docs-test: setup` needs commands"
                setup = rest
            else:
                raise AssertionError(f"{source}:{line}: unknown docs-test directive {kind!r}")
        blocks.append(Block(source, line, match[2], skip, setup))
    return blocks


def _modelreg_on_path(bin_dir: Path) -> None:
    """A ``modelreg`` command running this checkout's code with the tests' interpreter."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "modelreg"
    code = (
        "import sys; from modelreg.cli.main import main; sys.argv[0] = 'modelreg'; sys.exit(main())"
    )
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -c "{code}" "$@"\n')
    shim.chmod(0o755)


def page_env(root: Path) -> dict[str, str]:
    """A shell environment with nothing of the caller's registry: a fresh one under ``root``."""
    import modelreg

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MODELREG_", "MLFLOW_")) and k != "PYTHONPATH"
    }
    _modelreg_on_path(root / "bin")
    env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(Path(modelreg.__file__).parents[1])
    env["MODELREG_HOME"] = str(root / "home")
    env["MODELREG_DIGEST_CACHE"] = str(root / "digest-cache.sqlite")
    return env


def _run_block(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run one block in bash, in a session of its own so that nothing it starts outlives it."""
    proc = subprocess.Popen(
        ["bash", "-c", script],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=BLOCK_TIMEOUT)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.returncode is None:
            proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run_page(blocks: list[Block], root: Path) -> list[str]:
    """Run the blocks in order in a fresh folder; the first failure raises with its output."""
    work = root / "work"
    work.mkdir(parents=True)
    env = page_env(root)
    ran: list[str] = []
    for block in blocks:
        if block.skip is not None:
            continue
        script = f"set -euo pipefail\n{block.setup}\n{block.body}"
        done = _run_block(script, work, env)
        assert done.returncode == 0, (
            f"{block.source}:{block.line}: the block failed (exit {done.returncode})\n"
            f"{block.body}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
        )
        ran.append(f"{block.source}:{block.line}")
    return ran


PAGES = [path for path in DOCS if doc_blocks(path.read_text(encoding="utf-8"), path.name)]


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_every_shell_block_runs_in_order_on_a_fresh_registry(path, tmp_path):
    source = path.relative_to(ROOT).as_posix()
    blocks = doc_blocks(path.read_text(encoding="utf-8"), source)
    ran = run_page(blocks, tmp_path)
    skipped = [b for b in blocks if b.skip]
    assert len(ran) + len(skipped) == len(blocks)
    assert ran or skipped, f"no shell block in {source}"


def test_a_failing_documented_command_fails_the_page(tmp_path):
    text = (
        "```bash\necho 'weights' > model.pkl && modelreg register fraud model.pkl\n```\n\n"
        "<!-- docs-test: skip (an illustration) -->\n```bash\nexit 9\n```\n\n"
        "```bash\nmodelreg show fraud\nmodelreg show fraud_detectr   # a typo\n```\n"
    )
    blocks = doc_blocks(text, "page.md")
    assert [b.skip for b in blocks] == [None, "an illustration", None]
    with pytest.raises(AssertionError, match=r"page\.md:10: the block failed \(exit 2\)"):
        run_page(blocks, tmp_path)


def test_the_state_carries_from_block_to_block_and_setup_runs_first(tmp_path):
    text = (
        "<!-- docs-test: setup\necho 'weights' > model.pkl\n-->\n"
        "```bash\nmodelreg register fraud model.pkl\n```\n"
        "```sh\nmodelreg show fraud:1 --json > v.json && grep -q '\"version\": 1' v.json\n```\n"
    )
    assert run_page(doc_blocks(text, "p.md"), tmp_path) == ["p.md:4", "p.md:7"]


@pytest.mark.parametrize(
    "comment",
    ["<!-- docs-test: skip -->", "<!-- docs-test: skip () -->", "<!-- docs-test: run -->"],
)
def test_a_directive_must_be_well_formed(comment):
    with pytest.raises(AssertionError, match="docs-test"):
        doc_blocks(f"{comment}\n```bash\ntrue\n```\n", "p.md")


def test_the_readme_installs_into_a_venv():
    """The README's install commands make and activate a venv first, never the active pip."""
    blocks = doc_blocks((ROOT / "README.md").read_text(encoding="utf-8"), "README.md")
    installs = [b.body for b in blocks if "pip install" in b.body]
    assert len(installs) == 2, installs
    for body in installs:
        before = body.split("pip install")[0]
        assert "python3 -m venv .venv && . .venv/bin/activate &&" in before, body
