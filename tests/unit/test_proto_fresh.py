"""The committed generated code matches what protoc makes of protos/ now."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import REPO

GEN = REPO / "libs" / "dtask_common" / "src" / "dtask" / "v1"


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    protos = sorted((REPO / "protos" / "dtask" / "v1").glob("*.proto"))
    assert [p.name for p in protos] == ["common.proto", "controller.proto", "runner.proto"]
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{REPO / 'protos'}", f"--python_out={tmp_path}",
         f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}", *map(str, protos)],
        check=True, timeout=60,
    )
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{REPO / 'protos'}", "--include_source_info",
         f"--descriptor_set_out={tmp_path / 'dtask' / 'v1' / 'descriptors.binpb'}", *map(str, protos)],
        check=True, timeout=60,
    )
    made = sorted(p.name for p in (tmp_path / "dtask" / "v1").iterdir())
    assert made == sorted(p.name for p in GEN.iterdir() if p.suffix in (".py", ".pyi", ".binpb") and p.name != "__init__.py")
    for name in made:
        fresh = (tmp_path / "dtask" / "v1" / name).read_bytes()
        assert (GEN / name).read_bytes() == fresh, f"{name} is stale: run `make proto` and commit the result"


def test_generated_imports_need_no_rewriting() -> None:
    from dtask.v1 import controller_pb2, controller_pb2_grpc, runner_pb2_grpc

    assert controller_pb2.DESCRIPTOR.package == "dtask.v1"
    assert hasattr(controller_pb2_grpc, "ControllerStub") and hasattr(runner_pb2_grpc, "RunnerStub")


def test_only_servicers_clients_and_convert_import_pb2() -> None:
    allowed = ("dtask_common/convert/", "service", "servicer", "client", "session", "main.py", "api")
    offenders = []
    for root in ("libs/dtask_common/src/dtask_common", "services", "clients"):
        for path in (REPO / root).rglob("*.py"):
            text = path.read_text()
            if ("_pb2" in text and "import" in text and "from dtask.v1" in text
                    and not any(a in str(path.relative_to(REPO)) for a in allowed)):
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == [], f"pb2 types used outside conversion/servicers/clients: {offenders}"
