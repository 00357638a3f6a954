"""Short links: GET /{code} redirects to the long URL and records the click (services/links.py).

Answers are for people's browsers, not API clients: a 302 with the long URL, or a small HTML page
(404 for a code that is not known or not a code, 410 for a link past its retention, 503 when the
database does not answer; the engine log says why). A known link-preview bot's request or a HEAD
is redirected all the same but counted as a preview."""

from __future__ import annotations

import html
import logging

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from smsconsole.listener import ListenerContext
from smsconsole.services.links import is_code, is_preview, open_link

log = logging.getLogger("smsconsole.listener")

_NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow", "Referrer-Policy": "no-referrer"}


def _page(status: int, title: str, text: str) -> HTMLResponse:
    body = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>\n")
    return HTMLResponse(body, status_code=status, headers=_NO_STORE)


def not_found() -> HTMLResponse:
    return _page(404, "Link not found", "This link does not exist. Check that it was copied completely.")


def routes(context: ListenerContext) -> list[Route]:
    async def redirect(request: Request) -> Response:
        code = str(request.path_params.get("code", ""))
        if not is_code(code):
            return not_found()
        preview = is_preview(request.headers.get("user-agent"), request.method)
        try:
            async with context.factory() as session:
                opened = await open_link(session, code, preview=preview)
                await session.commit()
        except Exception as exc:  # the database did not answer: no page of ours may become a 500
            # the type only: the error's text may hold SQL with the long URL and its query string
            log.warning("short link: could not open or count a visit: %s", type(exc).__name__)
            return _page(503, "Try again shortly", "This link cannot be opened right now. Please try again.")
        if opened.status == "missing":
            return not_found()
        if opened.status == "expired":
            return _page(410, "Link expired", "This link has expired and no longer leads anywhere.")
        if opened.queued and context.poke is not None:  # a live campaign took the click as its trigger
            context.poke()
        request.state.items = 1 if opened.click else 0
        return RedirectResponse(opened.url or "/", status_code=302, headers=_NO_STORE)

    async def nowhere(request: Request) -> Response:
        return not_found()

    # a short link's path that is no code at all (a slash in it, e.g. a link cut or mangled in
    # transit) gets the same page as an unknown code
    return [Route("/{code}", redirect, methods=["GET", "HEAD"]), Route("/{path:path}", nowhere, methods=["GET", "HEAD"])]
