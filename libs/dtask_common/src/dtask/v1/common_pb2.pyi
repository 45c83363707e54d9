import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATE_UNSPECIFIED: _ClassVar[TaskState]
    TASK_STATE_PENDING: _ClassVar[TaskState]
    TASK_STATE_RUNNING: _ClassVar[TaskState]
    TASK_STATE_SUCCEEDED: _ClassVar[TaskState]
    TASK_STATE_FAILED: _ClassVar[TaskState]
    TASK_STATE_CANCELLED: _ClassVar[TaskState]
    TASK_STATE_LOST: _ClassVar[TaskState]

class ExecutorState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXECUTOR_STATE_UNSPECIFIED: _ClassVar[ExecutorState]
    EXECUTOR_STATE_IDLE: _ClassVar[ExecutorState]
    EXECUTOR_STATE_BUSY: _ClassVar[ExecutorState]
    EXECUTOR_STATE_DRAINING: _ClassVar[ExecutorState]
    EXECUTOR_STATE_DEAD: _ClassVar[ExecutorState]
    EXECUTOR_STATE_GONE: _ClassVar[ExecutorState]
TASK_STATE_UNSPECIFIED: TaskState
TASK_STATE_PENDING: TaskState
TASK_STATE_RUNNING: TaskState
TASK_STATE_SUCCEEDED: TaskState
TASK_STATE_FAILED: TaskState
TASK_STATE_CANCELLED: TaskState
TASK_STATE_LOST: TaskState
EXECUTOR_STATE_UNSPECIFIED: ExecutorState
EXECUTOR_STATE_IDLE: ExecutorState
EXECUTOR_STATE_BUSY: ExecutorState
EXECUTOR_STATE_DRAINING: ExecutorState
EXECUTOR_STATE_DEAD: ExecutorState
EXECUTOR_STATE_GONE: ExecutorState

class Resources(_message.Message):
    __slots__ = ("cpus", "memory_mb", "gpus")
    CPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MB_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    cpus: float
    memory_mb: int
    gpus: int
    def __init__(self, cpus: _Optional[float] = ..., memory_mb: _Optional[int] = ..., gpus: _Optional[int] = ...) -> None: ...

