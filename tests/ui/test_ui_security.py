"""The web UI's security rules (issue 21 §4, §5; SECURITY.md rules 5, 6, 14, 15).

Sign-in turns a token into a server-side session; every form write needs its CSRF token and
is refused before routing without it; pages run no inline script or style.
"""

from __future__ import annotations

import re
from datetime import timedelta
from importlib import resources

import httpx
import pytest
from sqlalchemy import select, update
from ui_support import ORIGIN, World, client_for, csrf_of, error_code, post_form, sign_in, snapshot

from modelreg.api.ui import login
from modelreg.api.ui.render import UI_CSP
from modelreg.db.base import utcnow
from modelreg.db.tables import WebSession
from modelreg.errors import Unauthenticated
from modelreg.services import sessions

pytestmark = pytest.mark.anyio

TEMPLATES = resources.files("modelreg.api.ui") / "templates"


def session_cookie(http: httpx.AsyncClient) -> str:
    return http.cookies.get("modelreg_session") or http.cookies.get("__Host-modelreg_session") or ""


def session_works(world: World, cookie: str) -> bool:
    with world.app.state.registry.read() as session:
        try:
            sessions.session_actor(session, cookie, source="test")
        except Unauthenticated:
            return False
    return True


class TestTemplates:
    """What no template may hold: the CSP would block it, or it would let markup through."""

    def test_no_inline_script_style_or_handlers(self) -> None:
        names = [t.name for t in TEMPLATES.iterdir() if t.name.endswith(".html")]
        assert "base.html" in names
        for name in names:
            text = (TEMPLATES / name).read_text()
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), name
            assert not re.search(r"\sstyle\s*=", text), name
            assert not re.search(r"\son[a-z]+\s*=", text, re.IGNORECASE), name
            assert "|safe" not in text.replace(" ", ""), name
            assert "autoescape false" not in text, name

    async def test_pages_carry_the_strict_policy(self, laptop: httpx.AsyncClient) -> None:
        for path in ("/login", "/no-such-page"):
            answer = await laptop.get(path)
            assert answer.headers["content-security-policy"] == UI_CSP
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["x-frame-options"] == "DENY"
            # Not no-referrer: Chromium would send the page's forms with ``Origin: null``.
            assert answer.headers["referrer-policy"] == "same-origin"
        assert "frame-ancestors 'none'" in UI_CSP
        assert "'unsafe-inline'" not in UI_CSP


