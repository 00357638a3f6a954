"""A loopback SMS gateway for dispatch tests and the benchmark: it records the reference of every
message it receives (in order, duplicates kept) and answers like a simple JSON gateway.

It speaks the request the Generic HTTP provider is configured with in `generic_config()`:
`POST /send {"ref", "to", "text"}` → `{"id": "sink-<ref>"}`, or batched
`POST /send {"messages": [...]}` → `{"results": [{"id": …}, …]}`. `mode` switches it to answer
503 or to hang (for outage tests). A bare ASGI app, so the fake costs little per request.

Run it as its own process (the benchmark does): `python -m tests.fakes.sink --port N`; then
`GET /count` answers how many refs it received and `GET /refs` every ref, one per line."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

SINGLE_ITEM = '{"ref": "$$Ref", "to": "$$To", "text": "$$Body"}'


def generic_config(base_url: str, batch_size: int = 1) -> dict[str, str]:
    """Generic HTTP provider settings that talk to a sink at `base_url`."""
    config = {"method": "POST", "url": f"{base_url}/send", "body_type": "json"}
    if batch_size > 1:
        config.update(raw_body='{"messages": []}', batch_key="messages", batch_size=str(batch_size),
                      batch_item=SINGLE_ITEM, message_id_path="results[*].id")
    else:
        config.update(raw_body=SINGLE_ITEM, message_id_path="id")
    return config


class SmsSink:
    def __init__(self) -> None:
        self.received: list[str] = []
        self.requests = 0
        self.mode = "ok"  # ok | 503 | hang

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            event = await receive()
            chunks.append(event.get("body", b""))
            if not event.get("more_body"):
                break
        path = scope["path"]
        if scope["method"] == "GET":
            if path == "/count":
                await _answer(send, 200, str(len(self.received)).encode())
            else:
                await _answer(send, 200, "\n".join(self.received).encode())
            return
        self.requests += 1
        if self.mode == "503":
            await _answer(send, 503, b'{"error": "service unavailable"}')
            return
        if self.mode == "hang":
            await asyncio.sleep(3600)
        document = json.loads(b"".join(chunks))
        if "messages" in document:
            refs = [item["ref"] for item in document["messages"]]
            self.received.extend(refs)
            body = json.dumps({"results": [{"id": f"sink-{ref}"} for ref in refs]})
        else:
            self.received.append(document["ref"])
            body = '{"id": "sink-%s"}' % document["ref"]
        await _answer(send, 200, body.encode())


async def _answer(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(SmsSink(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
                lifespan="off", backlog=4096)


if __name__ == "__main__":
    main()
