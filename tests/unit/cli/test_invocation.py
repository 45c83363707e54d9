"""The global options without click (dtask_common.invocation), and their errors as the CLI shows them."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from dtask_cli.errors import cli_error
from dtask_client import BadAddress, DtaskError
from dtask_client.errors import check_address
from dtask_client.options import OptionsContext
from dtask_common import address
from dtask_common.exitcodes import FAILED, USAGE, CommandError
from dtask_common.invocation import Invocation


def _options(**given: object) -> dict[str, object]:
    return {
        "config_path": None,
        "controller": None,
        "certs": None,
        "cert": None,
        "key": None,
        "settings": (),
        "verbose": False,
        **given,
    }


def test_a_set_that_is_not_key_value_is_a_usage_error() -> None:
    with pytest.raises(CommandError) as caught:
        Invocation.from_options(_options(settings=("bad",))).config()
    assert caught.value.exit_code == USAGE and caught.value.message.startswith("--set 'bad': use KEY=VALUE")
    with pytest.raises(click.UsageError):
        OptionsContext.from_options(_options(settings=("bad",))).config()


def test_a_config_that_does_not_load_fails(tmp_path: Path) -> None:
    missing = str(tmp_path / "none.toml")
    with pytest.raises(CommandError) as caught:
        Invocation.from_options(_options(config_path=missing)).config()
    assert caught.value.exit_code == FAILED and "does not exist" in caught.value.message
    with pytest.raises(click.ClickException) as shown:
        OptionsContext.from_options(_options(config_path=missing)).config()
    assert not isinstance(shown.value, click.UsageError) and shown.value.exit_code == FAILED


def test_options_build_the_config_and_the_address(tmp_path: Path) -> None:
    inv = Invocation.from_options(
        _options(controller="ctl:1", certs=str(tmp_path), settings=("client.controller=x:2",))
    )
    assert inv.address == "ctl:1" and inv.config().certs_path == tmp_path
    assert inv.tls_files().cert == tmp_path / "operator.crt"


def test_a_command_error_keeps_its_exit_code() -> None:
    err = cli_error(CommandError("no such thing", 4))
    assert (err.format_message(), err.exit_code) == ("no such thing", 4)


def test_the_client_bad_address_is_a_dtask_error_and_the_library_one() -> None:
    with pytest.raises(address.AddressError) as caught:
        address.check_address("http://x:1")
    assert not isinstance(caught.value, DtaskError)
    with pytest.raises(BadAddress) as typed:
        check_address("http://x:1")
    assert isinstance(typed.value, DtaskError) and isinstance(typed.value, address.AddressError)
    assert isinstance(typed.value, ValueError) and typed.value.message == str(caught.value)
