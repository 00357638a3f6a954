"""A loopback fake of Netcore's documented Single Message API: `POST /BulkSms/SingleMsgApi`
(form: feedid, username, password, To up to 50 comma-separated numbers, Text, templateid,
entityid, async, short; optional api-key header). Netcore does not publish its answers; the fake
answers in the legacy XML this adapter reads (`<RESULT REQID='…'>` with one `<MID>` per number, or
`<RESULT><REQUEST-ERROR><ERROR><CODE>…</CODE><DESC>…</DESC>…`)."""

from __future__ import annotations

import itertools

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.generic import GatewayStyleFake, Reply

FEED_ID = "345695"
USERNAME = "9876543210"
PASSWORD = "s3cret-Netcore-pw"
REQUIRED = ("feedid", "username", "password", "To", "Text", "templateid", "entityid", "async")


def netcore_error(code: str, description: str, status: int = 200) -> Reply:
    return Reply(status, f"<RESULT><REQUEST-ERROR><ERROR><CODE>{code}</CODE><DESC>{description}</DESC></ERROR>"
                         "</REQUEST-ERROR></RESULT>")


class FakeNetcore(GatewayStyleFake):
    def __init__(self) -> None:
        super().__init__()
        self.request_ids: list[str] = []
        self._ids = itertools.count(1_000_001)
        self.app = Starlette(routes=[Route("/BulkSms/SingleMsgApi", self._send, methods=["GET", "POST"])])

    async def _send(self, request: Request) -> Response:
        recorded, scripted = await self._record(request)
        if scripted is not None:
            return scripted
        form = dict(recorded.form if request.method == "POST" else recorded.query_pairs)
        if (form.get("feedid"), form.get("username"), form.get("password")) != (FEED_ID, USERNAME, PASSWORD):
            return netcore_error("102", "Invalid username/password").response()
        if missing := [name for name in REQUIRED if not form.get(name)]:
            return netcore_error("101", f"Missing parameter {missing[0]}").response()
        numbers = form["To"].split(",")
        if len(numbers) > 50:
            return netcore_error("105", "More than 50 mobile numbers").response()
        request_id = str(next(self._ids))
        self.request_ids.append(request_id)
        mids = "".join(f"<MID SUBMITDATE='2026-03-01 10:00:00' ID='{i}' TAG='null' TID='{request_id}{i:03d}'></MID>"
                       for i, _ in enumerate(numbers, 1))
        return Response(f"<RESULT REQID='{request_id}'>{mids}</RESULT>", media_type="text/xml")
