"""The request context: what one client request is, and what happened to it, for the code that serves it
and the observers that report it (access log, metrics, request log).

The WSGI application creates it and owns it; routing fills in what it learns (the target that answered,
attempts, usage); observers only read it, when the response is over."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(slots=True)
class RequestContext:
    request_id: str
    deadline: float  # time.monotonic() value
    passthrough: bool = False
    extra_headers: dict = field(default_factory=dict)  # x-bf-eh-* headers the client asked to forward
    client_socket: object = None  # the server's client socket, when it exposes one (gunicorn does)
    started: float = field(default_factory=time.monotonic)
    route: str = ""  # the route's path, or its template (``/v1/models/{provider}/{model}``)
    params: dict = field(default_factory=dict)  # the template's values
    stream: bool = False
    method: str = ""  # HTTP method
    client_ip: str = ""  # accesslog.client_ip(environ): the proxy's X-Real-IP when the peer is a trusted proxy
    http_status: int = 0  # status line sent; differs from ``status`` when a stream fails after its first byte
    # filled as the request runs; read by observers (logs, metrics) when it finishes
    request_type: str = ""
    provider: str = ""  # the target that answered (or failed last)
    model: str = ""
    status: int = 0
    error_type: str = ""
    error_message: str = ""
    attempts: int = 0
    retries: int = 0
    fallback_index: int = 0
    ttft: float | None = None  # seconds from start to the first content sent (streams)
    usage: dict | None = None
    finish_reason: str = ""
    key_name: str = ""  # the name of the provider key used, never its value
    chunks: int = 0
    client_disconnected: bool = False
    virtual_key: str = ""  # id or name of the virtual key used, never its value
    request: object = None  # the parsed internal request (for request logs), once known
    output: object = None  # the answer (a completion dict, or the streamed text), for request logs

    def remaining(self) -> float:
        return self.deadline - time.monotonic()
