"""Serve a WSGI app on 127.0.0.1 (port 0) in a thread, through ``wsgiref.validate`` so every test also checks
the WSGI contract (PEP 3333)."""

from __future__ import annotations

import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.validate import validator


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class LiveServer:
    def __init__(self, app, *, validate: bool = True) -> None:
        self.app = app
        self.httpd = make_server("127.0.0.1", 0, validator(app) if validate else app,
                                 server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
