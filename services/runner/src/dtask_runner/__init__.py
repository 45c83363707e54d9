"""dtask runner: executes tasks on one machine and streams everything back to the controller."""

import os

# Tasks are forked and exec'd: gRPC's fork handlers would abort a child forked as another user
# (runner.run_as). Off before gRPC starts (the `dtask` command sets it too).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
