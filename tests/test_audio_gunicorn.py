"""Audio through the real server (bifrost-wsgi: gunicorn gthread): bytes are relayed as they arrive, and a
large answer passes without the worker holding it."""

from __future__ import annotations

import threading

import openai
import pytest
import requests

from tests.conftest import provider_config
from tests.fakes import Reply
from tests.procs import Gateway

pytestmark = pytest.mark.slow

MB = 1024 * 1024


@pytest.fixture
def live(upstream):
    gw = Gateway({"providers": {"openai": provider_config(upstream.url, default_request_timeout_in_seconds=30)}},
                 workers=1, threads=4)
    yield gw
    gw.stop()


def worker_pid(master: int) -> int:
    with open(f"/proc/{master}/task/{master}/children") as f:
        return int(f.read().split()[0])


def peak_rss_kib(pid: int) -> int:
    """VmHWM: the most resident memory the process ever had."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


class Gated:
    """Upstream body pieces: the first, then the rest only once the test has seen the first arrive."""

    def __init__(self, first: bytes, rest: list[bytes]) -> None:
        self.first, self.rest, self.gate = first, rest, threading.Event()

    def __iter__(self):
        yield self.first
        assert self.gate.wait(20), "the client never saw the first bytes"
        yield from self.rest


def test_first_audio_bytes_reach_the_client_before_the_upstream_finished(live, upstream):
    body = Gated(b"ID3-first-piece", [b"second", b"third"])
    upstream.add(Reply(chunks=body, content_type="audio/mpeg"))
    with openai.OpenAI(base_url=live.url + "/v1", api_key="unused", max_retries=0, timeout=30) as c:
        with c.audio.speech.with_streaming_response.create(model="openai/gpt-4o-mini-tts", voice="alloy",
                                                           input="hi") as resp:
            pieces = resp.iter_bytes()
            first = next(pieces)
            assert upstream.finished_streams == 0  # the upstream is still held at its gate
            body.gate.set()
            got = first + b"".join(pieces)
    assert got == b"ID3-first-piecesecondthird"


def test_a_30_mb_answer_passes_without_the_worker_holding_it(live, upstream):
    piece = bytes(range(256)) * 256  # 64 KiB
    count = 30 * MB // len(piece)
    # warm the worker (imports, pools) so its peak afterwards is the relay's doing
    upstream.add(Reply(chunks=[piece], content_type="audio/mpeg"), Reply(chunks=[piece] * count, content_type="audio/mpeg"))
    requests.post(live.url + "/v1/audio/speech", json={"model": "openai/tts-1", "voice": "a", "input": "x"}).close()
    worker = worker_pid(live.proc.pid)
    before = peak_rss_kib(worker)
    size = 0
    with requests.post(live.url + "/v1/audio/speech", json={"model": "openai/tts-1", "voice": "a", "input": "x"},
                       stream=True) as r:
        assert r.status_code == 200
        for chunk in r.iter_content(256 * 1024):
            size += len(chunk)
    assert size == count * len(piece)
    grown = peak_rss_kib(worker) - before
    assert grown < 8 * 1024, f"worker peak memory grew by {grown} KiB for a 30 MiB answer"


def test_a_30_mb_upload_is_streamed_to_the_provider_without_the_worker_holding_it(live, upstream):
    audio = bytes(range(256)) * (30 * MB // 256)
    upstream.add(Reply(json={"text": "warm"}), Reply(json={"text": "long"}))
    with openai.OpenAI(base_url=live.url + "/v1", api_key="unused", max_retries=0, timeout=60) as c:
        c.audio.transcriptions.create(model="openai/whisper-1", file=("warm.mp3", b"x" * 1000))
        worker = worker_pid(live.proc.pid)
        before = peak_rss_kib(worker)
        got = c.audio.transcriptions.create(model="openai/whisper-1", file=("long.mp3", audio, "audio/mpeg"))
    assert got.text == "long"
    rec = upstream.requests[1]
    assert len(rec.body) > len(audio) and audio in rec.body
    grown = peak_rss_kib(worker) - before
    assert grown < 8 * 1024, f"worker peak memory grew by {grown} KiB for a 30 MiB upload"


def test_a_failure_after_the_first_bytes_cuts_the_connection(live, upstream):
    """An audio file cannot say it is incomplete: the chunked body ends without its last chunk instead."""
    upstream.add(Reply(chunks=[b"ID3-partial-audio", b"more"], content_type="audio/mpeg", fault="truncate"))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.post(live.url + "/v1/audio/speech", json={"model": "openai/tts-1", "voice": "a", "input": "x"}).content
    assert requests.get(live.url + "/health").status_code == 200
