"""Micro-benchmarks of the gateway's hot-path pieces, next to cheaper alternatives (evidence for tuning).

    python bench/micro.py

Each line is the best of several timed loops, in microseconds per operation, no profiler attached. Rows
marked "alt:" are prototypes written here, not gateway code: they show what a change would save. The
transport rows talk to the mock upstream (started here, on the other CPU when there are two).
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE]

from procs import Procs  # noqa: E402
from run import body  # noqa: E402


def best(fn, n: int, repeat: int = 5) -> float:
    """Microseconds per call, best of ``repeat`` loops of ``n`` calls."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        times.append(time.perf_counter() - t0)
    return min(times) / n * 1e6


def row(label: str, us: float, note: str = "") -> None:
    print(f"  {label:58s} {us:8.1f} us  {note}")


def _no_nulls(pairs):
    return {k: v for k, v in pairs if v is not None}


def strip_chunk_in_place(chunk: dict, drop_nulls) -> dict:
    """alt: the nulls of a freshly parsed chunk removed where OpenAI puts them, without copying."""
    for k in [k for k, v in chunk.items() if v is None]:
        del chunk[k]
    for choice in chunk.get("choices") or ():
        for k in [k for k, v in choice.items() if v is None]:
            del choice[k]
        delta = choice.get("delta")
        if delta:
            for k, v in list(delta.items()):
                if v is None:
                    del delta[k]
                elif type(v) in (dict, list):
                    delta[k] = drop_nulls(v)
    return chunk


def request_side(port: int) -> None:
    import logging

    from bifrost_wsgi import schema, web
    from bifrost_wsgi.observe.logsetup import configure_from_env

    # as a gunicorn worker has it: logging configured (access log on), metrics in a multiprocess directory
    configure_from_env()
    devnull = open(os.devnull, "w")
    for name in ("bifrost_wsgi", "bifrost_wsgi.access"):
        for h in logging.getLogger(name).handlers:
            if hasattr(h, "stream"):
                h.stream = devnull

    from bifrost_wsgi.answers import check_completion
    from bifrost_wsgi.app import make_app
    from bifrost_wsgi.routing import upstream
    from bifrost_wsgi.routing.context import RequestContext
    from bifrost_wsgi.routing.router import Answer
    from bifrost_wsgi.surfaces import openai_chat

    app = make_app({"providers": {"openai": {"keys": [{"value": "sk-bench", "models": []}],
                                             "network_config": {"base_url": f"http://127.0.0.1:{port}"}}}})
    d = app.router
    raw = body(stream=False)
    req = schema.parse_request(web.parse_json(raw))
    rt, target, translator = d.resolve(req.provider, req.model)
    ctx = RequestContext(request_id="x", deadline=time.monotonic() + 60)
    from mock_upstream import COMPLETION

    print("request side (per request)")
    row("json.loads(body) + json.dumps (the baseline's work)", best(lambda: json.dumps(json.loads(raw)), 20000))
    row("web.parse_json + schema.parse_request", best(lambda: schema.parse_request(web.parse_json(raw)), 20000))
    row("router.resolve (key choice, Target, translator)", best(lambda: d.resolve(req.provider, req.model), 20000))
    row("upstream.prepare (build_request + headers + credentials)",
        best(lambda: upstream.prepare(translator, target, req, ctx, stream=False), 20000))
    row("uuid.uuid4().hex (request id)", best(lambda: uuid.uuid4().hex, 50000))
    row("alt: os.urandom(16).hex()", best(lambda: os.urandom(16).hex(), 50000))

    def response_path():
        result = check_completion(rt.adapter.parse_response(COMPLETION, target))
        return web.dumps(openai_chat.render(Answer(result, "openai", "gpt-4o-mini", 1)))

    def response_alt():
        result = check_completion(json.loads(COMPLETION, object_pairs_hook=_no_nulls))
        return web.dumps(openai_chat.render(Answer(result, "openai", "gpt-4o-mini", 1)))

    print("response side (per request)")
    row("parse_response (loads + drop_nulls) + check + render + dumps", best(response_path, 20000))
    row("alt: loads(object_pairs_hook=no nulls) + completion + dumps", best(response_alt, 20000))
    row("json.loads + json.dumps of the answer (floor)", best(lambda: json.dumps(json.loads(COMPLETION)), 20000))

    print("observers (per request)")
    for obs in app.observers:
        name = type(obs).__name__

        def finish(obs=obs):
            c = RequestContext(request_id="0123456789abcdef", deadline=0.0, route="/v1/chat/completions")
            c.method, c.status, c.provider, c.model, c.attempts = "POST", 200, "openai", "gpt-4o-mini", 1
            c.usage = {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29}
            obs.request_started(c)
            obs.request_finished(c)

        row(f"{name}: request_started + request_finished", best(finish, 5000),
            "(access log to /dev/null)" if name == "AccessLog" else "")


