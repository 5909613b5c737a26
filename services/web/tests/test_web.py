"""The web service on its own: sanitizing, cross-site protection, the session cookie and
error mapping, against a scripted API (httpx.MockTransport) in place of the real one.
The browser tests (tests/browser) run it against the real stack."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from roadmap_client.errors import ValidationFailed
from roadmap_web import markdown
from roadmap_web.app import create_app, field_errors
from roadmap_web.settings import WebSettings

HOSTILE = """# Title

<script>alert(1)</script>

<img src=x onerror="alert(2)">

[click](javascript:alert(3))

<a href="#" onclick="alert(4)">raw</a>

![img](javascript:alert(5))

[ok](https://example.com/page)
"""


def test_markdown_keeps_formatting_and_drops_everything_active() -> None:
    html = markdown.render(HOSTILE + "\n**bold** and `code`\n\n```python\nx = 1\n```\n")
    assert "<h1>Title</h1>" in html
    assert "<strong>bold</strong>" in html
    assert '<code class="language-python">' in html
    assert 'href="https://example.com/page"' in html
    tags = Tags()
    tags.feed(html)
    assert {"script", "iframe"}.isdisjoint(name for name, _ in tags.found)
    for name, attrs in tags.found:
        assert not [a for a in attrs if a.startswith("on")], (name, attrs)
        for value in (attrs.get("href"), attrs.get("src")):
            assert value is None or value.startswith(("https:", "http:", "mailto:", "#")), value
    assert "&lt;script&gt;" in html  # raw HTML is shown as text


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


Handler = Callable[[httpx.Request], httpx.Response]


def api_routes(routes: dict[tuple[str, str], Handler]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        for (method, pattern), handler in routes.items():
            if request.method == method and re.fullmatch(pattern, request.url.path):
                return handler(request)
        return httpx.Response(404, json={"title": "Not Found", "status": 404})

    return httpx.MockTransport(handle)


@pytest.fixture
async def web() -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def make(routes: dict[tuple[str, str], Handler]) -> httpx.AsyncClient:
        settings = WebSettings(api_url="http://api.test", web_secret_key="k" * 40)
        app = create_app(settings, transport=api_routes(routes))
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://web.test"
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', html)
    assert found is not None, html
    return found.group(1)


def token_answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"access_token": "tok-123", "expires_in": 900})


async def test_sign_in_sets_an_httponly_samesite_session_cookie(web: Any) -> None:
    client = web({("POST", "/api/v1/auth/token"): token_answer})
    page = await client.get("/sign-in")
    assert page.status_code == 200
    assert "content-security-policy" in page.headers
    answer = await client.post(
        "/sign-in",
        data={"csrf_token": csrf_of(page.text), "email": "a@example.com", "password": "pw"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/roadmaps"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("rw_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Max-Age=900" in cookie


async def test_a_form_without_the_sites_token_is_refused_and_never_reaches_the_api(
    web: Any,
) -> None:
    calls: list[httpx.Request] = []

    def token(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return token_answer(request)

    client = web({("POST", "/api/v1/auth/token"): token})
    await client.get("/sign-in")  # the browser has its cookie, but the form has no token
    for data in ({}, {"csrf_token": "0" * 64}):
        answer = await client.post("/sign-in", data={**data, "email": "a@b.c", "password": "p"})
        assert answer.status_code == 403
    # A token from another browser (another cookie) does not fit this one either.
    other = web({})
    foreign = csrf_of((await other.get("/sign-in")).text)
    answer = await client.post("/sign-in", data={"csrf_token": foreign, "email": "a@b.c"})
    assert answer.status_code == 403
    assert calls == []


async def test_sign_in_never_redirects_to_another_site(web: Any) -> None:
    client = web({("POST", "/api/v1/auth/token"): token_answer})
    page = await client.get("/sign-in")
    answer = await client.post(
        "/sign-in",
        data={"csrf_token": csrf_of(page.text), "email": "a@b.c", "password": "p",
              "next": "//evil.test/x"},
    )  # fmt: skip
    assert answer.headers["location"] == "/roadmaps"


async def test_signed_out_pages_redirect_to_sign_in(web: Any) -> None:
    client = web({})
    answer = await client.get("/roadmaps/new")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in?next=/roadmaps/new"


async def test_missing_and_malformed_roadmaps_are_the_same_not_found_page(web: Any) -> None:
    client = web({})
    client.cookies.set("rw_session", "tok")
    pages = [
        await client.get(f"/roadmaps/{uuid.uuid4()}"),
        await client.get("/roadmaps/not-a-uuid"),
        await client.get("/no/such/page"),
    ]
    assert [p.status_code for p in pages] == [404, 404, 404]
    mains = {re.search(r"<main.*</main>", p.text, re.S).group(0) for p in pages}  # type: ignore[union-attr]
    assert len(mains) == 1


async def test_an_expired_session_goes_back_to_sign_in_and_drops_the_cookie(web: Any) -> None:
    def expired(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"title": "Unauthorized", "status": 401})

    client = web({("GET", "/api/v1/roadmaps"): expired})
    client.cookies.set("rw_session", "old")
    answer = await client.get("/roadmaps")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/sign-in")
    assert any(c.startswith('rw_session=""') for c in answer.headers.get_list("set-cookie"))


async def test_the_apis_validation_errors_are_shown_next_to_their_fields(web: Any) -> None:
    sent: list[dict[str, Any]] = []

    def create(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        errors = [
            {"loc": ["body", "goal"], "msg": "String should have at least 3 characters",
             "type": "string_too_short"},
            {"loc": ["body", "weeks"], "msg": "Input should be greater than or equal to 1",
             "type": "greater_than_equal"},
        ]  # fmt: skip
        return httpx.Response(422, json={"title": "Unprocessable", "status": 422, "errors": errors})

    client = web({("POST", "/api/v1/roadmaps"): create})
    client.cookies.set("rw_session", "tok")
    form = await client.get("/roadmaps/new")
    answer = await client.post(
        "/roadmaps/new",
        data={"csrf_token": csrf_of(form.text), "goal": "ab", "weekly_hours": "3",
              "level": "beginner", "deadline": "2000-01-01", "language": "en", "review": "on"},
    )  # fmt: skip
    assert answer.status_code == 422
    assert sent[0]["goal"] == "ab"
    assert sent[0]["review"] is True
    assert sent[0]["weeks"] < 1  # a past deadline: the API says what is wrong with it
    assert 'id="goal-error">String should have at least 3 characters' in answer.text
    assert 'id="deadline-error">Input should be greater than or equal to 1' in answer.text
    assert 'aria-describedby="deadline-hint deadline-error" aria-invalid="true"' in answer.text


def test_a_body_wide_error_goes_to_the_field_its_message_names() -> None:
    error = ValidationFailed(
        422,
        {
            "errors": [
                {"loc": ["body"], "msg": "Value error, password must be at least 12 characters"}
            ]
        },
        "POST",
        "/x",
    )
    assert field_errors(error, ("email", "password"), "email") == {
        "password": ["password must be at least 12 characters"]
    }


def test_production_needs_a_strong_secret_and_secure_cookies() -> None:
    with pytest.raises(ValueError, match="WEB_SECRET_KEY"):
        WebSettings(app_env="production", cookie_secure=True)
    with pytest.raises(ValueError, match="COOKIE_SECURE"):
        WebSettings(app_env="production", web_secret_key="s" * 40)
    with pytest.raises(ValueError, match="at least"):
        WebSettings(web_secret_key="short")


async def test_the_event_stream_is_relayed_and_resumes_from_the_browsers_last_id(
    web: Any,
) -> None:
    job = uuid.uuid4()
    seen: list[str | None] = []

    def events(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("last-event-id"))
        if request.headers.get("last-event-id") == "7-0":
            return httpx.Response(204)  # the stream already ended
        body = (
            'id: 5-0\nevent: snapshot\ndata: {"status": "generating"}\n\n'
            'id: 6-0\nevent: step\ndata: {"step": "content_generation"}\n\n'
        )
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    client = web({("GET", rf"/api/v1/roadmaps/{job}/events"): events})
    client.cookies.set("rw_session", "tok")
    resumed = await client.get(f"/roadmaps/{job}/events", headers={"Last-Event-ID": "4-0"})
    assert resumed.status_code == 200
    assert resumed.headers["content-type"].startswith("text/event-stream")
    assert "id: 5-0\nevent: snapshot\n" in resumed.text
    assert "id: 6-0\nevent: step\n" in resumed.text
    ended = await client.get(f"/roadmaps/{job}/events", headers={"Last-Event-ID": "7-0"})
    assert ended.status_code == 204  # EventSource stops reconnecting
    assert seen == ["4-0", "7-0"]


async def test_resources_show_their_link_check(web: Any) -> None:
    job, concept = uuid.uuid4(), uuid.uuid4()
    now = "2026-12-01T12:00:00+00:00"
    checked = {
        "status": "ok",
        "checked_at": now,
        "http_status": 200,
        "final_url": "https://a.test/",
    }
    resources = [
        {"title": "Checked", "url": "https://a.test/", "type": "article", "link": checked},
        {"title": "Broken", "url": "https://b.test/", "type": "video",
         "link": {**checked, "status": "dead", "http_status": 404}},
        {"title": "Unchecked", "url": "https://c.test/", "type": "book"},
    ]  # fmt: skip
    item = {"status": "succeeded", "version": 1, "versions": [1], "error": None}
    body = {
        "id": str(concept), "roadmap_id": str(job), "key": "k", "title": "A concept",
        "summary": "s", "difficulty": 1, "estimated_hours": 1.0, "prerequisites": [],
        "progress": "not_started", "completed": False, "quiz_attempts": 0,
        "best_quiz_score": None,
        "content": {"resources": {**item, "kind": "resources", "result": {
            "version": 1, "model": "m", "instructions": None, "created_at": now,
            "body": {"resources": resources}}}},
    }  # fmt: skip

    def get(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=body)

    def no_chat(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [], "has_more": False})

    client = web(
        {
            ("GET", rf"/api/v1/roadmaps/{job}/concepts/{concept}"): get,
            ("GET", rf"/api/v1/roadmaps/{job}/chat/messages"): no_chat,
        }
    )
    client.cookies.set("rw_session", "tok")
    page = await client.get(f"/roadmaps/{job}/concepts/{concept}")
    assert page.status_code == 200
    assert "link checked 2026-12-01 12:00 UTC" in page.text
    assert "link broken when checked 2026-12-01 12:00 UTC" in page.text
    assert page.text.count("link checked") == 1


async def test_asking_the_mentor_posts_the_question_and_follows_its_answer(web: Any) -> None:
    job, concept, answer = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    asked: list[dict[str, Any]] = []
    now = "2026-12-01T12:00:00+00:00"

    def post(request: httpx.Request) -> httpx.Response:
        asked.append(json.loads(request.content))
        message = {
            "id": str(uuid.uuid4()), "role": "user", "status": "done", "content": "Why?",
            "concept_id": str(concept), "reply_to": None, "error": None, "prompt_tokens": 0,
            "completion_tokens": 0, "cost_usd": 0.0, "created_at": now, "completed_at": None,
        }  # fmt: skip
        links = {"messages": "/m", "events": "/e"}
        body = {"message": message, "answer_id": str(answer), "last_event_id": "12-0",
                "links": links}  # fmt: skip
        return httpx.Response(202, json=body)

    client = web({("POST", rf"/api/v1/roadmaps/{job}/chat/messages"): post})
    client.cookies.set("rw_session", "tok")
    token = csrf_of((await client.get("/sign-in")).text)
    refused = await client.post(f"/roadmaps/{job}/concepts/{concept}/chat", data={"content": "x"})
    assert refused.status_code == 403
    sent = await client.post(
        f"/roadmaps/{job}/concepts/{concept}/chat", data={"csrf_token": token, "content": "Why?"}
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == (
        f"/roadmaps/{job}/concepts/{concept}?answer={answer}&after=12-0#mentor"
    )
    assert asked == [{"content": "Why?", "concept_id": str(concept)}]


async def test_regenerate_sends_the_chosen_kinds_and_instructions(web: Any) -> None:
    job, concept = uuid.uuid4(), uuid.uuid4()
    sent: list[dict[str, Any]] = []

    def regenerate(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        links = {"self": "/x", "events": "/x/events", "logs": "/x/logs"}
        body = {"id": str(job), "concept_id": str(concept), "kinds": ["quiz"],
                "status": "generating", "links": links}  # fmt: skip
        return httpx.Response(202, json=body)

    path = rf"/api/v1/roadmaps/{job}/concepts/{concept}/regenerate"
    client = web({("POST", path): regenerate})
    client.cookies.set("rw_session", "tok")
    token = csrf_of((await client.get("/sign-in")).text)
    answer = await client.post(
        f"/roadmaps/{job}/concepts/{concept}/regenerate",
        data={"csrf_token": token, "kinds": ["quiz", "bogus"], "instructions": " harder "},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/roadmaps/{job}/concepts/{concept}?regenerating=1"
    assert sent == [{"kinds": ["quiz"], "instructions": "harder"}]
