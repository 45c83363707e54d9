from dtask.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunnerOutputRequest(_message.Message):
    __slots__ = ("task_id", "attempt", "offset")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    offset: int
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class RunnerOutputPiece(_message.Message):
    __slots__ = ("offset", "data", "eof")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    EOF_FIELD_NUMBER: _ClassVar[int]
    offset: int
    data: bytes
    eof: bool
    def __init__(self, offset: _Optional[int] = ..., data: _Optional[bytes] = ..., eof: _Optional[bool] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RunnerDrainRequest(_message.Message):
    __slots__ = ("undrain",)
    UNDRAIN_FIELD_NUMBER: _ClassVar[int]
    undrain: bool
    def __init__(self, undrain: _Optional[bool] = ...) -> None: ...

class RunnerStatus(_message.Message):
    __slots__ = ("name", "capacity", "labels", "running", "last_usage", "draining", "connected", "controller", "version", "containment")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    LAST_USAGE_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    CONTROLLER_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTAINMENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    capacity: _common_pb2.Capacity
    labels: _containers.ScalarMap[str, str]
    running: _containers.RepeatedCompositeFieldContainer[_common_pb2.RunningAttempt]
    last_usage: _common_pb2.UsageSample
    draining: bool
    connected: bool
    controller: str
    version: str
    containment: str
    def __init__(self, name: _Optional[str] = ..., capacity: _Optional[_Union[_common_pb2.Capacity, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., running: _Optional[_Iterable[_Union[_common_pb2.RunningAttempt, _Mapping]]] = ..., last_usage: _Optional[_Union[_common_pb2.UsageSample, _Mapping]] = ..., draining: _Optional[bool] = ..., connected: _Optional[bool] = ..., controller: _Optional[str] = ..., version: _Optional[str] = ..., containment: _Optional[str] = ...) -> None: ...
