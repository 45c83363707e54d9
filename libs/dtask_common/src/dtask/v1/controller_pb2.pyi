import datetime

from dtask.v1 import common_pb2 as _common_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Hello(_message.Message):
    __slots__ = ("name", "runner_address", "capacity", "labels", "running", "unreported_results", "version", "protocol_version", "draining", "instance_id", "containment", "path_names")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    RUNNER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    UNREPORTED_RESULTS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    CONTAINMENT_FIELD_NUMBER: _ClassVar[int]
    PATH_NAMES_FIELD_NUMBER: _ClassVar[int]
    name: str
    runner_address: str
    capacity: _common_pb2.Capacity
    labels: _containers.ScalarMap[str, str]
    running: _containers.RepeatedCompositeFieldContainer[_common_pb2.RunningAttempt]
    unreported_results: _containers.RepeatedCompositeFieldContainer[AttemptFinished]
    version: str
    protocol_version: int
    draining: bool
    instance_id: str
    containment: str
    path_names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., runner_address: _Optional[str] = ..., capacity: _Optional[_Union[_common_pb2.Capacity, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., running: _Optional[_Iterable[_Union[_common_pb2.RunningAttempt, _Mapping]]] = ..., unreported_results: _Optional[_Iterable[_Union[AttemptFinished, _Mapping]]] = ..., version: _Optional[str] = ..., protocol_version: _Optional[int] = ..., draining: _Optional[bool] = ..., instance_id: _Optional[str] = ..., containment: _Optional[str] = ..., path_names: _Optional[_Iterable[str]] = ...) -> None: ...

class UsageReport(_message.Message):
    __slots__ = ("sample",)
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    sample: _common_pb2.UsageSample
    def __init__(self, sample: _Optional[_Union[_common_pb2.UsageSample, _Mapping]] = ...) -> None: ...

class ProgressUpdate(_message.Message):
    __slots__ = ("task_id", "attempt", "progress", "metrics")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    progress: _common_pb2.Progress
    metrics: _containers.RepeatedCompositeFieldContainer[_common_pb2.MetricPoint]
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ..., metrics: _Optional[_Iterable[_Union[_common_pb2.MetricPoint, _Mapping]]] = ...) -> None: ...

class OutputChunk(_message.Message):
    __slots__ = ("task_id", "attempt", "offset", "data", "notice", "total_bytes")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    NOTICE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    offset: int
    data: bytes
    notice: str
    total_bytes: int
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., notice: _Optional[str] = ..., total_bytes: _Optional[int] = ...) -> None: ...

class AttemptFinished(_message.Message):
    __slots__ = ("task_id", "attempt", "state", "exit_code", "signal", "result", "error", "started_at", "finished_at", "peak_rss_bytes", "cpu_time_s", "output_bytes")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    PEAK_RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    CPU_TIME_S_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    state: _common_pb2.TaskState
    exit_code: int
    signal: int
    result: _struct_pb2.Struct
    error: str
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    peak_rss_bytes: int
    cpu_time_s: float
    output_bytes: int
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., state: _Optional[_Union[_common_pb2.TaskState, str]] = ..., exit_code: _Optional[int] = ..., signal: _Optional[int] = ..., result: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., peak_rss_bytes: _Optional[int] = ..., cpu_time_s: _Optional[float] = ..., output_bytes: _Optional[int] = ...) -> None: ...

class DrainState(_message.Message):
    __slots__ = ("draining",)
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    draining: bool
    def __init__(self, draining: _Optional[bool] = ...) -> None: ...

class AssignmentRefused(_message.Message):
    __slots__ = ("task_id", "attempt", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class RunnerMessage(_message.Message):
    __slots__ = ("hello", "usage", "progress", "output", "finished", "drain", "refused", "batch", "output_read")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_READ_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    usage: UsageReport
    progress: ProgressUpdate
    output: OutputChunk
    finished: AttemptFinished
    drain: DrainState
    refused: AssignmentRefused
    batch: RunnerBatch
    output_read: OutputRead
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., usage: _Optional[_Union[UsageReport, _Mapping]] = ..., progress: _Optional[_Union[ProgressUpdate, _Mapping]] = ..., output: _Optional[_Union[OutputChunk, _Mapping]] = ..., finished: _Optional[_Union[AttemptFinished, _Mapping]] = ..., drain: _Optional[_Union[DrainState, _Mapping]] = ..., refused: _Optional[_Union[AssignmentRefused, _Mapping]] = ..., batch: _Optional[_Union[RunnerBatch, _Mapping]] = ..., output_read: _Optional[_Union[OutputRead, _Mapping]] = ...) -> None: ...

