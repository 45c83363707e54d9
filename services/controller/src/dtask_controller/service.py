"""The Controller servicer (foundation stub: identity only)."""

from __future__ import annotations

from typing import Any

import grpc
from dtask.v1 import controller_pb2 as pb
from dtask.v1 import controller_pb2_grpc
from dtask_common import __version__
from dtask_common.authz import peer_identity
from dtask_common.config import Config


class ControllerService(controller_pb2_grpc.ControllerServicer):
    """Answers WhoAmI; the rest of the API is not served yet."""

    def __init__(self, cfg: Config):
        self._cfg = cfg

    async def WhoAmI(self, request: pb.WhoAmIRequest, context: Any) -> pb.Identity:
        ident = peer_identity(context)
        role, name = (ident[0].value, ident[1]) if ident else ("", "")
        return pb.Identity(role=role, name=name, controller_name=self._cfg.controller.name, version=__version__)

    async def Connect(self, request_iterator: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Connect is not served yet")
        yield pb.ControllerMessage()