class TestSignIn:
    async def test_a_token_becomes_an_http_only_strict_cookie(self, world: World) -> None:
        async with client_for(world.app) as http:
            page = await http.get("/login")
            assert 'name="token"' in page.text
            assert ">Sign in</button>" in page.text
            answer = await sign_in(http, world.tokens["ann"])
            assert answer.status_code == 303
            assert answer.headers["location"] == "/"
            cookie = answer.headers["set-cookie"]
            assert cookie.startswith("modelreg_session=mrs_")
            for flag in ("HttpOnly", "SameSite=strict", "Path=/", "Max-Age=43200"):
                assert flag in cookie
            assert "Secure" not in cookie
            assert world.tokens["ann"] not in cookie
            assert session_works(world, session_cookie(http))

    async def test_over_https_the_cookie_is_secure_and_host_only(self, world: World) -> None:
        async with client_for(world.app, base_url="https://registry.example") as http:
            answer = await sign_in(http, world.tokens["ann"])
            cookie = answer.headers["set-cookie"]
            assert cookie.startswith("__Host-modelreg_session=")
            assert "Secure" in cookie
            assert "Domain" not in cookie

    async def test_the_session_stores_no_secret(self, world: World) -> None:
        async with client_for(world.app) as http:
            await sign_in(http, world.tokens["ann"])
            cookie = session_cookie(http)
        with world.app.state.registry.read() as session:
            rows = session.scalars(select(WebSession)).all()
        assert len(rows) == 1
        assert cookie not in repr([(r.secret_hash, r.client) for r in rows])

    @pytest.mark.parametrize("case", ["forged", "revoked", "expired", "disabled", "empty"])
    async def test_every_bad_token_gets_the_same_refusal(self, world: World, case: str) -> None:
        local = world.registry()
        token = world.tokens["ann"]
        if case == "forged":
            token = "mr_" + "x" * 40
        elif case == "revoked":
            local.revoke_token(local.list_tokens("ann")[0].id)
        elif case == "disabled":
            local.disable_user("ann")
        elif case == "expired":
            token = local.create_token("ann", expires_days=1)["token"]
            with world.app.state.registry.write() as session:
                from modelreg.db.tables import ApiToken

                session.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(hours=1)))
        elif case == "empty":
            token = ""
        local.close()
        async with client_for(world.app) as http:
            answer = await sign_in(http, token)
            assert answer.status_code == 401
            assert "That token does not work" in answer.text
            assert (
                "set-cookie" not in answer.headers
                or "modelreg_session" not in answer.headers["set-cookie"]
            )

    async def test_failed_sign_ins_are_throttled_per_client(self, world: World) -> None:
        async with client_for(world.app) as http:
            for _ in range(10):
                answer = await sign_in(http, "mr_wrong")
                assert answer.status_code == 401
            answer = await sign_in(http, world.tokens["ann"])  # even a good one now waits
            assert answer.status_code == 429
            assert int(answer.headers["retry-after"]) > 0
        other = httpx.ASGITransport(app=world.app, client=("127.0.0.2", 5000))
        async with httpx.AsyncClient(transport=other, base_url=ORIGIN) as http:
            assert (await sign_in(http, world.tokens["ann"])).status_code == 303

    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("/models/fraud", "/models/fraud"),
            ("/promotions?state=pending", "/promotions?state=pending"),
            ("//evil.example/x", "/"),
            ("/\\evil.example", "/"),
            ("https://evil.example/", "/"),
            ("javascript:alert(1)", "/"),
            ("/ok\r\nSet-Cookie: x=1", "/"),
            ("", "/"),
        ],
    )
    async def test_next_only_leads_to_this_server(
        self, world: World, given: str, expected: str
    ) -> None:
        assert login.safe_next(given) == expected
        async with client_for(world.app) as http:
            answer = await post_form(
                http, "/login", "/login", {"token": world.tokens["ann"], "next": given}
            )
            assert answer.headers["location"] == expected


class TestSessionEnds:
    async def test_sign_out_ends_it_everywhere(self, world: World) -> None:
        async with client_for(world.app) as http:
            await sign_in(http, world.tokens["ann"])
            cookie = session_cookie(http)
            page = await http.get("/login")
            answer = await http.post("/logout", data={"csrf": csrf_of(page.text)})
            assert answer.status_code == 303
            assert answer.headers["location"] == "/login?done=signed_out"
            assert "modelreg_session=" in answer.headers["set-cookie"]
            assert "Max-Age=0" in answer.headers["set-cookie"]
        assert not session_works(world, cookie)

    @pytest.mark.parametrize("how", ["revoke_token", "disable_user", "expire"])
    async def test_it_ends_with_its_token_its_user_or_its_time(
        self, world: World, how: str
    ) -> None:
        async with client_for(world.app) as http:
            await sign_in(http, world.tokens["ann"])
            cookie = session_cookie(http)
        assert session_works(world, cookie)
        local = world.registry()
        if how == "revoke_token":
            local.revoke_token(local.list_tokens("ann")[0].id)
        elif how == "disable_user":
            local.disable_user("ann")
        else:
            with world.app.state.registry.write() as session:
                session.execute(update(WebSession).values(expires_at=utcnow()))
        local.close()
        assert not session_works(world, cookie)

    async def test_a_session_never_outlives_its_token(self, world: World) -> None:
        local = world.registry()
        token = local.create_token("ann", expires_days=1)["token"]
        local.close()
        async with client_for(world.app) as http:
            answer = await sign_in(http, token)
            assert "Max-Age=43200" in answer.headers["set-cookie"]  # 12 h < 1 day
        with world.app.state.registry.read() as session:
            row = session.scalars(select(WebSession)).one()
            assert row.expires_at <= row.token.expires_at  # type: ignore[operator]


