"""A service's /metrics endpoint: its per-process registry served over plain HTTP, read on the event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from dtask_common.metrics_address import parse_metrics_address

T = TypeVar("T")

SCRAPE_READ_TIMEOUT_S = 5.0


@dataclass
class MetricsServer:
    """The HTTP server of one registry, in a daemon thread; `address` is the host:port it bound."""

    httpd: WSGIServer
    thread: threading.Thread

    @property
    def address(self) -> str:
        host, port = self.httpd.server_address[:2]
        host = str(host)
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}/metrics"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """Serve registry at http://host:port/metrics (OSError when the address cannot be bound)."""
    httpd, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(httpd, thread)


def on_loop(loop: asyncio.AbstractEventLoop, read: Callable[[], T]) -> T:
    """Call read on the service's event loop from the scrape's thread and return what it returned, so a
    scrape reads the live state between two changes, never in the middle of one."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def call() -> None:
        try:
            future.set_result(read())
        except BaseException as exc:  # handed to the scrape, which answers 500
            future.set_exception(exc)

    loop.call_soon_threadsafe(call)
    return future.result(SCRAPE_READ_TIMEOUT_S)


def start_metrics(registry: CollectorRegistry, address: str, key: str) -> MetricsServer | None:
    """Serve registry at address (a metrics_address; empty: None, nothing served); SystemExit with one line when
    it cannot be bound. key names the setting (e.g. "controller.metrics_address") in that line."""
    where = parse_metrics_address(address)
    if where is None:
        return None
    try:
        return serve_metrics(registry, *where)
    except OSError as exc:
        raise SystemExit(
            f"error: cannot serve metrics on {address} ({key}, --metrics-address): {exc.strerror or exc}; "
            "choose a free port (0 takes any) or leave it empty to serve none"
        ) from None
