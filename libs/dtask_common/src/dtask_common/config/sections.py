"""dtask.toml's sections as documented dataclasses: every key, its unit and its default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dtask_common.certs import ca_dir_for, controller_name, runner_default_name

ENV_CONFIG = "DTASK_CONFIG"
ENV_HOME = "DTASK_HOME"
ENV_CONTROLLER = "DTASK_CONTROLLER"


class ConfigError(ValueError):
    """A bad configuration file or value; the message names the key and the fix."""


def dtask_home() -> Path:
    """$DTASK_HOME, or ./.dtask in the working directory."""
    return Path(os.environ.get(ENV_HOME) or Path.cwd() / ".dtask").absolute()


@dataclass
class ControllerConfig:
    """The [controller] section: how the controller listens, stores tasks and watches its runners."""

    name: str = field(default_factory=controller_name)
    """The controller's name, shown to runners and clients; default "ctrl@" and this machine's host name."""

    host: str = "0.0.0.0"
    """The address the controller listens on; default "0.0.0.0" (every interface)."""

    port_range: tuple[int, int] = (50051, 50059)
    """First and last port to try, inclusive: the controller takes the first free one; default 50051-50059."""

    store: str = ""
    """The SQLite file holding tasks and their attempts; empty (the default): <home>/controller.db."""

    tasks: str = ""
    """A task file to queue when the controller starts; empty (the default): none."""

    dead_after_s: float = 3.0
    """Seconds without a word from an executor before it shows as dead; default 3 seconds, must be > 0."""

    lost_after_s: float = 60.0
    """Seconds an executor may stay without a session before its running attempts become LOST (and are
    retried if allowed); also the default of a task's own lost_after_s. Default 60 seconds, at least
    dead_after_s."""

    usage_history: int = 60
    """Usage samples kept per executor (for the TUI's graphs); default 60."""

    output_tail_bytes: int = 1024 * 1024
    """Bytes of each attempt's output the controller keeps (the last ones; the full log stays with the
    runner); default 1 MiB (1048576)."""

    usage_interval_s: float = 1.0
    """Seconds between the usage samples runners send, told to each runner when it connects; default 1 second,
    must be > 0."""

    shutdown_grace_s: float = 3.0
    """Seconds a stopping controller gives open calls and streams to end; default 3 seconds."""

    sync: str = "normal"
    """How hard the store syncs to disk: "normal" (the default) survives a crash of the process, "full" also
    power loss."""

    metrics_address: str = ""
    """Where to serve Prometheus metrics at /metrics over plain HTTP (no TLS, no roles): "port" or ":port"
    (on 127.0.0.1), or "host:port"; port 0 takes a free one. Empty (the default): no metrics endpoint."""

    retention_days: float = 0.0
    """Finished tasks older than this many days are pruned from the store once an hour (as `dtask prune
    --finished-before`); 0 (the default): never pruned automatically."""
    join_enabled: bool = False
    """Whether new machines may join with a token (`dtask certs token`): the controller then serves the Join
    service on join_address, TLS without a client certificate, and signs with the CA key; default false."""

    join_address: str = ""
    """host:port of the Join service when joining is enabled; empty (the default): host and port 50050."""


@dataclass
class RunnerConfig:
    """The [runner] section: what a runner offers, where it keeps files and how it runs tasks."""

    name: str = field(default_factory=runner_default_name)
    """The runner's (executor's) name, as in its certificate; default "exec@" and this machine's host name."""

    controller: str = "localhost:50051"
    """The controller's address, host:port; default "localhost:50051"."""

    host: str = "0.0.0.0"
    """The address the runner's own service (Status, Drain) listens on; default "0.0.0.0" (every interface)."""

    advertise_host: str = ""
    """The host name others reach this runner at; empty (the default): host, or this machine's FQDN when
    host is a wildcard address."""

    port_range: tuple[int, int] = (50100, 50199)
    """First and last port to try for the runner's service, inclusive; default 50100-50199."""

    slots: int = 1
    """Tasks the runner runs at once; default 1, at least 1."""

    cpus: float = 0.0
    """CPU cores offered to tasks; 0 (the default): all the cores this process may use."""

    memory_mb: int = 0
    """Memory offered to tasks, in MiB; 0 (the default): all of the machine's."""

    gpus: str = "auto"
    """GPUs offered: "auto" (the default, those nvidia-smi finds), "none", or indexes like "0,1"."""

    labels: dict[str, str] = field(default_factory=dict)
    """This runner's labels (key = value): a task runs here only if every label it asks for is here with
    the same value; default none."""

    work_dir: str = ""
    """The working directory of tasks that name none; empty (the default): <home>/runner/<name>/work."""

    log_dir: str = ""
    """Where each attempt's output log is written; empty (the default): <home>/runner/<name>/logs."""

    usage_interval_s: float = 1.0
    """Seconds between usage samples until the controller says otherwise; default 1 second, must be > 0."""

    kill_grace_s: float = 10.0
    """Seconds between SIGTERM and SIGKILL when an attempt is cancelled or times out; default 10 seconds."""

    reconnect_max_s: float = 10.0
    """The longest wait, in seconds, between attempts to reconnect to the controller (the wait doubles from
    0.2 seconds up to this); default 10 seconds."""

    run_as: str = ""
    """A user to run every task as (the runner started as root, work_dir outside <home>); empty (the
    default): tasks run as the runner's user."""

    containment: str = "auto"
    """How an attempt's processes are found and stopped: "cgroup" (a cgroup v2 group per attempt), "sweep"
    (by their environment), or "auto" (the default: a cgroup where one can be made, else sweep)."""

    poison_after: int = 3
    """Read by the controller: a task whose runner process died this many times in a row running it fails
    instead of being retried on the next runner; 0: never. Default 3."""

    prefetch: int = 0
    """Assignments the runner takes beyond its slots: they wait on the runner, and each starts the moment a
    slot frees, without a round trip to the controller (many short tasks run back to back). They count as
    running on the controller (with their resources) and keep their place if another runner frees first;
    0 (the default): none."""
    task_env_path: str = ""
    """A Python environment every task runs in unless it names its own venv or conda: a venv or a conda
    environment's directory on this machine (its bin first on PATH, VIRTUAL_ENV or CONDA_PREFIX set); empty
    (the default): tasks get the runner's own PATH and no environment."""

    paths: dict[str, str] = field(default_factory=dict)
    """Directories this runner declares by name (name = "/abs/dir"): a task writes {path:NAME} and gets this
    runner's directory, and goes only to runners that declare NAME; default none."""
    metrics_address: str = ""
    """Where to serve the runner's Prometheus metrics at /metrics over plain HTTP (no TLS, no roles): "port"
    or ":port" (on 127.0.0.1), or "host:port"; port 0 takes a free one. Empty (the default): none."""

    log_retention_days: float = 0.0
    """Logs (and result files) of attempts that finished more than this many days ago are removed, at start
    and once an hour; never those of running or unacknowledged attempts. 0 (the default): kept forever."""

    log_max_bytes: int = 0
    """The most bytes the attempt logs may take together: past it the oldest finished attempts' logs are
    removed (at start and once an hour); 0 (the default): no limit."""


@dataclass
class ClientConfig:
    """The [client] section: how the CLI, the TUI and the Python client reach the controller."""

    controller: str = "localhost:50051"
    """The controller's address, host:port; $DTASK_CONTROLLER wins over it. Default "localhost:50051"."""

    timeout_s: float = 10.0
    """Seconds a call to the controller may take (streams excepted); default 10 seconds."""

    direct_logs: bool = True
    """Read a large output (8 MiB or more) straight from the runner that ran it; false: always through the
    controller (for a machine a firewall keeps from the runners: no 1 s connection attempt first). Default true."""


@dataclass
class Config:
    """The whole dtask.toml: the top-level paths and one section per component."""

    home: str = ""
    """Where certificates, the store and runner files live; empty (the default): $DTASK_HOME, else ./.dtask."""

    certs: str = ""
    """The certificates' directory; empty (the default): <home>/certs."""

    ca: str = ""
    """The CA key's directory, apart from the certificates the services read; empty (the default): "ca" next
    to a certificates' directory named "certs" (<home>/ca), else that directory's name with "-ca" added."""

    controller: ControllerConfig = field(default_factory=ControllerConfig)
    """The [controller] section."""

    runner: RunnerConfig = field(default_factory=RunnerConfig)
    """The [runner] section."""

    client: ClientConfig = field(default_factory=ClientConfig)
    """The [client] section."""

    @property
    def home_path(self) -> Path:
        return Path(self.home).expanduser().absolute() if self.home else dtask_home()

    @property
    def certs_path(self) -> Path:
        return Path(self.certs).expanduser().absolute() if self.certs else self.home_path / "certs"

    @property
    def ca_path(self) -> Path:
        """The CA key's directory, apart from the certificates the services read."""
        return Path(self.ca).expanduser().absolute() if self.ca else ca_dir_for(self.certs_path)

    @property
    def store_path(self) -> Path:
        s = self.controller.store
        return Path(s).expanduser().absolute() if s else self.home_path / "controller.db"

    def runner_log_dir(self) -> Path:
        d = self.runner.log_dir
        return Path(d).expanduser().absolute() if d else self.home_path / "runner" / self.runner.name / "logs"
