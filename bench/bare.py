"""The HTTP ceiling: a bare Starlette app on uvicorn that reads the body, parses it with orjson, answers 202.

Run as `python -m bench.bare` with `BARE_PORT`; served the way the services are (shared/service.py:
uvicorn defaults, no access log), so the only difference from ingest is ingest's own work.
"""

from __future__ import annotations

import os

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def submit(request: Request) -> Response:
    body = orjson.loads(await request.body())
    if isinstance(body, list):
        answer = {"items": [{"id": item.get("id"), "status": "received"} for item in body]}
        return Response(orjson.dumps(answer), status_code=207, media_type="application/json")
    return Response(orjson.dumps({"id": body.get("id"), "status": "received"}), status_code=202,
                    media_type="application/json")


async def ready(_: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(routes=[Route("/v1/submissions", submit, methods=["POST"]),
                        Route("/v1/submissions/batch", submit, methods=["POST"]),
                        Route("/health/ready", ready), Route("/health/live", ready)])


def main() -> None:
    config = uvicorn.Config(app, host="127.0.0.1", port=int(os.environ.get("BARE_PORT", "8099")), log_config=None,
                            access_log=False, lifespan="off")
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