def stream_side() -> None:
    from bifrost_wsgi.providers.base import drop_nulls
    from bifrost_wsgi.providers.openai_compat import OpenAIStream
    from bifrost_wsgi.routing.relay import StreamState
    from bifrost_wsgi.surfaces.openai_chat import ChatStreamEncoder
    from bifrost_wsgi.wire.sse import Event, SSEDecoder, encode
    from mock_upstream import stream_events

    framed = stream_events(3, True)[2]  # a content chunk, as one HTTP chunk
    event = framed.split(b"\r\n", 1)[1][:-2]  # b"data: {...}\n\n" (urllib3's read1 removes the framing)
    data = event[6:-2].decode()
    state = StreamState(time.monotonic())
    state.serve("openai", "gpt-4o-mini")
    state.id = "chatcmpl-bench0001"  # the role chunk came first
    encoder = ChatStreamEncoder()
    translator = OpenAIStream()
    translator.feed(Event(data))  # the first content chunk teaches the translator the stream's template
    decoder = SSEDecoder()

    def current():
        for ev in decoder.feed(event):
            for chunk in translator.feed(ev):
                chunk = state.take(chunk)
                if chunk is not None:
                    encoder.chunk(chunk, state)

    print(f"stream side (per event, {len(event)} bytes: an OpenAI content chunk)")
    row("current: SSEDecoder + OpenAIStream + StreamState.take + ChatStreamEncoder.chunk", best(current, 20000))
    ev0 = decoder.feed(event)[0]
    row("  OpenAIStream.feed alone (template)", best(lambda: translator.feed(ev0), 50000))
    item = translator.feed(ev0)[0]
    row("  take + encode alone (text chunk)", best(lambda: encoder.chunk(state.take(item), state), 50000))
    row("  SSEDecoder.feed alone", best(lambda: decoder.feed(event), 50000))
    row("  json.loads alone", best(lambda: json.loads(data), 50000))
    row("  providers.base.drop_nulls", best(lambda: drop_nulls(json.loads(data)), 50000), "incl. loads")
    row("  alt: strip nulls at chunk/choice/delta level only",
        best(lambda: strip_chunk_in_place(json.loads(data), drop_nulls), 50000), "incl. loads")
    row("  alt: loads(object_pairs_hook=no nulls)", best(lambda: json.loads(data, object_pairs_hook=_no_nulls), 50000))
    sample = drop_nulls(json.loads(data))
    sample["extra_fields"] = {"request_type": "chat_completion_stream", "provider": "openai",
                              "model_requested": "gpt-4o-mini", "chunk_index": 1, "latency": 0}
    row("  sse.encode of the stamped chunk", best(lambda: encode(sample), 50000))
    row("floor: bytes passthrough (b'data: ' + data + b'\\n\\n')", best(lambda: b"data: " + event[6:-2] + b"\n\n", 50000))


def transport_side(port: int) -> None:
    import requests
    import urllib3
    from requests.structures import CaseInsensitiveDict

    from bifrost_wsgi import transport
    from bifrost_wsgi.transport import Proxy, UpstreamRequest

    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    payload = body(stream=False).replace(b"openai/", b"")
    headers = {"Content-Type": "application/json", "Accept": "application/json", "Authorization": "Bearer sk-bench"}
    n = 1500
    print("transport (per non-streaming request to the mock; includes the mock's own time and loopback)")

    def gateway_send():
        upreq = UpstreamRequest("POST", url, dict(headers), payload)
        transport.send(upreq, timeout=30.0, proxy=Proxy(), stream=False).read()

    row("transport.send + read (the gateway's transport as it is now)", best(gateway_send, n))
    s = requests.Session()
    s.trust_env = False
    row("requests.Session.post, stream=False (baseline)", best(lambda: s.post(url, data=payload, headers=headers).content, n))
    adapter = s.get_adapter(url)

    def adapter_send():
        p = requests.PreparedRequest()
        p.method, p.url, p.body = "POST", url, payload
        p.headers = CaseInsensitiveDict(headers)
        p.headers["Content-Length"] = str(len(payload))
        p.hooks = {"response": []}
        r = adapter.send(p, stream=True, timeout=(10.0, 30.0))
        return r.content

    row("alt: HTTPAdapter.send with a hand-built PreparedRequest", best(adapter_send, n))
    pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=4, retries=False)
    timeout = urllib3.Timeout(connect=10.0, read=30.0)

    def urllib3_send():
        r = pool.urlopen("POST", "/v1/chat/completions", body=payload, headers=headers, retries=False,
                         redirect=False, preload_content=False, timeout=timeout)
        data = r.read()
        r.release_conn()
        return data

    row("alt: urllib3 HTTPConnectionPool.urlopen", best(urllib3_send, n))
    conn = http.client.HTTPConnection("127.0.0.1", port)

    def httpclient_send():
        conn.request("POST", "/v1/chat/completions", payload, headers)
        return conn.getresponse().read()

    row("floor: http.client keep-alive", best(httpclient_send, n))
    conn.close()
    pool.close()
    s.close()


def main() -> int:
    cpus = sorted(os.sched_getaffinity(0))
    procs = Procs()
    metrics_dir = tempfile.TemporaryDirectory(prefix="bifrost-micro-")
    os.environ.setdefault("BIFROST_METRICS_DIR", metrics_dir.name)
    try:
        mock, port = procs.start_mock(cpu=cpus[0] if len(cpus) > 1 else None)
        if len(cpus) > 1:
            os.sched_setaffinity(0, {cpus[1]})
        print(f"python {sys.version.split()[0]}, best of 5 loops")
        request_side(port)
        stream_side()
        transport_side(port)
        return 0
    finally:
        procs.stop_all()
        metrics_dir.cleanup()


if __name__ == "__main__":
    sys.exit(main())
