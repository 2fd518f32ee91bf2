"""Running an ASGI app (FastAPI, Starlette) under uvicorn: in the foreground, or in a thread.

Contract:
- `serve_app(app, host, port)`: blocks until interrupted (`wideseek serve`,
  `wideseek retrieval serve`).
- `with BackgroundServer(app) as server: ... server.url ...`: uvicorn in a daemon thread of this
  process, on a port bound before the thread starts (a free one by default), so `url` is known
  from the start and no other process can take the port in between; stopped on exit. For
  tests, notebooks and benchmarks.

Both bind 127.0.0.1 unless told otherwise. This module knows uvicorn, not what the app serves.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

LOOPBACK = "127.0.0.1"
_START_TIMEOUT_S = 30.0


def serve_app(app: Any, host: str = LOOPBACK, port: int = 8000) -> None:
    """Serve `app` in the foreground until interrupted."""
    uvicorn.run(app, host=host, port=port, log_level="warning")


class BackgroundServer:
    """`app` served from a daemon thread (see module docstring)."""

    def __init__(self, app: Any, host: str = LOOPBACK, port: int = 0, **options: Any) -> None:
        """`options` are further `uvicorn.Config` settings (e.g. `http="h11"`)."""
        config = uvicorn.Config(app, **{"log_level": "warning", "lifespan": "off", **options})
        self.server = uvicorn.Server(config)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        # Accepted connections inherit it: without it Nagle + delayed ACK can hold a response
        # body back ~40 ms on a kept-alive connection (uvicorn writes headers and body apart).
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket.bind((host, port))
        bound_host, self.port = self._socket.getsockname()[:2]
        self.url = f"http://{bound_host}:{self.port}"
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.server.should_exit = True
                self._socket.close()
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
