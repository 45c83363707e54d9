"""The committed generated code matches what protoc makes of protos/ now, lives in one place, and only the
modules on the wire (conversion, servicers, sessions, entry points, the Python client) import it."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from tests.support import REPO

GEN = REPO / "libs" / "dtask_common" / "src" / "dtask" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
# Where hand-written code lives, and where generated code may be copied by mistake.
TREES = ("libs", "services", "clients", "tests", "bench", "examples")
# Every tree whose modules must not use the generated types, but for the modules named here.
WIRE_TREES = (
    "libs/dtask_common/src/dtask_common",
    "libs/dtask_client/src/dtask_client",
    "services/controller/src/dtask_controller",
    "services/runner/src/dtask_runner",
    "clients/cli/src/dtask_cli",
    "clients/tui/src/dtask_tui",
)
WIRE_MODULES = frozenset(
    {
        "libs/dtask_client/src/dtask_client/_calls.py",
        "libs/dtask_client/src/dtask_client/certificates.py",
        "libs/dtask_common/src/dtask_common/convert/certificates.py",
        "libs/dtask_common/src/dtask_common/joining.py",
        "services/controller/src/dtask_controller/certificates.py",
        "services/controller/src/dtask_controller/join_server.py",
        "services/controller/src/dtask_controller/join_service.py",
        "libs/dtask_client/src/dtask_client/errors.py",
        "libs/dtask_common/src/dtask_common/convert/events.py",
        "libs/dtask_common/src/dtask_common/convert/metrics.py",
        "libs/dtask_common/src/dtask_common/convert/executors.py",
        "libs/dtask_common/src/dtask_common/convert/params.py",
        "libs/dtask_common/src/dtask_common/convert/prune.py",
        "libs/dtask_common/src/dtask_common/convert/runner_messages.py",
        "libs/dtask_common/src/dtask_common/convert/scalars.py",
        "libs/dtask_common/src/dtask_common/convert/tasks.py",
        "services/controller/src/dtask_controller/main.py",
        "services/controller/src/dtask_controller/runner_session.py",
        "services/controller/src/dtask_controller/servicer.py",
        "services/controller/src/dtask_controller/task_errors.py",
        "services/controller/src/dtask_controller/watchpb.py",
        "services/runner/src/dtask_runner/controller_session.py",
        "services/runner/src/dtask_runner/main.py",
        "services/runner/src/dtask_runner/servicer.py",
    }
)


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    protos = sorted((REPO / "protos" / "dtask" / "v1").glob("*.proto"))
    assert [p.name for p in protos] == ["common.proto", "controller.proto", "runner.proto"]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{REPO / 'protos'}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            *map(str, protos),
        ],
        check=True,
        timeout=60,
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{REPO / 'protos'}",
            "--include_source_info",
            f"--descriptor_set_out={tmp_path / 'dtask' / 'v1' / 'descriptors.binpb'}",
            *map(str, protos),
        ],
        check=True,
        timeout=60,
    )
    made = sorted(p.name for p in (tmp_path / "dtask" / "v1").iterdir())
    assert made == sorted(
        p.name for p in GEN.iterdir() if p.suffix in (".py", ".pyi", ".binpb") and p.name != "__init__.py"
    )
    for name in made:
        fresh = (tmp_path / "dtask" / "v1" / name).read_bytes()
        assert (GEN / name).read_bytes() == fresh, f"{name} is stale: run `make proto` and commit the result"


def test_generated_imports_need_no_rewriting() -> None:
    from dtask.v1 import controller_pb2, controller_pb2_grpc, runner_pb2_grpc

    assert controller_pb2.DESCRIPTOR.package == "dtask.v1"
    assert hasattr(controller_pb2_grpc, "ControllerStub") and hasattr(runner_pb2_grpc, "RunnerStub")


def stray_generated_files(root: Path = REPO) -> list[str]:
    """Generated files anywhere in the source trees but in the one generated package."""
    return sorted(
        rel(p, root)
        for tree in TREES
        for p in (root / tree).rglob("*_pb2*")
        if p.name.endswith(GENERATED_SUFFIXES) and p.parent != root / GEN.relative_to(REPO) and not _built(p, root)
    )


def _built(path: Path, root: Path) -> bool:
    """Under a build, egg-info or cache directory (not source)."""
    parts = path.relative_to(root).parts
    return any(p in ("build", "__pycache__") or p.startswith(".") or p.endswith(".egg-info") for p in parts)


def test_generated_code_lives_only_in_its_package() -> None:
    assert stray_generated_files() == [], "generated code outside libs/dtask_common/src/dtask/v1: delete it"


def wire_imports(source: str) -> list[str]:
    """The generated modules (dtask.v1.*_pb2, *_pb2_grpc) a module imports, at any depth of its code."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            if node.module == "dtask.v1":
                found += [f"dtask.v1.{a.name}" for a in node.names if _generated(a.name)]
            elif node.module.startswith("dtask.v1.") and _generated(node.module.rpartition(".")[2]):
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [
                a.name for a in node.names if a.name.startswith("dtask.v1.") and _generated(a.name.rpartition(".")[2])
            ]
    return found


