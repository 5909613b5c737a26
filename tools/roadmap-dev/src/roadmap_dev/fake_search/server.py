"""A fake web search (Brave Search and SearXNG wire formats) that also serves its result pages.

``GET /res/v1/web/search?q=&count=`` answers like Brave's web search (and wants an
``X-Subscription-Token``); ``GET /search?q=&format=json`` like SearXNG's JSON API.
Every query gets ten results, deterministic for the query, pointing at pages this
server serves under ``/pages/``, of shapes that exercise the link checker:

====  =========  ==============================================================
rank  shape      what the page does
====  =========  ==============================================================
1     doc        200 HTML with a ``<title>``
2     redirect   301 to a ``landing`` page (200 HTML): the final URL differs
3     missing    404
4     guide      200 HTML
5     broken     500
6     pdf        200 ``application/pdf`` (no title to read)
7     private    302 to ``http://10.0.0.1/…`` (a private address: refused)
8     video      200 HTML
9     metadata   302 to ``http://169.254.169.254/…`` (cloud metadata: refused)
10    course     200 HTML
====  =========  ==============================================================

``POST /_control/kill?path=/pages/…`` makes a page answer 404 from then on (a link
that died), ``POST /_control/reset`` revives them all. Latency: ``search_latency_ms``
per search, ``page_latency_ms`` per page request (each redirect hop is one).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Final

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

SHAPES: Final = (
    "doc",
    "redirect",
    "missing",
    "guide",
    "broken",
    "pdf",
    "private",
    "video",
    "metadata",
    "course",
)
TITLES: Final = {
    "doc": "Official documentation",
    "redirect": "Getting started",
    "missing": "Old tutorial",
    "guide": "A practical guide",
    "broken": "Interactive notes",
    "pdf": "Lecture notes (PDF)",
    "private": "Internal wiki",
    "video": "Video walkthrough",
    "metadata": "Cloud reference",
    "course": "Free course",
}
PRIVATE_TARGET: Final = "http://10.0.0.1/internal"
METADATA_TARGET: Final = "http://169.254.169.254/latest/meta-data/"


class FakeSearchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    search_latency_ms: float = Field(default=0.0, ge=0)
    page_latency_ms: float = Field(default=0.0, ge=0)


@dataclass(slots=True)
class SearchState:
    config: FakeSearchConfig
    dead: set[str] = field(default_factory=set)
    searches: list[dict[str, Any]] = field(default_factory=list)
    page_hits: int = 0
    # Searches being answered now (each entry of ``searches`` notes this at its arrival).
    in_flight: int = 0


def slug(text: str) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())[:6]
    digest = hashlib.sha256(text.encode()).hexdigest()[:6]
    return "-".join([*words, digest])


def _base(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}"


def results_for(base: str, query: str) -> list[dict[str, str]]:
    topic = slug(query)
    name = " ".join(query.split()[:6]) or "Topic"
    return [
        {
            "url": f"{base}/pages/{topic}/{rank}-{shape}",
            "title": f"{name} — {TITLES[shape]}",
            "snippet": f"{TITLES[shape]} about {name}: explanations, examples and exercises.",
        }
        for rank, shape in enumerate(SHAPES, start=1)
    ]


def create_app(config: FakeSearchConfig | None = None) -> FastAPI:
    state = SearchState(config or FakeSearchConfig())
    app = FastAPI(title="fake-search", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.search = state

    async def searched(request: Request, query: str, provider: str) -> list[dict[str, str]]:
        state.in_flight += 1
        state.searches.append({"query": query, "provider": provider, "in_flight": state.in_flight})
        try:
            await asyncio.sleep(state.config.search_latency_ms / 1000.0)
        finally:
            state.in_flight -= 1
        return results_for(_base(request), query)

    @app.get("/res/v1/web/search")
    async def brave(request: Request, q: str = "", count: int = 20) -> Response:
        if not request.headers.get("x-subscription-token"):
            return JSONResponse({"type": "ErrorResponse", "error": {"status": 401}}, 401)
        items = (await searched(request, q, "brave"))[: max(1, min(count, 20))]
        return JSONResponse(
            {
                "type": "search",
                "query": {"original": q},
                "web": {
                    "type": "search",
                    "results": [
                        {"title": i["title"], "url": i["url"], "description": i["snippet"]}
                        for i in items
                    ],
                },
            }
        )

    @app.get("/search")
    async def searxng(request: Request, q: str = "", format: str = "html") -> Response:
        if format != "json":
            return Response(status_code=403)  # SearXNG's answer when the format is disabled
        items = await searched(request, q, "searxng")
        return JSONResponse(
            {
                "query": q,
                "number_of_results": len(items),
                "results": [
                    {
                        "url": i["url"],
                        "title": i["title"],
                        "content": i["snippet"],
                        "engine": "fake",
                    }
                    for i in items
                ],
            }
        )

    @app.get("/pages/{topic}/{name}")
    async def page(request: Request, topic: str, name: str) -> Response:
        state.page_hits += 1
        await asyncio.sleep(state.config.page_latency_ms / 1000.0)
        path = f"/pages/{topic}/{name}"
        shape = name.split("-", 1)[-1]
        if path in state.dead or shape in ("missing",):
            return HTMLResponse("<title>Not found</title>", 404)
        if shape == "broken":
            return HTMLResponse("<title>Error</title>", 500)
        if shape == "redirect":
            return RedirectResponse(f"{_base(request)}/pages/{topic}/{name}-landing", 301)
        if shape == "private":
            return RedirectResponse(PRIVATE_TARGET, 302)
        if shape == "metadata":
            return RedirectResponse(METADATA_TARGET, 302)
        if shape == "pdf":
            return Response(b"%PDF-1.4\n% fake\n", media_type="application/pdf")
        label = TITLES.get(shape.removesuffix("-landing").split("-")[0], "Page")
        title = f"{topic.rsplit('-', 1)[0].replace('-', ' ').title()} | {label}"
        return HTMLResponse(
            f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><h1>{title}</h1><p>Served by the fake search server.</p></body></html>"
        )

    @app.post("/_control/kill")
    async def kill(path: str) -> dict[str, Any]:
        state.dead.add(path)
        return {"dead": sorted(state.dead)}

    @app.post("/_control/reset")
    async def reset() -> dict[str, Any]:
        state.dead.clear()
        state.searches.clear()
        state.page_hits = 0
        return {"dead": []}

    @app.get("/_control/state")
    async def get_state() -> dict[str, Any]:
        return {
            "dead": sorted(state.dead),
            "searches": state.searches[-1000:],
            "page_hits": state.page_hits,
            "config": state.config.model_dump(),
        }

    @app.put("/_control/config")
    async def put_config(config: FakeSearchConfig) -> dict[str, Any]:
        state.config = config
        return config.model_dump()

    @app.get("/_control/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def serve(
    config: FakeSearchConfig | None = None, host: str = "127.0.0.1", port: int = 8766
) -> None:
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning", access_log=False)
