"""The controller's address: whether one is HOST:PORT, and why one cannot be reached, in words that say what to do."""

from __future__ import annotations

from dataclasses import dataclass

START_HINT = "start one with `make run-controller` or `dtask controller`, or pass --controller HOST:PORT"

_TLS_WORDS = ("ssl", "handshake", "certificate", "tls", "alert")
#: OpenSSL reasons meaning the peer answered, but not with TLS (an HTTP server, some other service).
_NOT_TLS_WORDS = ("wrong_version_number", "packet_length_too_long", "http_request", "unknown_protocol")
_RESOLVE_WORDS = ("resolv", "lookup", "dns", "domain name not found")


@dataclass(frozen=True)
class PortRanges:
    """The port ranges the controller and the runners serve, as the configuration gives them (for hints)."""

    controller: tuple[int, int] = (50051, 50059)
    runner: tuple[int, int] = (50100, 50199)

    @property
    def controller_text(self) -> str:
        return f"{self.controller[0]}-{self.controller[1]}"

    @property
    def runner_text(self) -> str:
        return f"{self.runner[0]}-{self.runner[1]}"


class AddressError(ValueError):
    """The controller address is not HOST:PORT; the message says what is wrong."""


def check_address(address: str) -> str:
    """address if it is HOST:PORT (IPv6 as [::1]:PORT), else AddressError saying what is wrong."""
    text = address.strip()
    example = "use HOST:PORT, e.g. localhost:50051"
    if "://" in text:
        raise AddressError(f"controller address {address!r}: give HOST:PORT without a scheme, e.g. localhost:50051")
    if text.startswith("["):
        host, _, rest = text.partition("]")
        host += "]"
        port = rest[1:] if rest.startswith(":") else None
    elif text.count(":") > 1:
        raise AddressError(f"controller address {address!r}: write an IPv6 address in brackets, e.g. [::1]:50051")
    else:
        host, sep, port_text = text.partition(":")
        port = port_text if sep else None
    if port is None:
        raise AddressError(
            f"controller address {address!r} has no port; {example} (the controller logs `listening on HOST:PORT`)"
        )
    if host in ("", "[]"):
        raise AddressError(f"controller address {address!r} has no host; {example}")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise AddressError(f"controller address {address!r}: port {port!r} is not a number from 1 to 65535; {example}")
    return text


def unavailable_message(address: str, details: str, ranges: PortRanges | None = None) -> str:
    """Why the controller at address is UNAVAILABLE, from the status details: TLS from another CA, not TLS at
    all, an unknown host, a closed connection, nothing listening (ranges: the configured ports, for hints)."""
    low = details.lower()
    ranges = ranges or PortRanges()
    if any(w in low for w in _NOT_TLS_WORDS):
        return (
            f"something at {address} answers, but not with TLS: it is not a dtask controller; check the "
            f"port (the controller logs `listening on HOST:PORT`; the configuration gives {ranges.controller_text})"
        )
    if "certificate_verify_failed" in low or "unable to get local issuer" in low:
        return (
            f"TLS handshake with the controller at {address} failed: its certificate was not issued by your "
            "CA (ca.crt in --certs); copy ca.crt and a certificate issued from it from the controller's "
            "machine, or check that this is the right controller"
        )
    if any(w in low for w in _TLS_WORDS):
        return (
            f"TLS handshake with the controller at {address} failed: check --certs/--cert/--key and "
            "that the certificate and the controller's come from the same CA, and that the controller's "
            "certificate names this host (`dtask certs init --host ...`)"
        )
    if any(w in low for w in _RESOLVE_WORDS):
        host = address.rpartition(":")[0] or address
        return f"cannot resolve the controller's host {host!r} (in {address}): check the name, or use its IP address"
    if "socket closed" in low or "connection reset" in low:
        return (
            f"the controller at {address} closed the connection: it may refuse your certificate (expired, "
            "or from another CA: `dtask certs show FILE`), or it was stopping; "
            "its log says which"
        )
    if "connection refused" in low or "failed to connect" in low:
        return f"cannot reach the controller at {address}: {START_HINT}"
    return f"lost the controller at {address} ({details or 'unavailable'}); is it running? {START_HINT}"
