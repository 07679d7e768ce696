"""A small flagd sidecar on 127.0.0.1: flagd's published gRPC protocols, from the generated
definitions the flagd provider ships (``openfeature.schemas.protobuf``), over real gRPC.

- evaluation (``flagd.evaluation.v2.Service``, the provider's RPC resolver): ResolveBoolean /
  ResolveString evaluated by the flagd engine (``FlagdCore``, openfeature-flagd-core) on the
  current document, and the EventStream (``provider_ready``, then ``configuration_change``);
- sync (``flagd.sync.v1.FlagSyncService``, the provider's in-process resolver): SyncFlags streams
  the document, then every new one; GetMetadata answers empty.

``set_flags`` swaps the document (as the operator's sidecar does when the FeatureFlag changes);
``stop`` takes the sidecar away (a crashed or not yet started container); ``start`` brings it
back on the same port.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator, Mapping
from concurrent import futures
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext
from openfeature.schemas.protobuf.flagd.evaluation.v2 import evaluation_pb2, evaluation_pb2_grpc
from openfeature.schemas.protobuf.flagd.sync.v1 import sync_pb2, sync_pb2_grpc

__all__ = ["FakeFlagd"]


class FakeFlagd:
    def __init__(self, document: Mapping[str, Any], *, port: int = 0) -> None:
        self._lock = threading.Lock()
        self._document = json.dumps(document)
        self._core = FlagdCore()
        self._core.set_flags(self._document)
        self._listeners: list[queue.Queue[str | None]] = []
        self.requests: list[str] = []
        self.port = port
        self._server: grpc.Server | None = None
        self.start()

    # --- control ------------------------------------------------------------------------------------

    def start(self) -> None:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        evaluation_pb2_grpc.add_ServiceServicer_to_server(_Evaluation(self), server)
        sync_pb2_grpc.add_FlagSyncServiceServicer_to_server(_Sync(self), server)
        self.port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        server.start()
        self._server = server

    def stop(self) -> None:
        if self._server is not None:
            with self._lock:
                for listener in self._listeners:
                    listener.put(None)  # end every open stream
                self._listeners.clear()
            self._server.stop(grace=0).wait()
            self._server = None

    def set_flags(self, document: Mapping[str, Any]) -> None:
        with self._lock:
            self._document = json.dumps(document)
            self._core.set_flags(self._document)
            for listener in self._listeners:
                listener.put(self._document)

    # --- for the servicers --------------------------------------------------------------------------

    def _listen(self) -> queue.Queue[str | None]:
        q: queue.Queue[str | None] = queue.Queue()
        with self._lock:
            q.put(self._document)
            self._listeners.append(q)
        return q

    def _forget(self, q: queue.Queue[str | None]) -> None:
        with self._lock:
            if q in self._listeners:
                self._listeners.remove(q)

    def _stream(self, context: grpc.ServicerContext) -> Iterator[str]:
        q = self._listen()
        try:
            while context.is_active():
                try:
                    item = q.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is None:
                    return
                yield item
        finally:
            self._forget(q)

    def _resolve(self, kind: str, request: Any, context: grpc.ServicerContext) -> Any:
        self.requests.append(f"{kind}:{request.flag_key}")
        attrs = MessageToDict(request.context) if request.HasField("context") else {}
        ctx = EvaluationContext(targeting_key=attrs.pop("targetingKey", None), attributes=attrs)
        with self._lock:
            if kind == "boolean":
                details = self._core.resolve_boolean_value(request.flag_key, False, ctx)
            else:
                details = self._core.resolve_string_value(request.flag_key, "", ctx)
        if details.error_code is not None:
            code = grpc.StatusCode.NOT_FOUND if details.error_code.value == "FLAG_NOT_FOUND" else grpc.StatusCode.INTERNAL
            context.abort(code, details.error_message or details.error_code.value)
        reason = details.reason.value if hasattr(details.reason, "value") else str(details.reason)
        response = evaluation_pb2.ResolveBooleanResponse if kind == "boolean" else evaluation_pb2.ResolveStringResponse
        return response(value=details.value, reason=reason, variant=details.variant or "")


class _Evaluation(evaluation_pb2_grpc.ServiceServicer):
    def __init__(self, flagd: FakeFlagd) -> None:
        self.flagd = flagd

    def ResolveBoolean(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802 - gRPC's name
        return self.flagd._resolve("boolean", request, context)

    def ResolveString(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self.flagd._resolve("string", request, context)

    def EventStream(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:  # noqa: N802
        first = True
        for document in self.flagd._stream(context):
            if first:
                first = False
                yield evaluation_pb2.EventStreamResponse(type="provider_ready")
                continue
            data = Struct()
            data.update({"flags": {key: {} for key in json.loads(document).get("flags", {})}})
            yield evaluation_pb2.EventStreamResponse(type="configuration_change", data=data)


class _Sync(sync_pb2_grpc.FlagSyncServiceServicer):
    def __init__(self, flagd: FakeFlagd) -> None:
        self.flagd = flagd

    def SyncFlags(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:  # noqa: N802
        for document in self.flagd._stream(context):
            yield sync_pb2.SyncFlagsResponse(flag_configuration=document)

    def GetMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        metadata = Struct()
        metadata.update({"flagSetId": "ai-rollout-test"})  # flagd answers its flag set's metadata
        return sync_pb2.GetMetadataResponse(metadata=metadata)
