"""The floor the gateway is measured against: a bare WSGI pass-through, kept deliberately minimal.

Parse the JSON body, strip the ``provider/`` prefix from ``model`` (the least any gateway must do), forward
it with one ``requests.Session`` per thread, relay the answer: bytes as they come for streams, the body as
is otherwise. No validation, no translation, no error mapping, no retries. ``trust_env`` is off so the floor
does not pay for proxy-variable lookups on every call: the gateway is held to the cheapest honest floor.

``BASELINE_UPSTREAM=http://127.0.0.1:PORT gunicorn -k gthread bench.baseline:application``
"""

import json
import os
import threading

import requests

UPSTREAM = os.environ.get("BASELINE_UPSTREAM", "http://127.0.0.1:9999").rstrip("/") + "/v1/chat/completions"
KEY = os.environ.get("BASELINE_KEY", "sk-bench")

_local = threading.local()


def _session() -> requests.Session:
    s = getattr(_local, "session", None)
    if s is None:
        s = _local.session = requests.Session()
        s.trust_env = False
    return s


def application(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.loads(environ["wsgi.input"].read(length))
    body["model"] = body["model"].partition("/")[2]
    stream = bool(body.get("stream"))
    resp = _session().post(UPSTREAM, data=json.dumps(body).encode(), stream=stream,
                           headers={"Authorization": "Bearer " + KEY, "Content-Type": "application/json"})
    status = f"{resp.status_code} {resp.reason}"
    ctype = resp.headers.get("Content-Type", "application/json")
    if not stream:
        data = resp.content
        start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(data)))])
        return [data]
    start_response(status, [("Content-Type", ctype), ("Cache-Control", "no-cache")])
    return _relay(resp)


def _relay(resp):
    try:
        yield from resp.iter_content(chunk_size=None)
    finally:
        resp.close()
