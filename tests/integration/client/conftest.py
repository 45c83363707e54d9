"""A controller and one runner shared by the client tests of a module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.client.cluster import Cluster, cluster


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, certs_template: Path) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("cluster"), certs_template) as c:
        yield c