class TestCsrf:
    """Every UI write is refused before routing unless it is the page's own form."""

    @pytest.mark.parametrize(
        "case", ["missing", "wrong", "other_session", "json", "multipart", "no_cookie"]
    )
    async def test_forms_without_the_page_token_are_refused(self, world: World, case: str) -> None:
        before = snapshot(world.app)
        async with client_for(world.app) as other:
            await sign_in(other, world.tokens["appr"])
            foreign = csrf_of((await other.get("/login")).text)
        async with client_for(world.app) as http:
            await sign_in(http, world.tokens["root"])
            mine = csrf_of((await http.get("/login")).text)
            data = {"token": world.tokens["root"], "csrf": mine}
            kwargs: dict[str, object] = {"data": data}
            expected = 403
            if case == "missing":
                kwargs = {"data": {"token": world.tokens["root"]}}
            elif case == "wrong":
                kwargs = {"data": {**data, "csrf": mine[:-2] + "AA"}}
            elif case == "other_session":
                kwargs = {"data": {**data, "csrf": foreign}}
            elif case == "json":
                kwargs, expected = {"json": data}, 415
            elif case == "multipart":
                kwargs, expected = {"data": data, "files": {"f": ("a", b"x")}}, 415
            elif case == "no_cookie":
                http.cookies.clear()
            for path in ("/login", "/logout", "/promotions/1/approve", "/admin/users"):
                answer = await http.post(path, **kwargs)  # type: ignore[arg-type]
                assert answer.status_code == expected, (path, answer.text)
                assert error_code(answer) in ("csrf_failed", "unsupported_media_type")
                assert answer.headers["content-security-policy"] == UI_CSP
        assert snapshot(world.app) == before

    async def test_oversized_and_malformed_forms_are_refused(self, world: World) -> None:
        async with client_for(world.app) as http:
            token = csrf_of((await http.get("/login")).text)
            big = await http.post("/login", data={"csrf": token, "x": "a" * 70_000})
            assert big.status_code == 413
            bad = await http.post(
                "/login",
                content=b"csrf=" + token.encode() + b"&token=\xff\xfe",
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert bad.status_code == 400
            many = "&".join(f"f{i}=1" for i in range(300))
            lots = await http.post(
                "/login",
                content=f"csrf={token}&{many}".encode(),
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert lots.status_code == 400

    async def test_a_cross_site_form_is_refused_even_with_a_token(self, world: World) -> None:
        async with client_for(world.app) as http:
            token = csrf_of((await http.get("/login")).text)
            answer = await http.post(
                "/login",
                data={"csrf": token, "token": world.tokens["ann"]},
                headers={"origin": "http://evil.example"},
            )
            assert answer.status_code == 403
        assert not session_cookie(http)


class TestLaptopMode:
    async def test_the_sign_in_page_says_none_is_needed(self, laptop: httpx.AsyncClient) -> None:
        page = await laptop.get("/login")
        assert "no sign-in needed" in page.text

    async def test_a_foreign_host_name_is_refused(self, laptop: httpx.AsyncClient) -> None:
        answer = await laptop.get("/login", headers={"host": "rebound.example"})
        assert answer.status_code == 400

    async def test_static_files_come_from_a_fixed_table(self, laptop: httpx.AsyncClient) -> None:
        page = (await laptop.get("/login")).text
        for href in re.findall(r'(?:href|src)="(/static/[^"]+)"', page):
            answer = await laptop.get(href)
            assert answer.status_code == 200
            assert "immutable" in answer.headers["cache-control"]
        prefix = re.search(r'href="(/static/ui-[0-9a-f]+)/ui.css"', page)
        assert prefix
        for probe in ("../__init__.py", "..%2f__init__.py", "render.py", "ui.css%00"):
            assert (await laptop.get(f"{prefix[1]}/{probe}")).status_code == 404
        assert (await laptop.get("/static/ui-0000000000/ui.css")).status_code == 404
