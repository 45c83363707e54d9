"""A service's metrics_address: off when empty, [host:]port, 127.0.0.1 when no host is given."""

from __future__ import annotations

DEFAULT_HOST = "127.0.0.1"  # plain HTTP, no TLS, no roles: only this machine unless a host is given


class MetricsAddressError(ValueError):
    """A metrics_address that is not [host:]port; the message says what is expected."""


def parse_metrics_address(text: str) -> tuple[str, int] | None:
    """(host, port) from "port", ":port", "host:port" or "[v6]:port" (no host: 127.0.0.1); None when empty (off)."""
    text = text.strip()
    if not text:
        return None
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535 or (":" in host and not text.startswith("[")):
        raise MetricsAddressError(
            f"metrics address {text!r} is not [host:]port (e.g. 9464, 127.0.0.1:9464, 0.0.0.0:9464 or [::1]:9464; "
            "port 0 takes a free one)"
        )
    return host or DEFAULT_HOST, port
