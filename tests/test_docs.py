"""The documentation cannot drift from the code: every relative link in README.md and docs/
resolves (a file, and a `#heading` of a Markdown file where one is named), and every
`genie-robot ...` command in their code blocks parses with the CLI's own parser (nothing runs:
placeholders such as RUN or STORE.h5 are fine, an unknown flag or a bad value is not)."""
import contextlib
import io
import re
import shlex
from pathlib import Path
from urllib.parse import unquote

import pytest

from genie_robot.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^\s*(```|~~~)")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|<(?:img|a)\s[^>]*?(?:src|href)=\"([^\"]+)\""
                  r"|^\s*\[(?!\^)[^\]]+\]:\s*<?([^\s>]+)")  # inline, HTML, and reference-style definitions (not footnotes)
# Where a shell line stops being the command: chained commands, pipes, redirections.
SHELL_BREAKS = {"&&", "||", "|", ";", "&", ">", ">>", "2>", "2>&1", "&>"}


def split_page(path: Path) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(prose lines, code lines) of a Markdown page, each with its line number."""
    prose, code, fenced = [], [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        (code if fenced else prose).append((number, line))
    return prose, code


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor on a page (a repeated heading gets -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    for _, line in split_page(path)[0]:
        if match := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line):
            base = slug(match.group(1))
            seen[f"{base}-{seen[base]}" if base in seen else base] = 0
            seen[base] = seen.get(base, 0) + 1
    return set(seen)


def relative_links() -> list[tuple[str, Path, str]]:
    """(where, page, target) of every link that is neither a URL nor a mail address."""
    links = []
    for page in PAGES:
        for number, line in split_page(page)[0]:
            line = re.sub(r"`[^`]*`", "", line)  # code spans are not links
            for match in LINK.finditer(line):
                target = next(group for group in match.groups() if group)
                if not re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                    links.append((f"{page.relative_to(ROOT)}:{number}", page, target))
    return links


def commands() -> list[tuple[str, list[str]]]:
    """(where, argv after `genie-robot`) of every command in the pages' code blocks: continued
    lines joined, comments dropped, the command cut where the shell chains, pipes or redirects."""
    found = []
    for page in PAGES:
        pending, start = "", 0
        for number, line in split_page(page)[1]:
            if not pending:
                start = number
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            text, pending = pending + line, ""
            try:
                words = shlex.split(text, comments=True)
            except ValueError:  # not shell (Python, YAML, output)
                continue
            while words and re.fullmatch(r"\$|[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):  # a prompt, VAR=value
                words = words[1:]
            if words[:1] == ["genie-robot"]:
                argv = words[1:]
                cut = next((i for i, word in enumerate(argv) if word in SHELL_BREAKS), len(argv))
                found.append((f"{page.relative_to(ROOT)}:{start}", argv[:cut]))
    return found


@pytest.mark.parametrize("where,page,target", relative_links(), ids=[where for where, _, _ in relative_links()])
def test_relative_link_resolves(where, page, target):
    path, _, anchor = target.partition("#")
    linked = (page.parent / unquote(path)).resolve() if path else page
    assert linked.exists(), f"{where}: {target} links to {linked.relative_to(ROOT) if ROOT in linked.parents else linked}, " \
                            "which does not exist"
    if anchor and linked.suffix == ".md":
        assert anchor in anchors(linked), f"{where}: {target}: {linked.name} has no heading with the anchor #{anchor}"


@pytest.mark.parametrize("where,argv", commands(), ids=[where for where, _ in commands()])
def test_command_parses(where, argv):
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            build_parser().parse_args(argv)
        except SystemExit as exit:
            assert exit.code == 0, f"{where}: genie-robot {shlex.join(argv)}\n{stderr.getvalue().strip()}"


def test_the_checks_find_what_they_check():
    """The README has links and commands, so an empty collection means a broken collector."""
    assert relative_links() and commands()
