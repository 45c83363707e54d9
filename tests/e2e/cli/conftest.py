"""A real controller with two runners, and a helper that runs the `dtask` command against it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.client.cluster import Cluster, cluster
from tests.support import BIN

Dtask = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, certs_template: Path) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("cli-cluster"), certs_template, runners=("r1", "r2")) as c:
        yield c


def run_dtask(
    home: Path, address: str | None, *args: str, input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DTASK_HOME=str(home), PYTHONUNBUFFERED="1", PATH=f"{BIN}:{os.environ['PATH']}")
    env.pop("DTASK_CONFIG", None)
    env.pop("DTASK_CONTROLLER", None)
    if address:
        env["DTASK_CONTROLLER"] = address
    return subprocess.run(
        [str(BIN / "dtask"), *args], env=env, input=input, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def dtask(live: Cluster) -> Dtask:
    def run(*args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run_dtask(live.home, live.address, *args, input=input, timeout=timeout)

    return run
