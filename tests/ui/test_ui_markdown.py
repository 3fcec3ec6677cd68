"""Descriptions render as Markdown with raw HTML escaped, no images, and vetted links only."""

from __future__ import annotations

import re

import pytest
from markupsafe import Markup

from modelreg.api.ui.markdown import first_line, render_markdown

REL = 'rel="nofollow noopener noreferrer"'


def test_raw_html_is_escaped_not_rendered():
    html = render_markdown('<script>alert(1)</script>\n\n<img src=x onerror="alert(1)">')
    assert isinstance(html, Markup)
    assert "<script" not in html
    assert "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html


@pytest.mark.parametrize(
    "link",
    [
        "[x](javascript:alert(1))",
        "[x](JavaScript:alert(1))",
        "[x]( javascript:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x](java\tscript:alert(1))",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "[x](vbscript:msgbox)",
        "[x](/relative/path)",
        "[x](//evil.example/)",
        "<javascript:alert(1)>",
    ],
)
def test_links_to_other_schemes_stay_text(link: str):
    html = render_markdown(link)
    assert "<a " not in html
    assert "href" not in html


@pytest.mark.parametrize(
    ("link", "href"),
    [
        ("[docs](https://example.com/a?b=1&c=2)", "https://example.com/a?b=1&amp;c=2"),
        ("[plain](http://example.com)", "http://example.com"),
        ("[mail](mailto:team@example.com)", "mailto:team@example.com"),
        ("<https://example.com/x>", "https://example.com/x"),
        ('[q](https://example.com/"onmouseover="x)', "https://example.com/%22onmouseover=%22x"),
    ],
)
def test_http_and_mailto_links_get_rel(link: str, href: str):
    html = render_markdown(link)
    assert f'<a href="{href}" {REL}>' in html


def test_images_are_not_rendered():
    html = render_markdown("![chart](https://example.com/c.png)")
    assert "<img" not in html
    assert "src=" not in html


def test_headings_move_down_so_the_page_keeps_one_h1():
    html = render_markdown("# Title\n\n## Part\n\n###### Deep")
    assert re.findall(r"<(h\d)>", html) == ["h3", "h4", "h6"]


def test_ordinary_markdown_still_works():
    html = render_markdown("Some *emphasis*, `code` and\n\n- a list")
    assert "<em>emphasis</em>" in html
    assert "<code>code</code>" in html
    assert "<li>a list</li>" in html


@pytest.mark.parametrize("text", [None, "", "   \n  "])
def test_nothing_renders_as_nothing(text: str | None):
    assert render_markdown(text) == ""


def test_first_line_is_plain_text():
    assert first_line("\n# Fraud model <b>\nmore") == "Fraud model <b>"
    assert first_line("x" * 500, limit=10) == "x" * 9 + "…"
    assert first_line(None) == ""
