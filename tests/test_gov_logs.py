"""Request logs (CONTRACT §13): one row per request, streams and failures included, and ``/api/logs`` with
its filters, sorting, pagination and stats; on SQLite and PostgreSQL alike."""

import pytest
import requests

from tests.conftest import provider_config
from tests.fakes import Reply, chat_completion, openai_chunks, sse
from tests.govfix import logs, pg_server, stores, wait_logs  # noqa: F401 - fixtures

HI = [{"role": "user", "content": "tell me about zebras"}]


@pytest.fixture
def gw(serve, upstream, stores):
    def reply(rec):
        body = rec.json or {}
        if rec.method == "GET":  # the provider's own model list, for /v1/models
            return Reply(json={"object": "list", "data": []})
        if body["model"] == "broken":
            return Reply(status=400, json={"error": {"message": "bad model", "type": "invalid_request_error"}})
        if body.get("stream"):
            return Reply(chunks=sse(*openai_chunks("a", "b", "c")))
        return Reply(json=chat_completion("zebras are striped"))

    upstream.handler = reply
    base = serve({"providers": {"openai": provider_config(upstream.url), "groq": provider_config(upstream.url)},
                  **stores})
    chat = lambda **body: requests.post(base + "/v1/chat/completions", json={"messages": HI, **body})
    assert chat(model="openai/gpt-4o-mini", temperature=0.5).status_code == 200
    assert chat(model="groq/llama", stream=True).status_code == 200
    assert chat(model="openai/broken").status_code == 400
    assert requests.get(base + "/v1/models").status_code == 200
    wait_logs(base, 4)
    return base


def test_one_row_per_request_with_the_contract_fields(gw):
    rows = {r["model"]: r for r in logs(gw)["logs"]}
    done = rows["gpt-4o-mini"]
    assert done["provider"] == "openai" and done["status"] == "success" and done["object"] == "chat_completion"
    assert (done["prompt_tokens"], done["completion_tokens"], done["total_tokens"]) == (9, 3, 12)
    assert done["input_history"] == HI and done["params"] == {"temperature": 0.5}
    assert done["latency"] > 0 and done["timestamp"].endswith("Z")
    stream = rows["llama"]
    assert stream["stream"] is True and stream["object"] == "chat_completion_stream"
    assert stream["total_tokens"] == 12 and stream["ttft"] is not None
    failed = rows["broken"]
    assert failed["status"] == "error" and failed["error_details"]["status"] == 400
    assert set(done) >= {"id", "timestamp", "object", "provider", "model", "status", "stream", "latency", "ttft",
                         "prompt_tokens", "completion_tokens", "total_tokens", "cost", "number_of_retries",
                         "fallback_index", "selected_key_name", "virtual_key_id", "virtual_key_name", "team_id",
                         "customer_id", "stop_reason", "error_details", "input_history", "output_message", "params"}
    assert requests.get(f"{gw}/api/logs/{done['id']}").json()["model"] == "gpt-4o-mini"


@pytest.mark.parametrize("query,models", [
    ("?providers=groq", ["llama"]),
    ("?providers=openai,groq&status=error", ["broken"]),
    ("?models=gpt-4o-mini,broken&sort_by=tokens&order=asc", ["broken", "gpt-4o-mini"]),
    ("?models=gpt-4o-mini,broken&sort_by=tokens", ["gpt-4o-mini", "broken"]),
    ("?objects=chat_completion_stream", ["llama"]),
    ("?min_tokens=1&max_tokens=12&status=success", None),  # both successes, any order
    ("?content_search=ZEBRAS&providers=openai&status=success", ["gpt-4o-mini"]),
    ("?start_time=2000-01-01T00:00:00Z&end_time=2001-01-01T00:00:00Z", []),
    ("?min_cost=1", []),
])
def test_filters(gw, query, models):
    found = [r["model"] for r in logs(gw, query)["logs"]]
    if models is None:
        assert sorted(found) == ["gpt-4o-mini", "llama"]
    else:
        assert found == models


def test_pagination_sort_and_stats(gw):
    first = logs(gw, "?limit=2&offset=0&sort_by=timestamp&order=asc")
    second = logs(gw, "?limit=2&offset=2&sort_by=timestamp&order=asc")
    assert first["pagination"] == {"limit": 2, "offset": 0, "sort_by": "timestamp", "order": "asc", "total_count": 4}
    ids = [r["id"] for r in first["logs"] + second["logs"]]
    assert len(set(ids)) == 4
    stamps = [r["timestamp"] for r in first["logs"] + second["logs"]]
    assert stamps == sorted(stamps)
    stats = requests.get(gw + "/api/logs/stats?objects=chat_completion,chat_completion_stream").json()
    assert stats["total_requests"] == 3 and stats["success_rate"] == pytest.approx(66.67)
    assert stats["total_tokens"] == 24 and stats["average_latency"] > 0
    assert first["stats"]["total_requests"] == 4


@pytest.mark.parametrize("query,param,message", [
    ("?limit=1001", "limit", "limit cannot exceed 1000"),
    ("?limit=x", "limit", "invalid limit: must be a whole number, at least 0"),
    ("?sort_by=name", "sort_by", "invalid sort_by: must be one of timestamp, latency, tokens, cost"),
    ("?order=up", "order", "invalid order: must be asc or desc"),
    ("?min_latency=fast", "min_latency", "invalid min_latency: must be a number"),
    ("?start_time=yesterday", "start_time", "invalid start_time: must be an RFC 3339 time"),
])
def test_bad_queries_are_400_naming_the_parameter(gw, query, param, message):
    r = requests.get(gw + "/api/logs" + query)
    assert r.status_code == 400
    assert r.json()["error"] == {"message": message, "type": "invalid_request_error", "param": param}


def test_unknown_log_is_404(gw):
    r = requests.get(gw + "/api/logs/nope")
    assert r.status_code == 404 and r.json()["error"]["message"] == "log not found"


@pytest.mark.parametrize("client,has_rows,has_content", [
    ({"disable_content_logging": True}, True, False),
    ({"enable_logging": False}, False, False),
])
def test_logging_switches(serve, upstream, client, has_rows, has_content):
    upstream.handler = lambda rec: Reply(json=chat_completion("ok"))
    base = serve({"client": client, "providers": {"openai": provider_config(upstream.url)}})
    assert requests.post(base + "/v1/chat/completions",
                         json={"model": "openai/gpt-4o-mini", "messages": HI}).status_code == 200
    r = requests.get(base + "/api/logs")
    if not has_rows:
        assert r.status_code == 503
        return
    row = wait_logs(base, 1)["logs"][0]
    assert row["input_history"] is None and row["params"] is None and row["total_tokens"] == 12


def test_a_cancelled_stream_is_logged_with_what_it_saw(serve, upstream):
    chunks = openai_chunks(*["x"] * 40)
    # usage arrives early here (some providers send it with the first chunk), then the stream trickles
    upstream.handler = lambda rec: Reply(chunks=sse(chunks[0], {**chunks[-1], "choices": []},
                                                    *[item for c in chunks[1:-2] for item in (c, 0.05)]))
    base = serve({"providers": {"openai": provider_config(upstream.url)}})
    with requests.post(base + "/v1/chat/completions", stream=True,
                       json={"model": "openai/gpt-4o-mini", "messages": HI, "stream": True}) as r:
        next(r.iter_lines())
    row = wait_logs(base, 1)["logs"][0]
    assert row["status"] == "error" and row["error_details"]["type"] == "client_disconnected"
    assert row["stream"] is True and row["total_tokens"] == 49
