"""The call descriptors match the Controller service the controller serves."""

from __future__ import annotations

from dtask.v1 import controller_pb2 as pb
from dtask_client import _calls


def test_every_descriptor_names_a_method_with_its_message_types() -> None:
    service = pb.DESCRIPTOR.services_by_name["Controller"]
    for rpc in _calls.RPCS:
        method = service.methods_by_name[rpc.name]
        assert method.input_type is rpc.request.DESCRIPTOR, rpc.name
        assert method.output_type is rpc.response.DESCRIPTOR, rpc.name
        assert method.server_streaming == rpc.streaming and not method.client_streaming, rpc.name
        assert rpc.path == f"/dtask.v1.Controller/{rpc.name}"
    assert set(service.methods_by_name) - {r.name for r in _calls.RPCS} == {"Connect"}  # the runners' stream


def test_only_calls_whose_repeat_changes_nothing_are_safe_to_retry() -> None:
    unsafe = {r.name for r in _calls.RPCS if not r.safe_to_retry}
    assert unsafe == {"SubmitTasks", "CancelTask", "RetryTask", "Prune"}  # a resent Prune would say "none"


def test_builders_use_their_descriptor() -> None:
    assert _calls.list_tasks([], None, None, None, "").rpc is _calls.LIST_TASKS
    assert _calls.submit([]).rpc is _calls.SUBMIT_TASKS
    assert _calls.output("7", 0, follow=True).request.follow and not _calls.output("7", 0).request.follow
    assert _calls.watch(False, True).request.exclude_usage
