"""Markdown descriptions to safe HTML: no raw HTML, no images, links to http(s) and mailto only.

One of the two modules allowed to answer ``Markup`` (the other is ``svg``): whatever a user
wrote is escaped by markdown-it itself (``html`` off), a link to any other scheme
(``javascript:``, ``data:``, relative paths) stays plain text, and every link gets
``rel="nofollow noopener noreferrer"``. Headings move down two levels so a description
never adds a second ``<h1>`` (or an ``<h2>``) to the page around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

ALLOWED_SCHEMES = ("http://", "https://", "mailto:")
REL = "nofollow noopener noreferrer"
HEADING_SHIFT = 2


def _valid_link(url: str) -> bool:
    """Whether a link may be followed: absolute http(s) or mailto, nothing else."""
    return url.strip().lower().startswith(ALLOWED_SCHEMES)


def _link_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    tokens[idx].attrSet("rel", REL)
    return str(self.renderToken(tokens, idx, options, env))


def _heading(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    level = min(int(token.tag[1]) + HEADING_SHIFT, 6)
    token.tag = f"h{level}"
    return str(self.renderToken(tokens, idx, options, env))


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.validateLink = _valid_link  # type: ignore[method-assign]
    md.disable("image")
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("heading_open", _heading)
    md.add_render_rule("heading_close", _heading)
    return md


_MD = _parser()


def render_markdown(text: str | None) -> Markup:
    """``text`` (a model's or version's description) as HTML safe to put in a page."""
    if not text or not text.strip():
        return Markup("")
    return Markup(_MD.render(text))  # noqa: S704 - html off, links vetted: the module's job


def first_line(text: str | None, limit: int = 160) -> str:
    """The first non-empty line of a description, as plain text for a list (escaped later)."""
    for raw in (text or "").splitlines():
        line = raw.strip().lstrip("#").strip()
        if line:
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""
