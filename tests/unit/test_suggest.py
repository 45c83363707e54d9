"""The one 'did you mean' helper."""

from dtask_common.suggest import closest, did_you_mean


def test_did_you_mean_wording() -> None:
    assert did_you_mean("runing", ["running", "done"]) == " (did you mean 'running'?)"
    assert did_you_mean("slot", ["slots"], prefix="runner.") == " (did you mean 'runner.slots'?)"
    assert did_you_mean("zzz", ["running"]) == ""


def test_closest() -> None:
    assert closest("gpu", ("cpus", "gpus")) == "gpus"
    assert closest("zzz", ("cpus",)) is None