def _generated(module: str) -> bool:
    return module.endswith(("_pb2", "_pb2_grpc"))


def python_files(root: Path, trees: Iterable[str]) -> Iterator[Path]:
    for tree in trees:
        yield from sorted((root / tree).rglob("*.py"))


def rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def pb2_importers(root: Path = REPO) -> dict[str, list[str]]:
    """Every hand-written module of the distributions that imports generated code: its imports."""
    return {rel(p, root): imports for p in python_files(root, WIRE_TREES) if (imports := wire_imports(p.read_text()))}


def test_only_conversion_servicers_sessions_entry_points_and_the_client_import_pb2() -> None:
    importers = pb2_importers()
    offenders = {path: imports for path, imports in importers.items() if path not in WIRE_MODULES}
    assert offenders == {}, f"generated (pb2) types used outside the wire modules: {offenders}"
    missing = sorted(m for m in WIRE_MODULES if not (REPO / m).is_file())
    assert missing == [], f"WIRE_MODULES names modules that are gone: {missing}"


def test_the_pb2_check_reads_every_distribution() -> None:
    importers = pb2_importers()
    for tree in WIRE_TREES:
        assert any(python_files(REPO, [tree])), f"{tree} holds no module: WIRE_TREES is out of date"
    for tree in ("libs/dtask_common", "libs/dtask_client", "services/controller", "services/runner"):
        assert any(path.startswith(f"{tree}/") for path in importers), f"no pb2 import found under {tree}"


def test_a_stray_pb2_import_or_generated_file_is_found(tmp_path: Path) -> None:
    for tree in WIRE_TREES:
        (tmp_path / tree).mkdir(parents=True)
    cases = {
        "clients/cli/src/dtask_cli/a.py": "from dtask.v1 import controller_pb2 as pb\n",
        "clients/tui/src/dtask_tui/b.py": "def f():\n    import dtask.v1.runner_pb2_grpc\n",
        "services/controller/src/dtask_controller/service.py": "from dtask.v1.common_pb2 import Resources\n",
        "libs/dtask_client/src/dtask_client/client.py": "from dtask.v1 import controller_pb2_grpc\n",
    }
    for path, text in cases.items():
        (tmp_path / path).write_text(text)
    (tmp_path / "libs/dtask_common/src/dtask_common/models.py").write_text("# controller_pb2 is not imported here\n")
    assert sorted(p for p in pb2_importers(tmp_path) if p not in WIRE_MODULES) == sorted(cases)

    (tmp_path / "services/runner/src/dtask_runner/runner_pb2.py").write_text("")
    (tmp_path / "libs/dtask_common/src/dtask/v1").mkdir(parents=True)
    (tmp_path / "libs/dtask_common/src/dtask/v1/runner_pb2.py").write_text("")
    (tmp_path / "clients/cli/build/lib/x_pb2.py").parent.mkdir(parents=True)
    (tmp_path / "clients/cli/build/lib/x_pb2.py").write_text("")
    assert stray_generated_files(tmp_path) == ["services/runner/src/dtask_runner/runner_pb2.py"]
