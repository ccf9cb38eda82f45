"""The gunicorn worker class of ``bifrost-wsgi`` and ``deploy/gunicorn.conf.py``: gunicorn's gthread worker
with two changes an API gateway needs.

- gunicorn's own refusals of a request it cannot parse (a malformed request line, headers over the limits,
  an unsupported transfer coding, a broken chunked body) are answered with the gateway's JSON error
  envelope instead of gunicorn's HTML page, so a client parses them like any other error.
- A worker told to stop (SIGTERM to the master, a HUP, ``max_requests`` recycling) closes its copy of the
  listening socket at once. gunicorn >= 27 keeps it open until the worker's last stream ends, so while
  streams drain during a shutdown the kernel still completes new connections that nobody will ever accept:
  they hang. Once every process has closed it, new connections are refused and clients retry elsewhere; on
  a HUP or a recycle the master and the other workers still hold it, so nothing changes for clients.

This module is imported by the gunicorn master (``worker_class``): it imports nothing heavy.
"""

from __future__ import annotations

import json
import os
import ssl
from http import HTTPStatus

from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.workers.gthread import ThreadWorker

from .errors import ClientError, GatewayError

# gunicorn's refusals by exception class (looked up along the class's MRO, most specific first); anything
# else gunicorn hands to handle_error is a failure of ours
STATUS_BY_ERROR = {
    http_errors.ParseException: 400,
    ssl.SSLError: 400,
    http_errors.LimitRequestLine: 414,
    http_errors.LimitRequestHeaders: 431,
    http_errors.UnsupportedTransferCoding: 501,
    http_errors.ExpectationFailed: 417,
    http_errors.ForbiddenProxyRequest: 403,
    http_errors.ConfigurationProblem: 500,
    # a header the application tried to send is the application's fault
    http_errors.InvalidResponseHeader: 500,
    http_errors.InvalidResponseHeaderName: 500,
}
MAX_DETAIL = 200  # characters of gunicorn's description kept in the message (it may quote the client's bytes)


def refusal(exc: BaseException) -> GatewayError:
    """The envelope for an exception gunicorn reports: a ClientError for what the client sent, a generic
    internal error (no detail) for anything else."""
    status = next((STATUS_BY_ERROR[c] for c in type(exc).__mro__ if c in STATUS_BY_ERROR), 500)
    if status == 500:
        return GatewayError("internal server error")
    phrase = HTTPStatus(status).phrase
    detail = str(exc)[:MAX_DETAIL]
    return ClientError(f"{phrase}: {detail}" if detail else phrase, status=status)


def error_response(error: GatewayError) -> bytes:
    body = json.dumps(error.to_dict(), separators=(",", ":")).encode()
    head = (f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


class Worker(ThreadWorker):
    """``worker_class = "bifrost_wsgi.worker.Worker"``."""

    def init_process(self):
        # the app sizes its inference admission from this: threads - 2 requests at once, so that the last
        # threads stay free for /health, /metrics and refusals (app.inference_limit)
        os.environ["BIFROST_WORKER_THREADS"] = str(self.cfg.threads)
        super().init_process()

    def handle_error(self, req, client, addr, exc):
        """gunicorn's hook for a request that failed before the application answered (signature of
        ``gunicorn.workers.base.Worker.handle_error``)."""
        error = refusal(exc)
        ip = (addr or ("",))[0]
        if isinstance(error, ClientError):
            # the class name only: gunicorn's description may quote headers the client sent
            self.log.warning("refused a request from ip=%s: %s %s", ip, error.status, type(exc).__name__)
        else:
            self.log.exception("error handling a request from ip=%s", ip)
        try:
            util.write_nonblock(client, error_response(error))
        except OSError:
            self.log.debug("could not send the error response")

    def set_accept_enabled(self, enabled):
        # gunicorn's gthread worker calls this with False when it stops listening: while running (too many
        # connections) and once it is told to stop, before it waits for its requests to finish
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:
            for listener in self.sockets:
                listener.close()
