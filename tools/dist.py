"""Wheels and sdists of every dtask distribution, and a wheelhouse of their pinned third-party dependencies.

    python -m tools.dist build OUT        # dtask's own wheels and sdists into OUT (no network)
    python -m tools.dist wheelhouse OUT   # the pinned runtime dependencies (requirements.lock) into OUT

`pip install --no-index --find-links OUT dtask-runner` then installs a runner with no checkout.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Every distribution, lowest layer first.
PACKAGES = (
    "libs/dtask_common",
    "libs/dtask_client",
    "services/controller",
    "services/runner",
    "clients/cli",
    "clients/tui",
)
_BUILD = "import sys, setuptools.build_meta as b; print(getattr(b, 'build_' + sys.argv[1])(sys.argv[2]))"


def _name(requirement: str) -> str:
    """The normalised project name of a requirement string (`grpcio>=1.85; extra == "x"` -> `grpcio`)."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\s\[<>=!~;(]", requirement.strip(), maxsplit=1)[0]).lower()


def own_names() -> dict[str, Path]:
    """Each distribution's project name and folder."""
    out = {}
    for rel in PACKAGES:
        project = tomllib.loads((REPO / rel / "pyproject.toml").read_text())["project"]
        out[_name(project["name"])] = REPO / rel
    return out


def direct_requirements() -> set[str]:
    """The third-party projects dtask's distributions require (not their optional extras)."""
    own = own_names()
    names: set[str] = set()
    for folder in own.values():
        for req in tomllib.loads((folder / "pyproject.toml").read_text())["project"].get("dependencies", []):
            if _name(req) not in own:
                names.add(_name(req))
    return names


def runtime_closure(names: Iterable[str]) -> set[str]:
    """names and everything they require, as installed here (markers that hold here; no extras)."""
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for req in requires:
            _, _, marker = req.partition(";")
            if "extra" in marker:
                continue
            if marker.strip() and not _marker_holds(marker):
                continue
            todo.append(_name(req))
    return seen


def _marker_holds(marker: str) -> bool:
    from packaging.markers import Marker

    return Marker(marker.strip()).evaluate()


def pins(lock: Path = REPO / "requirements.lock") -> dict[str, str]:
    """requirements.lock as {normalised name: `name==version`}."""
    out = {}
    for line in lock.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "==" in line:
            out[_name(line)] = line
    return out


def runtime_pins() -> list[str]:
    """The pinned third-party packages a dtask install needs at run time, from requirements.lock."""
    locked = pins()
    needed = runtime_closure(direct_requirements())
    missing = sorted(needed - set(locked))
    if missing:
        raise SystemExit(f"error: not pinned in requirements.lock: {', '.join(missing)} (run make lock)")
    return sorted(locked[n] for n in needed)


def build(out: Path, *, sdist: bool = True, python: str = sys.executable) -> list[Path]:
    """Build every distribution's wheel (and sdist) into out, without build isolation (no network)."""
    out.mkdir(parents=True, exist_ok=True)
    built = []
    for folder in own_names().values():
        for kind in ("wheel", "sdist") if sdist else ("wheel",):  # one process each: setuptools keeps state
            done = subprocess.run(
                [python, "-c", _BUILD, kind, str(out.absolute())],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=300,
            )
            if done.returncode != 0:
                raise SystemExit(f"error: building {folder.relative_to(REPO)} failed:\n{done.stdout}{done.stderr}")
            built.append(out / done.stdout.split()[-1])
    return built


def wheelhouse(out: Path, *, python: str = sys.executable) -> list[str]:
    """Download the wheels of runtime_pins() into out (files already there are kept); the pins."""
    wanted = runtime_pins()
    out.mkdir(parents=True, exist_ok=True)
    cmd = [python, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps"]
    cmd += ["--only-binary=:all:", "--dest", str(out), *wanted]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"error: pip download failed:\n{done.stdout}{done.stderr}")
    return wanted


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.dist", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("build", "wheelhouse", "pins"))
    parser.add_argument("out", nargs="?", default=str(REPO / "dist"))
    args = parser.parse_args(argv)
    if args.what == "build":
        for path in build(Path(args.out)):
            print(path)
    elif args.what == "wheelhouse":
        print(f"{len(wheelhouse(Path(args.out)))} pinned dependencies in {args.out}")
    else:
        print("\n".join(runtime_pins()))


if __name__ == "__main__":
    main()