class TaskSpec(_message.Message):
    __slots__ = ("name", "argv", "shell", "cwd", "env", "resources", "labels", "priority", "max_retries", "timeout_s", "depends_on", "tags", "progress", "progress_pattern", "result_marker", "lost_after_s", "params", "venv", "conda")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARGV_FIELD_NUMBER: _ClassVar[int]
    SHELL_FIELD_NUMBER: _ClassVar[int]
    CWD_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_PATTERN_FIELD_NUMBER: _ClassVar[int]
    RESULT_MARKER_FIELD_NUMBER: _ClassVar[int]
    LOST_AFTER_S_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    VENV_FIELD_NUMBER: _ClassVar[int]
    CONDA_FIELD_NUMBER: _ClassVar[int]
    name: str
    argv: _containers.RepeatedScalarFieldContainer[str]
    shell: str
    cwd: str
    env: _containers.ScalarMap[str, str]
    resources: Resources
    labels: _containers.ScalarMap[str, str]
    priority: int
    max_retries: int
    timeout_s: float
    depends_on: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    progress: str
    progress_pattern: str
    result_marker: str
    lost_after_s: float
    params: _containers.RepeatedCompositeFieldContainer[Param]
    venv: str
    conda: str
    def __init__(self, name: _Optional[str] = ..., argv: _Optional[_Iterable[str]] = ..., shell: _Optional[str] = ..., cwd: _Optional[str] = ..., env: _Optional[_Mapping[str, str]] = ..., resources: _Optional[_Union[Resources, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., priority: _Optional[int] = ..., max_retries: _Optional[int] = ..., timeout_s: _Optional[float] = ..., depends_on: _Optional[_Iterable[str]] = ..., tags: _Optional[_Iterable[str]] = ..., progress: _Optional[str] = ..., progress_pattern: _Optional[str] = ..., result_marker: _Optional[str] = ..., lost_after_s: _Optional[float] = ..., params: _Optional[_Iterable[_Union[Param, _Mapping]]] = ..., venv: _Optional[str] = ..., conda: _Optional[str] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("label", "step", "total", "percent", "rate", "elapsed_s", "eta_s", "updated_at", "epoch", "epochs")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_S_FIELD_NUMBER: _ClassVar[int]
    ETA_S_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    label: str
    step: int
    total: int
    percent: float
    rate: float
    elapsed_s: float
    eta_s: float
    updated_at: _timestamp_pb2.Timestamp
    epoch: int
    epochs: int
    def __init__(self, label: _Optional[str] = ..., step: _Optional[int] = ..., total: _Optional[int] = ..., percent: _Optional[float] = ..., rate: _Optional[float] = ..., elapsed_s: _Optional[float] = ..., eta_s: _Optional[float] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., epoch: _Optional[int] = ..., epochs: _Optional[int] = ...) -> None: ...

class Attempt(_message.Message):
    __slots__ = ("task_id", "number", "executor", "gpu_ids", "dispatched_at", "finished_at", "state", "exit_code", "signal", "error", "result", "peak_rss_bytes", "cpu_time_s", "duration_s", "metrics")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    GPU_IDS_FIELD_NUMBER: _ClassVar[int]
    DISPATCHED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    PEAK_RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    CPU_TIME_S_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    number: int
    executor: str
    gpu_ids: _containers.RepeatedScalarFieldContainer[int]
    dispatched_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    state: TaskState
    exit_code: int
    signal: int
    error: str
    result: _struct_pb2.Struct
    peak_rss_bytes: int
    cpu_time_s: float
    duration_s: float
    metrics: _containers.RepeatedCompositeFieldContainer[MetricPoint]
    def __init__(self, task_id: _Optional[str] = ..., number: _Optional[int] = ..., executor: _Optional[str] = ..., gpu_ids: _Optional[_Iterable[int]] = ..., dispatched_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[TaskState, str]] = ..., exit_code: _Optional[int] = ..., signal: _Optional[int] = ..., error: _Optional[str] = ..., result: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., peak_rss_bytes: _Optional[int] = ..., cpu_time_s: _Optional[float] = ..., duration_s: _Optional[float] = ..., metrics: _Optional[_Iterable[_Union[MetricPoint, _Mapping]]] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("id", "spec", "state", "submitted_at", "attempts", "progress", "result", "error", "stale_since", "usage")
    ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STALE_SINCE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    spec: TaskSpec
    state: TaskState
    submitted_at: _timestamp_pb2.Timestamp
    attempts: _containers.RepeatedCompositeFieldContainer[Attempt]
    progress: Progress
    result: _struct_pb2.Struct
    error: str
    stale_since: _timestamp_pb2.Timestamp
    usage: RunningAttempt
    def __init__(self, id: _Optional[str] = ..., spec: _Optional[_Union[TaskSpec, _Mapping]] = ..., state: _Optional[_Union[TaskState, str]] = ..., submitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempts: _Optional[_Iterable[_Union[Attempt, _Mapping]]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., result: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error: _Optional[str] = ..., stale_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., usage: _Optional[_Union[RunningAttempt, _Mapping]] = ...) -> None: ...

class GpuUsage(_message.Message):
    __slots__ = ("index", "name", "util_percent", "memory_percent", "memory_total_bytes")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    UTIL_PERCENT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_PERCENT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    util_percent: float
    memory_percent: float
    memory_total_bytes: int
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., util_percent: _Optional[float] = ..., memory_percent: _Optional[float] = ..., memory_total_bytes: _Optional[int] = ...) -> None: ...

class UsageSample(_message.Message):
    __slots__ = ("at", "cpu_percent", "per_cpu_percent", "ram_percent", "swap_percent", "load_avg", "gpus", "ram_total_bytes", "ram_used_bytes", "attempts")
    AT_FIELD_NUMBER: _ClassVar[int]
    CPU_PERCENT_FIELD_NUMBER: _ClassVar[int]
    PER_CPU_PERCENT_FIELD_NUMBER: _ClassVar[int]
    RAM_PERCENT_FIELD_NUMBER: _ClassVar[int]
    SWAP_PERCENT_FIELD_NUMBER: _ClassVar[int]
    LOAD_AVG_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    RAM_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    RAM_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    cpu_percent: float
    per_cpu_percent: _containers.RepeatedScalarFieldContainer[float]
    ram_percent: float
    swap_percent: float
    load_avg: _containers.RepeatedScalarFieldContainer[float]
    gpus: _containers.RepeatedCompositeFieldContainer[GpuUsage]
    ram_total_bytes: int
    ram_used_bytes: int
    attempts: _containers.RepeatedCompositeFieldContainer[RunningAttempt]
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cpu_percent: _Optional[float] = ..., per_cpu_percent: _Optional[_Iterable[float]] = ..., ram_percent: _Optional[float] = ..., swap_percent: _Optional[float] = ..., load_avg: _Optional[_Iterable[float]] = ..., gpus: _Optional[_Iterable[_Union[GpuUsage, _Mapping]]] = ..., ram_total_bytes: _Optional[int] = ..., ram_used_bytes: _Optional[int] = ..., attempts: _Optional[_Iterable[_Union[RunningAttempt, _Mapping]]] = ...) -> None: ...

class Capacity(_message.Message):
    __slots__ = ("slots", "cpus", "memory_mb", "gpus", "prefetch")
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    CPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MB_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    PREFETCH_FIELD_NUMBER: _ClassVar[int]
    slots: int
    cpus: float
    memory_mb: int
    gpus: _containers.RepeatedScalarFieldContainer[int]
    prefetch: int
    def __init__(self, slots: _Optional[int] = ..., cpus: _Optional[float] = ..., memory_mb: _Optional[int] = ..., gpus: _Optional[_Iterable[int]] = ..., prefetch: _Optional[int] = ...) -> None: ...

class ExecutorInfo(_message.Message):
    __slots__ = ("name", "state", "capacity", "labels", "address", "version", "protocol_version", "connected_since", "last_seen", "running_task_ids", "last_usage", "containment")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_SINCE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    RUNNING_TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    LAST_USAGE_FIELD_NUMBER: _ClassVar[int]
    CONTAINMENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: ExecutorState
    capacity: Capacity
    labels: _containers.ScalarMap[str, str]
    address: str
    version: str
    protocol_version: int
    connected_since: _timestamp_pb2.Timestamp
    last_seen: _timestamp_pb2.Timestamp
    running_task_ids: _containers.RepeatedScalarFieldContainer[str]
    last_usage: UsageSample
    containment: str
    def __init__(self, name: _Optional[str] = ..., state: _Optional[_Union[ExecutorState, str]] = ..., capacity: _Optional[_Union[Capacity, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., address: _Optional[str] = ..., version: _Optional[str] = ..., protocol_version: _Optional[int] = ..., connected_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., running_task_ids: _Optional[_Iterable[str]] = ..., last_usage: _Optional[_Union[UsageSample, _Mapping]] = ..., containment: _Optional[str] = ...) -> None: ...

class RunningAttempt(_message.Message):
    __slots__ = ("task_id", "attempt", "started_at", "cpu_percent", "rss_bytes", "gpu_memory_bytes", "cpu_time_s")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    CPU_PERCENT_FIELD_NUMBER: _ClassVar[int]
    RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    GPU_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    CPU_TIME_S_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    started_at: _timestamp_pb2.Timestamp
    cpu_percent: float
    rss_bytes: int
    gpu_memory_bytes: int
    cpu_time_s: float
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cpu_percent: _Optional[float] = ..., rss_bytes: _Optional[int] = ..., gpu_memory_bytes: _Optional[int] = ..., cpu_time_s: _Optional[float] = ...) -> None: ...

class QueueStatus(_message.Message):
    __slots__ = ("paused", "pending", "running", "succeeded", "failed", "cancelled", "lost")
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    LOST_FIELD_NUMBER: _ClassVar[int]
    paused: bool
    pending: int
    running: int
    succeeded: int
    failed: int
    cancelled: int
    lost: int
    def __init__(self, paused: _Optional[bool] = ..., pending: _Optional[int] = ..., running: _Optional[int] = ..., succeeded: _Optional[int] = ..., failed: _Optional[int] = ..., cancelled: _Optional[int] = ..., lost: _Optional[int] = ...) -> None: ...

class MetricPoint(_message.Message):
    __slots__ = ("name", "at", "int_value", "float_value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    FLOAT_VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    at: float
    int_value: int
    float_value: float
    def __init__(self, name: _Optional[str] = ..., at: _Optional[float] = ..., int_value: _Optional[int] = ..., float_value: _Optional[float] = ...) -> None: ...

class Param(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: ParamValue
    def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ParamValue, _Mapping]] = ...) -> None: ...

class ParamValue(_message.Message):
    __slots__ = ("string_value", "int_value", "float_value", "bool_value")
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    FLOAT_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    string_value: str
    int_value: int
    float_value: float
    bool_value: bool
    def __init__(self, string_value: _Optional[str] = ..., int_value: _Optional[int] = ..., float_value: _Optional[float] = ..., bool_value: _Optional[bool] = ...) -> None: ...
