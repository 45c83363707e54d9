"""Finding the runner's cgroup from /proc texts, and choosing the containment (runner.containment)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dtask_common import config
from dtask_runner.cgroup import CgroupError, own_group
from dtask_runner.containment import ContainmentError, open_containment

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
UNIFIED = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"


def test_the_own_group_is_below_the_cgroup2_mount() -> None:
    assert own_group(HYBRID, "4:memory:/x\n0::/\n") == Path("/sys/fs/cgroup/unified")
    assert own_group(UNIFIED, "0::/system.slice/dtask.service\n") == Path("/sys/fs/cgroup/system.slice/dtask.service")
    # A mount of part of the hierarchy (a container's view): paths are relative to its root.
    part = "50 40 0:26 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    assert own_group(part, "0::/kubepods/pod1/c1\n") == Path("/sys/fs/cgroup/c1")
    assert own_group("50 40 0:26 / /mnt/with\\040space rw - cgroup2 cgroup2 rw\n", "0::/a\n") == Path(
        "/mnt/with space/a"
    )


@pytest.mark.parametrize(
    ("mountinfo", "proc_cgroup", "why"),
    [
        (HYBRID, "4:memory:/x\n", "no 0:: line"),
        (HYBRID.replace("cgroup2 cgroup2", "tmpfs tmpfs"), "0::/\n", "no cgroup2 file system is mounted"),
        (
            "50 40 0:26 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
            "0::/other\n",
            "outside every cgroup2 mount",
        ),
    ],
)
def test_no_own_group_says_why(mountinfo: str, proc_cgroup: str, why: str) -> None:
    with pytest.raises(CgroupError, match=why):
        own_group(mountinfo, proc_cgroup)


def test_the_setting_chooses_the_containment(tmp_path: Path) -> None:
    assert open_containment("sweep", "r1").describe() == 'sweep: runner.containment is "sweep"'
    # A base that is no cgroup: auto falls back to the sweep and says why; cgroup refuses to start.
    auto = open_containment("auto", "r1", base=tmp_path)
    assert auto.kind == "sweep" and auto.describe() == f"sweep: {tmp_path} is not a cgroup v2 group"
    with pytest.raises(ContainmentError) as err:
        open_containment("cgroup", "r1", base=tmp_path)
    assert str(err.value) == (
        f'runner.containment is "cgroup" but {tmp_path} is not a cgroup v2 group; set it to '
        '"auto" or "sweep" to run without cgroups'
    )
    with pytest.raises(ContainmentError, match="must be one of auto, cgroup, sweep"):
        open_containment("jail", "r1")


def test_config_accepts_only_the_known_containments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DTASK_CONFIG", raising=False)
    assert config.load(None, {"runner.containment": "sweep"}).runner.containment == "sweep"
    assert config.load(None).runner.containment == "auto"
    with pytest.raises(config.ConfigError, match="runner.containment must be auto, cgroup or sweep; got 'jail'"):
        config.load(None, {"runner.containment": "jail"})
