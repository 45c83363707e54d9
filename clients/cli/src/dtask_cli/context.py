"""The state every dtask command gets: the global options, their config, and the client they build."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dtask_client.options import OptionsContext

if TYPE_CHECKING:
    from dtask_client import Controller


@dataclass
class CliContext(OptionsContext):
    """What every subcommand needs: the loaded config, the client's TLS files, and the client."""

    def client(self) -> Controller:
        """A Controller client with this command line's address, certificates and config."""
        from dtask_client import Controller, DtaskError

        from dtask_cli.errors import cli_error

        try:
            return Controller(self.address, certs=self.certs, cert=self.cert, key=self.key, config=self.config())
        except DtaskError as exc:
            raise cli_error(exc) from None
