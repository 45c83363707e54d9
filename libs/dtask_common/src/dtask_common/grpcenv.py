"""The gRPC environment dtask's programs start with: gRPC's own logging and fork handlers off."""

from __future__ import annotations

import os


def prepare_grpc() -> None:
    """Set gRPC's defaults for dtask; call it before anything imports grpc (it reads them at import)."""
    # gRPC core logs bind failures and TLS handshakes on stderr; the CLI and the services report
    # what matters themselves, in one line (GRPC_VERBOSITY=ERROR or DEBUG shows gRPC's own lines again).
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    # The runner forks and execs its tasks; gRPC's fork handlers (meant for children that go on using
    # gRPC) abort a child forked as another user (runner.run_as), so they are off before gRPC starts.
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