class RunnerBatch(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[RunnerMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[RunnerMessage, _Mapping]]] = ...) -> None: ...

class OutputRead(_message.Message):
    __slots__ = ("request_id", "offset", "data", "eof", "error")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    EOF_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    offset: int
    data: bytes
    eof: bool
    error: str
    def __init__(self, request_id: _Optional[int] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., eof: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("controller_name", "version", "protocol_version", "executor_name", "usage_interval_s", "output_offsets", "output_tail_bytes", "revoked")
    CONTROLLER_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_NAME_FIELD_NUMBER: _ClassVar[int]
    USAGE_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_OFFSETS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TAIL_BYTES_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    controller_name: str
    version: str
    protocol_version: int
    executor_name: str
    usage_interval_s: float
    output_offsets: _containers.RepeatedCompositeFieldContainer[OutputOffset]
    output_tail_bytes: int
    revoked: _containers.RepeatedCompositeFieldContainer[RevokedCertificate]
    def __init__(self, controller_name: _Optional[str] = ..., version: _Optional[str] = ..., protocol_version: _Optional[int] = ..., executor_name: _Optional[str] = ..., usage_interval_s: _Optional[float] = ..., output_offsets: _Optional[_Iterable[_Union[OutputOffset, _Mapping]]] = ..., output_tail_bytes: _Optional[int] = ..., revoked: _Optional[_Iterable[_Union[RevokedCertificate, _Mapping]]] = ...) -> None: ...

class OutputOffset(_message.Message):
    __slots__ = ("task_id", "attempt", "offset")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    offset: int
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class Assign(_message.Message):
    __slots__ = ("task_id", "attempt", "spec", "gpu_ids")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    GPU_IDS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    spec: _common_pb2.TaskSpec
    gpu_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., spec: _Optional[_Union[_common_pb2.TaskSpec, _Mapping]] = ..., gpu_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class Cancel(_message.Message):
    __slots__ = ("task_id", "attempt", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("task_id", "attempt")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class ControllerMessage(_message.Message):
    __slots__ = ("welcome", "assign", "cancel", "ack", "batch", "read_output", "revoked")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    ASSIGN_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    READ_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    assign: Assign
    cancel: Cancel
    ack: Ack
    batch: ControllerBatch
    read_output: ReadOutput
    revoked: RevokedList
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., assign: _Optional[_Union[Assign, _Mapping]] = ..., cancel: _Optional[_Union[Cancel, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ..., batch: _Optional[_Union[ControllerBatch, _Mapping]] = ..., read_output: _Optional[_Union[ReadOutput, _Mapping]] = ..., revoked: _Optional[_Union[RevokedList, _Mapping]] = ...) -> None: ...

class RevokedList(_message.Message):
    __slots__ = ("certificates",)
    CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    certificates: _containers.RepeatedCompositeFieldContainer[RevokedCertificate]
    def __init__(self, certificates: _Optional[_Iterable[_Union[RevokedCertificate, _Mapping]]] = ...) -> None: ...

class ControllerBatch(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[ControllerMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[ControllerMessage, _Mapping]]] = ...) -> None: ...

class ReadOutput(_message.Message):
    __slots__ = ("request_id", "task_id", "attempt", "offset", "max_bytes")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    task_id: str
    attempt: int
    offset: int
    max_bytes: int
    def __init__(self, request_id: _Optional[int] = ..., task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., offset: _Optional[int] = ..., max_bytes: _Optional[int] = ...) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Identity(_message.Message):
    __slots__ = ("role", "name", "controller_name", "version")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTROLLER_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    role: str
    name: str
    controller_name: str
    version: str
    def __init__(self, role: _Optional[str] = ..., name: _Optional[str] = ..., controller_name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class ListExecutorsRequest(_message.Message):
    __slots__ = ("include_gone",)
    INCLUDE_GONE_FIELD_NUMBER: _ClassVar[int]
    include_gone: bool
    def __init__(self, include_gone: _Optional[bool] = ...) -> None: ...

class ListExecutorsResponse(_message.Message):
    __slots__ = ("executors",)
    EXECUTORS_FIELD_NUMBER: _ClassVar[int]
    executors: _containers.RepeatedCompositeFieldContainer[_common_pb2.ExecutorInfo]
    def __init__(self, executors: _Optional[_Iterable[_Union[_common_pb2.ExecutorInfo, _Mapping]]] = ...) -> None: ...

class GetExecutorRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetResourceUsageRequest(_message.Message):
    __slots__ = ("executor", "history")
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    executor: str
    history: int
    def __init__(self, executor: _Optional[str] = ..., history: _Optional[int] = ...) -> None: ...

class ExecutorUsage(_message.Message):
    __slots__ = ("executor", "dead", "latest", "history")
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    DEAD_FIELD_NUMBER: _ClassVar[int]
    LATEST_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    executor: str
    dead: bool
    latest: _common_pb2.UsageSample
    history: _containers.RepeatedCompositeFieldContainer[_common_pb2.UsageSample]
    def __init__(self, executor: _Optional[str] = ..., dead: _Optional[bool] = ..., latest: _Optional[_Union[_common_pb2.UsageSample, _Mapping]] = ..., history: _Optional[_Iterable[_Union[_common_pb2.UsageSample, _Mapping]]] = ...) -> None: ...

class GetResourceUsageResponse(_message.Message):
    __slots__ = ("executors",)
    EXECUTORS_FIELD_NUMBER: _ClassVar[int]
    executors: _containers.RepeatedCompositeFieldContainer[ExecutorUsage]
    def __init__(self, executors: _Optional[_Iterable[_Union[ExecutorUsage, _Mapping]]] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("states", "tag", "executor", "page_size", "page_token", "name_contains", "params", "name_prefix")
    STATES_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    NAME_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    NAME_PREFIX_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[_common_pb2.TaskState]
    tag: str
    executor: str
    page_size: int
    page_token: str
    name_contains: str
    params: _containers.RepeatedCompositeFieldContainer[_common_pb2.Param]
    name_prefix: str
    def __init__(self, states: _Optional[_Iterable[_Union[_common_pb2.TaskState, str]]] = ..., tag: _Optional[str] = ..., executor: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., name_contains: _Optional[str] = ..., params: _Optional[_Iterable[_Union[_common_pb2.Param, _Mapping]]] = ..., name_prefix: _Optional[str] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks", "next_page_token", "total")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[_common_pb2.Task]
    next_page_token: str
    total: int
    def __init__(self, tasks: _Optional[_Iterable[_Union[_common_pb2.Task, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total: _Optional[int] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class IsFinishedRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IsFinishedResponse(_message.Message):
    __slots__ = ("finished", "queue")
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    finished: bool
    queue: _common_pb2.QueueStatus
    def __init__(self, finished: _Optional[bool] = ..., queue: _Optional[_Union[_common_pb2.QueueStatus, _Mapping]] = ...) -> None: ...

class GetTaskOutputRequest(_message.Message):
    __slots__ = ("task_id", "attempt", "follow", "tail_bytes")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    TAIL_BYTES_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    follow: bool
    tail_bytes: int
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., follow: _Optional[bool] = ..., tail_bytes: _Optional[int] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("exclude_usage", "exclude_progress", "task_ids", "states", "tag", "executor", "finished_limit", "exclude_executors", "max_batch", "exclude_unfinished")
    EXCLUDE_USAGE_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    FINISHED_LIMIT_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_EXECUTORS_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_UNFINISHED_FIELD_NUMBER: _ClassVar[int]
    exclude_usage: bool
    exclude_progress: bool
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    states: _containers.RepeatedScalarFieldContainer[_common_pb2.TaskState]
    tag: str
    executor: str
    finished_limit: int
    exclude_executors: bool
    max_batch: int
    exclude_unfinished: bool
    def __init__(self, exclude_usage: _Optional[bool] = ..., exclude_progress: _Optional[bool] = ..., task_ids: _Optional[_Iterable[str]] = ..., states: _Optional[_Iterable[_Union[_common_pb2.TaskState, str]]] = ..., tag: _Optional[str] = ..., executor: _Optional[str] = ..., finished_limit: _Optional[int] = ..., exclude_executors: _Optional[bool] = ..., max_batch: _Optional[int] = ..., exclude_unfinished: _Optional[bool] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("tasks", "executors", "usage", "queue", "last")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    EXECUTORS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[_common_pb2.Task]
    executors: _containers.RepeatedCompositeFieldContainer[_common_pb2.ExecutorInfo]
    usage: _containers.RepeatedCompositeFieldContainer[ExecutorUsage]
    queue: _common_pb2.QueueStatus
    last: bool
    def __init__(self, tasks: _Optional[_Iterable[_Union[_common_pb2.Task, _Mapping]]] = ..., executors: _Optional[_Iterable[_Union[_common_pb2.ExecutorInfo, _Mapping]]] = ..., usage: _Optional[_Iterable[_Union[ExecutorUsage, _Mapping]]] = ..., queue: _Optional[_Union[_common_pb2.QueueStatus, _Mapping]] = ..., last: _Optional[bool] = ...) -> None: ...

class TaskEvent(_message.Message):
    __slots__ = ("kind", "task")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[TaskEvent.Kind]
        KIND_ADDED: _ClassVar[TaskEvent.Kind]
        KIND_DISPATCHED: _ClassVar[TaskEvent.Kind]
        KIND_FINISHED: _ClassVar[TaskEvent.Kind]
        KIND_CANCELLED: _ClassVar[TaskEvent.Kind]
        KIND_RETRIED: _ClassVar[TaskEvent.Kind]
        KIND_UPDATED: _ClassVar[TaskEvent.Kind]
    KIND_UNSPECIFIED: TaskEvent.Kind
    KIND_ADDED: TaskEvent.Kind
    KIND_DISPATCHED: TaskEvent.Kind
    KIND_FINISHED: TaskEvent.Kind
    KIND_CANCELLED: TaskEvent.Kind
    KIND_RETRIED: TaskEvent.Kind
    KIND_UPDATED: TaskEvent.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    kind: TaskEvent.Kind
    task: _common_pb2.Task
    def __init__(self, kind: _Optional[_Union[TaskEvent.Kind, str]] = ..., task: _Optional[_Union[_common_pb2.Task, _Mapping]] = ...) -> None: ...

class ProgressEvent(_message.Message):
    __slots__ = ("task_id", "attempt", "progress", "metrics")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    progress: _common_pb2.Progress
    metrics: _containers.RepeatedCompositeFieldContainer[_common_pb2.MetricPoint]
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ..., metrics: _Optional[_Iterable[_Union[_common_pb2.MetricPoint, _Mapping]]] = ...) -> None: ...

class ExecutorEvent(_message.Message):
    __slots__ = ("kind", "executor")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[ExecutorEvent.Kind]
        KIND_UP: _ClassVar[ExecutorEvent.Kind]
        KIND_UPDATED: _ClassVar[ExecutorEvent.Kind]
        KIND_DEAD: _ClassVar[ExecutorEvent.Kind]
        KIND_GONE: _ClassVar[ExecutorEvent.Kind]
    KIND_UNSPECIFIED: ExecutorEvent.Kind
    KIND_UP: ExecutorEvent.Kind
    KIND_UPDATED: ExecutorEvent.Kind
    KIND_DEAD: ExecutorEvent.Kind
    KIND_GONE: ExecutorEvent.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    kind: ExecutorEvent.Kind
    executor: _common_pb2.ExecutorInfo
    def __init__(self, kind: _Optional[_Union[ExecutorEvent.Kind, str]] = ..., executor: _Optional[_Union[_common_pb2.ExecutorInfo, _Mapping]] = ...) -> None: ...

class UsageEvent(_message.Message):
    __slots__ = ("executor", "sample")
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    executor: str
    sample: _common_pb2.UsageSample
    def __init__(self, executor: _Optional[str] = ..., sample: _Optional[_Union[_common_pb2.UsageSample, _Mapping]] = ...) -> None: ...

class EventBatch(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[WatchEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[WatchEvent, _Mapping]]] = ...) -> None: ...

class WatchEvent(_message.Message):
    __slots__ = ("seq", "at", "snapshot", "task", "progress", "executor", "usage", "queue", "batch", "resync")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    RESYNC_FIELD_NUMBER: _ClassVar[int]
    seq: int
    at: _timestamp_pb2.Timestamp
    snapshot: Snapshot
    task: TaskEvent
    progress: ProgressEvent
    executor: ExecutorEvent
    usage: UsageEvent
    queue: _common_pb2.QueueStatus
    batch: EventBatch
    resync: bool
    def __init__(self, seq: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., snapshot: _Optional[_Union[Snapshot, _Mapping]] = ..., task: _Optional[_Union[TaskEvent, _Mapping]] = ..., progress: _Optional[_Union[ProgressEvent, _Mapping]] = ..., executor: _Optional[_Union[ExecutorEvent, _Mapping]] = ..., usage: _Optional[_Union[UsageEvent, _Mapping]] = ..., queue: _Optional[_Union[_common_pb2.QueueStatus, _Mapping]] = ..., batch: _Optional[_Union[EventBatch, _Mapping]] = ..., resync: _Optional[bool] = ...) -> None: ...

class SubmitTasksRequest(_message.Message):
    __slots__ = ("tasks",)
    TASKS_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[_common_pb2.TaskSpec]
    def __init__(self, tasks: _Optional[_Iterable[_Union[_common_pb2.TaskSpec, _Mapping]]] = ...) -> None: ...

class SubmitTasksResponse(_message.Message):
    __slots__ = ("task_ids",)
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, task_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class FieldError(_message.Message):
    __slots__ = ("index", "task_name", "field", "message")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TASK_NAME_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    index: int
    task_name: str
    field: str
    message: str
    def __init__(self, index: _Optional[int] = ..., task_name: _Optional[str] = ..., field: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class TaskErrors(_message.Message):
    __slots__ = ("errors", "omitted")
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    OMITTED_FIELD_NUMBER: _ClassVar[int]
    errors: _containers.RepeatedCompositeFieldContainer[FieldError]
    omitted: int
    def __init__(self, errors: _Optional[_Iterable[_Union[FieldError, _Mapping]]] = ..., omitted: _Optional[int] = ...) -> None: ...

class CancelTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class RetryTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class DrainExecutorRequest(_message.Message):
    __slots__ = ("name", "undrain")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UNDRAIN_FIELD_NUMBER: _ClassVar[int]
    name: str
    undrain: bool
    def __init__(self, name: _Optional[str] = ..., undrain: _Optional[bool] = ...) -> None: ...

class PauseQueueRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResumeQueueRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PruneRequest(_message.Message):
    __slots__ = ("finished_before", "tag", "dry_run", "list_limit")
    FINISHED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    LIST_LIMIT_FIELD_NUMBER: _ClassVar[int]
    finished_before: _timestamp_pb2.Timestamp
    tag: str
    dry_run: bool
    list_limit: int
    def __init__(self, finished_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tag: _Optional[str] = ..., dry_run: _Optional[bool] = ..., list_limit: _Optional[int] = ...) -> None: ...

class PrunedTask(_message.Message):
    __slots__ = ("id", "name", "state")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    state: _common_pb2.TaskState
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.TaskState, str]] = ...) -> None: ...

class PruneResponse(_message.Message):
    __slots__ = ("count", "tasks", "kept_as_dependencies", "dry_run", "freed_bytes")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    KEPT_AS_DEPENDENCIES_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    FREED_BYTES_FIELD_NUMBER: _ClassVar[int]
    count: int
    tasks: _containers.RepeatedCompositeFieldContainer[PrunedTask]
    kept_as_dependencies: int
    dry_run: bool
    freed_bytes: int
    def __init__(self, count: _Optional[int] = ..., tasks: _Optional[_Iterable[_Union[PrunedTask, _Mapping]]] = ..., kept_as_dependencies: _Optional[int] = ..., dry_run: _Optional[bool] = ..., freed_bytes: _Optional[int] = ...) -> None: ...

class JoinRequest(_message.Message):
    __slots__ = ("token_id", "secret", "csr_pem")
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    secret: str
    csr_pem: bytes
    def __init__(self, token_id: _Optional[str] = ..., secret: _Optional[str] = ..., csr_pem: _Optional[bytes] = ...) -> None: ...

class JoinResponse(_message.Message):
    __slots__ = ("certificate_pem", "ca_pem", "role", "name", "controller_port", "serial")
    CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    CA_PEM_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTROLLER_PORT_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    certificate_pem: bytes
    ca_pem: bytes
    role: str
    name: str
    controller_port: int
    serial: str
    def __init__(self, certificate_pem: _Optional[bytes] = ..., ca_pem: _Optional[bytes] = ..., role: _Optional[str] = ..., name: _Optional[str] = ..., controller_port: _Optional[int] = ..., serial: _Optional[str] = ...) -> None: ...

class RevokeCertificateRequest(_message.Message):
    __slots__ = ("target",)
    TARGET_FIELD_NUMBER: _ClassVar[int]
    target: str
    def __init__(self, target: _Optional[str] = ...) -> None: ...

class RevokedCertificate(_message.Message):
    __slots__ = ("serial", "role", "name", "revoked_at")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    serial: str
    role: str
    name: str
    revoked_at: float
    def __init__(self, serial: _Optional[str] = ..., role: _Optional[str] = ..., name: _Optional[str] = ..., revoked_at: _Optional[float] = ...) -> None: ...

class RevokeCertificateResponse(_message.Message):
    __slots__ = ("revoked", "ended_calls")
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    ENDED_CALLS_FIELD_NUMBER: _ClassVar[int]
    revoked: _containers.RepeatedCompositeFieldContainer[RevokedCertificate]
    ended_calls: int
    def __init__(self, revoked: _Optional[_Iterable[_Union[RevokedCertificate, _Mapping]]] = ..., ended_calls: _Optional[int] = ...) -> None: ...
