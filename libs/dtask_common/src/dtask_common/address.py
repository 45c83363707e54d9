"""A controller address: HOST:PORT checked before dialling, with a message that says what is wrong."""

from __future__ import annotations


class BadAddress(ValueError):
    """The controller address is not HOST:PORT (raised before dialling); .message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def check_address(address: str) -> str:
    """address if it is HOST:PORT (IPv6 as [::1]:PORT), else BadAddress saying what is wrong."""
    text = address.strip()
    example = "use HOST:PORT, e.g. localhost:50051"
    if "://" in text:
        raise BadAddress(f"controller address {address!r}: give HOST:PORT without a scheme, e.g. localhost:50051")
    if text.startswith("["):
        host, _, rest = text.partition("]")
        host += "]"
        port = rest[1:] if rest.startswith(":") else None
    elif text.count(":") > 1:
        raise BadAddress(f"controller address {address!r}: write an IPv6 address in brackets, e.g. [::1]:50051")
    else:
        host, sep, port_text = text.partition(":")
        port = port_text if sep else None
    if port is None:
        raise BadAddress(
            f"controller address {address!r} has no port; {example} (the controller logs `listening on HOST:PORT`)"
        )
    if host in ("", "[]"):
        raise BadAddress(f"controller address {address!r} has no host; {example}")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise BadAddress(f"controller address {address!r}: port {port!r} is not a number from 1 to 65535; {example}")
    return text
