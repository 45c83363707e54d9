"""Domain models shared by every dtask component, with validation and no I/O."""

from dtask_common.models.executors import (
    Capacity,
    ExecutorInfo,
    ExecutorState,
    ExecutorUsage,
    GpuUsage,
    UsageSample,
)
from dtask_common.models.sessions import (
    AckCmd,
    AssignCmd,
    CancelCmd,
    Command,
    DrainReport,
    Hello,
    Identity,
    ProgressReport,
    RefusalReport,
    Report,
    WelcomeCmd,
)
from dtask_common.models.specs import Resources, TaskSpec
from dtask_common.models.tasks import (
    FINISHED_STATES,
    Attempt,
    AttemptResult,
    OutputChunk,
    Progress,
    QueueStatus,
    RunningAttempt,
    Task,
    TaskState,
)
from dtask_common.models.validation import (
    INT32_MAX,
    MAX_COMMAND_BYTES,
    MAX_DEPENDS,
    MAX_ENV_ENTRIES,
    MAX_ENV_VALUE,
    MAX_LABEL,
    MAX_LOST_AFTER_S,
    MAX_NAME,
    MAX_PATH,
    MAX_RETRIES,
    MAX_SUBMIT,
    MAX_TAGS,
    PROGRESS_GROUPS,
    PROGRESS_PARSERS,
    FieldError,
    ValidationError,
    validate_batch,
)

__all__ = [
    "FINISHED_STATES", "INT32_MAX", "MAX_COMMAND_BYTES", "MAX_DEPENDS", "MAX_ENV_ENTRIES", "MAX_ENV_VALUE",
    "MAX_LABEL", "MAX_LOST_AFTER_S", "MAX_NAME", "MAX_PATH", "MAX_RETRIES", "MAX_SUBMIT", "MAX_TAGS",
    "PROGRESS_GROUPS", "PROGRESS_PARSERS", "AckCmd", "AssignCmd", "Attempt", "AttemptResult", "CancelCmd",
    "Capacity", "Command", "DrainReport", "ExecutorInfo", "ExecutorState", "ExecutorUsage", "FieldError",
    "GpuUsage", "Hello", "Identity", "OutputChunk", "Progress", "ProgressReport", "QueueStatus", "RefusalReport",
    "Report", "Resources", "RunningAttempt", "Task", "TaskSpec", "TaskState", "UsageSample", "ValidationError",
    "WelcomeCmd", "validate_batch",
]
