"""The controller's address as the runner checks it and explains it: the library's words, the same as the client's."""

from __future__ import annotations

import grpc
import pytest
from dtask_client.errors import BadAddress, DtaskError, from_rpc_error
from dtask_client.errors import check_address as client_check
from dtask_common.address import AddressError, check_address, unavailable_message


class Unavailable(grpc.RpcError):
    def __init__(self, details: str):
        self._details = details

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(
    "details",
    [
        "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Connection refused",
        "Ssl handshake failed: SSL_ERROR_SSL: error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED",
        "SSL_ERROR_SSL: WRONG_VERSION_NUMBER",
        "DNS resolution failed for nowhere:1",
        "Socket closed",
        "",
    ],
)
def test_the_runner_says_what_the_client_says_of_an_unavailable_controller(details: str) -> None:
    said = unavailable_message("h:1", details)
    assert said == from_rpc_error(Unavailable(details), "h:1").message
    assert "h:1" in said


@pytest.mark.parametrize("bad", ["h", "http://h:1", "::1:5", "[::1]", ":5", "h:0", "h:x"])
def test_a_bad_address_is_an_address_error_and_the_client_s_bad_address(bad: str) -> None:
    with pytest.raises(AddressError) as lib:
        check_address(bad)
    with pytest.raises(BadAddress) as client:
        client_check(bad)
    assert isinstance(client.value, DtaskError) and isinstance(client.value, ValueError)
    assert client.value.message == str(lib.value) and client.value.code == "BAD_ADDRESS"


def test_a_good_address_comes_back_stripped() -> None:
    assert check_address(" localhost:50051 ") == "localhost:50051" == client_check(" localhost:50051 ")
    assert check_address("[::1]:5") == "[::1]:5"
