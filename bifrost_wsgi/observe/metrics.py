"""Prometheus metrics for ``GET /metrics``, summed over every gunicorn worker, with the stdlib only.

Names follow Bifrost's Prometheus plugin where it has them (``http_requests_total``,
``bifrost_upstream_requests_total``, …); retries, fallbacks, circuit breakers, in-flight work and client
disconnects are ours.

Where the values live:

- a single process with no metrics directory (an app that mounts the gateway, the test server): a dict;
- gunicorn: ``BIFROST_METRICS_DIR`` (else ``PROMETHEUS_MULTIPROC_DIR``) names a directory the master
  prepares before it forks (``prepare_directory``: deploy/gunicorn.conf.py and the console script call it,
  and create a private temporary directory when neither variable is set). Each worker keeps its values in
  two memory-mapped files of its own, updated in place — ``bifrost-counters-<pid>.metrics`` (counters and
  histograms) and ``bifrost-gauges-<pid>.metrics`` — and a scrape, whichever worker answers it, adds up
  every file. When a worker exits, the master's ``child_exit`` hook (``worker_exited``) deletes its gauges
  (what it had in flight is no longer in flight) and folds its counters into
  ``bifrost-counters-archive.metrics``: totals never go backwards when ``max_requests`` recycles a worker,
  and the number of files stays bounded. A ``flock`` keeps scrapes and that fold apart.

Label values come from clients (model names, fallbacks) and upstreams (error types), so none can break a
scrape or grow it without bound: each value is cut to MAX_LABEL_CHARS and made encodable (``label_value``)
when recorded, and again when read back from files and rendered; provider, model and reason labels keep
the names the config gives plus the first few others per process, then "other" (``Bounded``); the archive
is bounded the same way (``bound_archive``); a status is its 3-digit code.
"""

from __future__ import annotations

import fcntl
import json
import logging
import mmap
import os
import shutil
import struct
import tempfile
import threading
import time
from contextlib import contextmanager

from ..governance.virtual_keys import label as vk_label

log = logging.getLogger("bifrost_wsgi.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DIR_VARIABLES = ("BIFROST_METRICS_DIR", "PROMETHEUS_MULTIPROC_DIR")
_OWNED_VARIABLE = "BIFROST_METRICS_DIR_CREATED"  # set when prepare_directory made the directory itself
_PREFIX, _SUFFIX = "bifrost-", ".metrics"
_ARCHIVE = "bifrost-counters-archive.metrics"
_LOCK_FILE = "bifrost-metrics.lock"
# The last guard (each label is bounded on its own, see Bounded): past this many label sets per family and
# process, new ones are counted under the label value "overflow".
MAX_SERIES = 5000
# Label values come from clients (model names, fallbacks) and upstreams (error types): each is cut to this
# many characters, the cut marked, so one long name cannot make the files and the page large.
MAX_LABEL_CHARS = 128
_CUT_MARK = "\u2026"
# Model names the config does not name get a label of their own for the first this-many per process, then
# "other"; the variable overrides it.
DEFAULT_MAX_MODELS = 100
MAX_MODELS_VARIABLE = "BIFROST_METRICS_MAX_MODELS"
# error types are ours, or an upstream's own words: bounded the same way
_MAX_REASONS = 50
OTHER = "other"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
_CIRCUIT_STATES = ("closed", "open", "half_open")

_pid = os.getpid()  # os.getpid() is a system call: kept here and renewed in a forked child


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)

# --- label values from outside -----------------------------------------------------------------------------


def label_value(value) -> str:
    """Any value as a label value: at most MAX_LABEL_CHARS characters (a cut ends in "…") of text that UTF-8
    can encode (a lone surrogate, which JSON lets a client send, becomes the six characters ``\\udXXX``).
    Idempotent, so values read back from files go through it again safely."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_LABEL_CHARS:
        text = text[:MAX_LABEL_CHARS - 1] + _CUT_MARK  # cut first: a 1 MB name costs no more than a short one
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            text = text.encode("utf-8", "backslashreplace").decode()
            if len(text) > MAX_LABEL_CHARS:
                text = text[:MAX_LABEL_CHARS - 1] + _CUT_MARK
    return text


def status_label(status) -> str:
    """An HTTP status as its 3-digit code, whatever code a refusal uses (a bounded set); else "other"."""
    return str(status) if type(status) is int and 100 <= status <= 599 else OTHER


class Bounded:
    """One label fed from outside: the values in ``known``, then the first ``limit`` others this process
    sees, then "other" — so no client can add series (memory, file and page size) without bound."""

    __slots__ = ("known", "limit", "_seen", "_lock")

    def __init__(self, known=(), *, limit: int) -> None:
        self.known = frozenset(label_value(v) for v in known)
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value) -> str:
        text = label_value(value)
        if text in self.known or text in self._seen:
            return text
        with self._lock:
            if len(self._seen) < self.limit:
                self._seen.add(text)
                return text
        return OTHER


def configured_models(config) -> set[str]:
    """Every model name the config names: keys' ``models``, Azure and Bedrock ``deployments``, and the
    virtual keys' ``allowed_models`` ("*" is not a name)."""
    names: set[str] = set()
    for conf in config.providers.values():
        for key in conf.keys:
            names.update(key.models)
            names.update(key.deployments)
    for vk in config.virtual_keys:
        for models in vk.providers.values():
            names.update(models)
    names.discard("*")
    return names


def max_models_setting(environ=None) -> int:
    """``BIFROST_METRICS_MAX_MODELS`` (a whole number >= 0), else DEFAULT_MAX_MODELS."""
    raw = (os.environ if environ is None else environ).get(MAX_MODELS_VARIABLE, "").strip()
    if raw.isdecimal():
        return int(raw)
    if raw:
        log.warning("%s=%r is not a whole number; using %d", MAX_MODELS_VARIABLE, raw, DEFAULT_MAX_MODELS)
    return DEFAULT_MAX_MODELS

# --- metric families ---------------------------------------------------------------------------------

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60)


class Family:
    """One metric: name, type, help text, label names; makes the storage key of each sample."""

    __slots__ = ("name", "kind", "help", "labels", "buckets", "_keys", "_cap", "_overflowed")

    def __init__(self, name: str, kind: str, help: str, labels: tuple = (), buckets: tuple = ()) -> None:
        self.name, self.kind, self.help, self.labels, self.buckets = name, kind, help, labels, buckets
        self._keys: dict[tuple, str] = {}
        self._cap = MAX_SERIES * (len(buckets) + 2 if buckets else 1)
        self._overflowed = False

    def key(self, values: tuple, part=None) -> str:
        """``part``: None for a plain sample, a bucket bound, "sum" or "count" for histograms."""
        key = self._keys.get((values, part))
        if key is not None:
            return key
        if len(self._keys) >= self._cap:
            if not self._overflowed:
                self._overflowed = True
                log.warning("metric %s has more than %d label sets; counting new ones as \"overflow\"",
                            self.name, MAX_SERIES)
            values = ("overflow",) * len(values)
            key = self._keys.get((values, part))
            if key is not None:
                return key
        key = _key_text(self.name, values, part)
        self._keys[(values, part)] = key
        return key


def _key_text(name: str, values: tuple, part) -> str:
    return json.dumps([name, list(values), part], separators=(",", ":"))


_BASE = ("provider", "model", "method", "virtual_key_id", "virtual_key_name")

HTTP_REQUESTS = Family("http_requests_total", "counter", "HTTP requests by path, method and status.",
                       ("path", "method", "status"))
HTTP_DURATION = Family("http_request_duration_seconds", "histogram",
                       "HTTP request duration in seconds (streams: until the stream ends).",
                       ("path", "method", "status"), HTTP_BUCKETS)
UPSTREAM_REQUESTS = Family("bifrost_upstream_requests_total", "counter",
                           "Chat requests sent to a provider (labels name the target that answered or failed last).",
                           _BASE)
SUCCESS_REQUESTS = Family("bifrost_success_requests_total", "counter", "Chat requests answered completely.", _BASE)
ERROR_REQUESTS = Family("bifrost_error_requests_total", "counter",
                        "Chat requests that failed, by error type (streams that failed after the first byte too).",
                        (*_BASE, "reason"))
UPSTREAM_LATENCY = Family("bifrost_upstream_latency_seconds", "histogram",
                          "Chat request latency in seconds, retries and fallbacks included (streams: until the end).",
                          (*_BASE, "is_success"), LATENCY_BUCKETS)
FIRST_TOKEN = Family("bifrost_stream_first_token_latency_seconds", "histogram",
                     "Seconds from the request to the first streamed chunk sent to the client.", _BASE, TTFT_BUCKETS)
INPUT_TOKENS = Family("bifrost_input_tokens_total", "counter", "Prompt tokens reported by providers.", _BASE)
OUTPUT_TOKENS = Family("bifrost_output_tokens_total", "counter", "Completion tokens reported by providers.", _BASE)
RETRIES = Family("bifrost_retries_total", "counter", "Retries of upstream calls.", _BASE)
FALLBACKS = Family("bifrost_fallbacks_total", "counter",
                   "Chat requests answered (or failed last) by a fallback rather than the primary target.", _BASE)
CLIENT_DISCONNECTS = Family("bifrost_client_disconnects_total", "counter",
                            "Streams the client left before the end (the upstream call was closed at once).", _BASE)
IN_FLIGHT = Family("bifrost_in_flight_requests", "gauge", "Chat requests being handled now (streams included).")
IN_FLIGHT_STREAMS = Family("bifrost_in_flight_streams", "gauge", "Streams being relayed to clients now.")
CIRCUITS = Family("bifrost_circuit_breaker_state", "gauge",
                  "Circuits of provider/model in this state, over all worker processes (model=\"other\" "
                  "holds many).",
                  ("provider", "model", "state"))
LOG_ROWS_DROPPED = Family("bifrost_log_rows_dropped_total", "counter",
                          "Request log rows lost because the logs store was slow, down or its queue full.")

FAMILIES = (HTTP_REQUESTS, HTTP_DURATION, UPSTREAM_REQUESTS, SUCCESS_REQUESTS, ERROR_REQUESTS, UPSTREAM_LATENCY,
            FIRST_TOKEN, INPUT_TOKENS, OUTPUT_TOKENS, RETRIES, FALLBACKS, CLIENT_DISCONNECTS, IN_FLIGHT,
            IN_FLIGHT_STREAMS, CIRCUITS, LOG_ROWS_DROPPED)


def observe(adds: list, family: Family, values: tuple, amount: float) -> None:
    """One histogram observation, as ``(key, amount)`` additions: its own bucket (made cumulative when
    rendered), sum and count."""
    for bound in family.buckets:
        if amount <= bound:
            adds.append((family.key(values, bound), 1.0))
            break
    adds.append((family.key(values, "sum"), amount))
    adds.append((family.key(values, "count"), 1.0))


# --- where values live --------------------------------------------------------------------------------


class MemoryValues:
    """One process's values in a dict."""

    def __init__(self) -> None:
        self._values: dict[str, float] = {}
        self._lock = threading.Lock()

    def add_all(self, adds) -> None:
        values = self._values
        with self._lock:
            for key, amount in adds:
                values[key] = values.get(key, 0.0) + amount

    def set(self, key: str, value: float) -> None:
        with self._lock:
            self._values[key] = value

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self._values)


_HEADER = struct.Struct("<Q")  # bytes in use, header included
_LENGTH = struct.Struct("<I")
_VALUE = struct.Struct("<d")
_INITIAL_SIZE = 64 * 1024


def _align8(n: int) -> int:
    return (n + 7) & ~7


def _records(buf, used: int):
    """``(key, offset of its value)`` for each complete record below ``used``."""
    pos = _HEADER.size
    while pos + _LENGTH.size <= used:
        (length,) = _LENGTH.unpack_from(buf, pos)
        value_at = _align8(pos + _LENGTH.size + length)
        if value_at + _VALUE.size > used:
            break
        # "replace": a damaged file must not make every scrape fail
        yield bytes(buf[pos + _LENGTH.size:pos + _LENGTH.size + length]).decode("utf-8", "replace"), value_at
        pos = value_at + _VALUE.size


class FileValues:
    """One process's values in a memory-mapped file that other processes may read at any time.

    Layout: an 8-byte header holding the number of bytes in use, then records ``[uint32 key length]
    [UTF-8 key, zero-padded so the value is 8-byte aligned][float64 value]``. A record is written whole
    before the header grows to cover it, so a reader never sees half of one; an update rewrites one aligned
    8-byte value in place (no system call). Writing a key cannot fail (``_encode_key``), nor can reading one.
    """

    def __init__(self, path: str, *, keep: bool) -> None:
        self.path = path
        self._lock = threading.Lock()
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._file = os.fdopen(fd, "r+b", buffering=0)
        if not keep:
            self._file.truncate(0)
        size = os.fstat(fd).st_size
        if size < _INITIAL_SIZE:
            size = _INITIAL_SIZE
            self._file.truncate(size)
        self._map = mmap.mmap(fd, size)
        used = _HEADER.unpack_from(self._map, 0)[0]
        if used < _HEADER.size or used > size:
            used = _HEADER.size
            _HEADER.pack_into(self._map, 0, used)
        self._used = used
        self._slots = {key: at for key, at in _records(self._map, used)}

    def add_all(self, adds) -> None:
        """Several additions under one lock (a request's counters are updated together)."""
        with self._lock:
            slots, m = self._slots, self._map
            for key, amount in adds:
                at = slots.get(key)
                if at is None:
                    at = self._append(key)
                    m = self._map  # _append may have grown (remapped) the file
                _VALUE.pack_into(m, at, _VALUE.unpack_from(m, at)[0] + amount)

    def set(self, key: str, value: float) -> None:
        with self._lock:
            at = self._slots.get(key)
            if at is None:
                at = self._append(key)
            _VALUE.pack_into(self._map, at, value)

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {key: _VALUE.unpack_from(self._map, at)[0] for key, at in self._slots.items()}

    def close(self) -> None:
        with self._lock:
            self._map.close()
            self._file.close()

    def _append(self, key: str) -> int:
        raw = _encode_key(key)
        start = self._used
        value_at = _align8(start + _LENGTH.size + len(raw))
        end = value_at + _VALUE.size
        if end > len(self._map):
            self._grow(end)
        _LENGTH.pack_into(self._map, start, len(raw))
        self._map[start + _LENGTH.size:start + _LENGTH.size + len(raw)] = raw
        _VALUE.pack_into(self._map, value_at, 0.0)
        _HEADER.pack_into(self._map, 0, end)  # the record is complete: now readers may see it
        self._used = end
        self._slots[key] = value_at
        return value_at

    def _grow(self, needed: int) -> None:
        size = len(self._map)
        while size < needed:
            size *= 2
        self._map.close()
        self._file.truncate(size)
        self._map = mmap.mmap(self._file.fileno(), size)


def _encode_key(key: str) -> bytes:
    # Family.key makes ASCII keys; any other text (a lone surrogate) is escaped rather than fatal
    return key.encode("utf-8", "backslashreplace")


def read_file(path: str) -> dict[str, float]:
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except FileNotFoundError:
        return {}
    if len(buf) < _HEADER.size:
        return {}
    used = min(_HEADER.unpack_from(buf, 0)[0], len(buf))
    return {key: _VALUE.unpack_from(buf, at)[0] for key, at in _records(buf, used)}


def write_file(path: str, values: dict[str, float]) -> None:
    """Replace ``path`` atomically with a file in the FileValues layout holding ``values``."""
    out = bytearray(_HEADER.size)
    for key, value in values.items():
        raw = _encode_key(key)
        out += _LENGTH.pack(len(raw)) + raw
        out += bytes(_align8(len(out)) - len(out))
        out += _VALUE.pack(value)
    _HEADER.pack_into(out, 0, len(out))
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(out)
    os.replace(tmp, path)


# --- the multiprocess directory (gunicorn master hooks) --------------------------------------------------


def metrics_directory(environ=None) -> str | None:
    env = os.environ if environ is None else environ
    for name in DIR_VARIABLES:
        if env.get(name):
            return env[name]
    return None


def _ours(name: str) -> bool:
    return name.startswith(_PREFIX) and (name.endswith(_SUFFIX) or name.endswith(".tmp"))


@contextmanager
def _locked(directory: str, operation: int):
    with open(os.path.join(directory, _LOCK_FILE), "a+b") as f:
        fcntl.flock(f, operation)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def prepare_directory(environ=None) -> str:
    """In the gunicorn master, before workers fork: the metrics directory, existing and emptied of an
    earlier run's files; a private temporary one (exported as ``BIFROST_METRICS_DIR``) when none is set."""
    env = os.environ if environ is None else environ
    directory = metrics_directory(env)
    if directory is None:
        directory = tempfile.mkdtemp(prefix="bifrost-metrics-")
        env["BIFROST_METRICS_DIR"] = directory
        env[_OWNED_VARIABLE] = directory
        return directory
    os.makedirs(directory, mode=0o700, exist_ok=True)
    for entry in os.scandir(directory):
        if _ours(entry.name):
            _unlink(entry.path)
    return directory


def remove_directory(environ=None) -> None:
    """gunicorn ``on_exit``: delete the directory prepare_directory created (never one the user named)."""
    env = os.environ if environ is None else environ
    created = env.get(_OWNED_VARIABLE)
    if created and created == metrics_directory(env):
        shutil.rmtree(created, ignore_errors=True)


def worker_exited(pid: int, environ=None) -> None:
    """gunicorn ``child_exit`` hook, in the master: drop a dead worker's gauges, archive its counters."""
    directory = metrics_directory(environ)
    if directory is None:
        return
    _unlink(os.path.join(directory, f"{_PREFIX}gauges-{pid}{_SUFFIX}"))
    dead = os.path.join(directory, f"{_PREFIX}counters-{pid}{_SUFFIX}")
    if not os.path.exists(dead):
        return
    archive = os.path.join(directory, _ARCHIVE)
    with _locked(directory, fcntl.LOCK_EX):
        totals = read_file(archive)
        for key, value in read_file(dead).items():
            totals[key] = totals.get(key, 0.0) + value
        write_file(archive, bound_archive(totals, max_models_setting(environ)))
        _unlink(dead)


def bound_archive(totals: dict[str, float], max_models: int) -> dict[str, float]:
    """Each worker has its own first ``max_models`` names, so every recycled worker could bring new ones:
    the archive keeps the first ``max_models`` provider and model values (and _MAX_REASONS reasons) it
    holds (those already archived come first), and adds the rest up under "other"."""
    limits = {"provider": max_models, "model": max_models, "reason": _MAX_REASONS}
    kept: dict[str, set] = {name: set() for name in limits}
    positions = {fam.name: [(at, name) for at, name in enumerate(fam.labels) if name in limits] for fam in FAMILIES}
    out: dict[str, float] = {}
    for key, value in totals.items():
        parsed = _parse_key(key)
        if parsed is None or parsed[0] not in positions:
            continue
        name, labels, part = parsed
        labels = list(labels)
        for at, label in positions[name]:
            seen = kept[label]
            if labels[at] != OTHER and labels[at] not in seen:
                if len(seen) < limits[label]:
                    seen.add(labels[at])
                else:
                    labels[at] = OTHER
        key = _key_text(name, labels, part)
        out[key] = out.get(key, 0.0) + value
    return out


def collect(directory: str) -> dict[str, float]:
    """Every worker's values (and the archive of dead workers' counters), summed per sample."""
    totals: dict[str, float] = {}
    with _locked(directory, fcntl.LOCK_SH):
        for entry in os.scandir(directory):
            if entry.name.startswith(_PREFIX) and entry.name.endswith(_SUFFIX):
                for key, value in read_file(entry.path).items():
                    totals[key] = totals.get(key, 0.0) + value
    return totals


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# --- the text exposition format ----------------------------------------------------------------------------


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(names: tuple, values: tuple) -> str:
    if not names:
        return ""
    return "{" + ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values)) + "}"


def _parse_key(key: str):
    """``(family name, label values, part)`` of a stored key, label values made safe again (files outlive
    the code that wrote them: an archive, a damaged file); None when the key is not one of ours."""
    try:
        name, label_values, part = json.loads(key)
        hash(part)
        return name, tuple(label_value(v) for v in label_values), part
    except (ValueError, TypeError):
        return None


def _number(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def exposition(values: dict[str, float]) -> bytes:
    """Samples keyed by ``Family.key`` → Prometheus text format 0.0.4."""
    series: dict[str, dict[tuple, dict]] = {}
    for key, value in values.items():
        parsed = _parse_key(key)
        if parsed is None:
            continue
        name, label_values, part = parsed
        # values that became equal when made safe are one series: a page must not repeat a series
        parts = series.setdefault(name, {}).setdefault(label_values, {})
        parts[part] = parts.get(part, 0.0) + value
    lines = []
    for fam in FAMILIES:
        lines.append(f"# HELP {fam.name} {fam.help}")
        lines.append(f"# TYPE {fam.name} {fam.kind}")
        found = series.get(fam.name) or ({(): {}} if not fam.labels and fam.kind != "histogram" else {})
        for label_values in sorted(found):
            parts = found[label_values]
            if fam.kind != "histogram":
                lines.append(f"{fam.name}{_labels(fam.labels, label_values)} {_number(parts.get(None, 0.0))}")
                continue
            names = (*fam.labels, "le")
            running = 0.0
            for bound in fam.buckets:
                running += parts.get(bound, 0.0)
                lines.append(f"{fam.name}_bucket{_labels(names, (*label_values, _number(bound)))} {_number(running)}")
            count = parts.get("count", 0.0)
            lines.append(f"{fam.name}_bucket{_labels(names, (*label_values, '+Inf'))} {_number(count)}")
            lines.append(f"{fam.name}_sum{_labels(fam.labels, label_values)} {_number(parts.get('sum', 0.0))}")
            lines.append(f"{fam.name}_count{_labels(fam.labels, label_values)} {_number(count)}")
    return ("\n".join(lines) + "\n").encode("utf-8", "backslashreplace")


# --- the observer -------------------------------------------------------------------------------------------


class Metrics:
    """The gateway's metrics observer (``request_started`` / ``stream_started`` / ``request_finished``) and
    the ``/metrics`` page (``render``).

    :param breakers: the dispatcher's ``Breakers``, whose states are published per worker
    :param paths: the app's routes; any other path is counted as ``path="unmatched"``
    :param virtual_keys: the configured virtual keys, to turn ``ctx.virtual_key`` into id and name labels
        (default: the config's); any other key is labelled ""
    :param config: the GatewayConfig: only its providers are provider labels (others are "other"), and the
        models it names are always model labels. Without it every provider name is bounded like a model.
    :param max_models: how many other model names get a label of their own in this process (default
        ``BIFROST_METRICS_MAX_MODELS``, else 100); the rest are "other"
    :param dropped_rows: ``() -> int``, the request log rows this process lost so far (the log writer's
        count); published when a request ends and when the page is rendered
    """

    def __init__(self, *, breakers=None, paths=(), virtual_keys=(), config=None, max_models: int | None = None,
                 dropped_rows=None) -> None:
        self.breakers = breakers
        self.dropped_rows = dropped_rows
        self._dropped_shown = 0
        self.paths = frozenset(paths)
        if max_models is None:
            max_models = max_models_setting()
        if config is not None:
            virtual_keys = virtual_keys or config.virtual_keys
            self.provider_label = Bounded(config.providers, limit=0)
            self.model_label = Bounded(configured_models(config), limit=max_models)
        else:
            self.provider_label = Bounded(limit=max_models)
            self.model_label = Bounded(limit=max_models)
        self.reason_label = Bounded(limit=_MAX_REASONS)
        self.vk_labels = {vk_label(vk): (label_value(vk.id), label_value(vk.name)) for vk in virtual_keys}
        self._lock = threading.Lock()
        self._publish_lock = threading.Lock()
        self._pid = 0
        self._directory: str | None = None
        self._counters = self._gauges = None
        self._in_flight: set[int] = set()
        self._streams: set[int] = set()
        self._circuits_shown: dict[tuple, tuple] = {}  # breaker key -> (provider, model, state) labels
        self._circuit_counts: dict[tuple, float] = {}  # (provider, model, state) labels -> circuits
        self._warned = False

    def _stores(self):
        """This process's (counters, gauges); opened on first use in each process, so a fork (gunicorn's
        --preload included) never shares the parent's files."""
        pid = _pid
        if self._pid != pid:
            with self._lock:
                if self._pid != pid:
                    directory = metrics_directory()
                    if directory:
                        self._counters = FileValues(os.path.join(directory, f"{_PREFIX}counters-{pid}{_SUFFIX}"),
                                                    keep=True)
                        self._gauges = FileValues(os.path.join(directory, f"{_PREFIX}gauges-{pid}{_SUFFIX}"),
                                                  keep=False)
                    else:
                        self._counters, self._gauges = MemoryValues(), MemoryValues()
                    self._directory = directory
                    self._in_flight, self._streams = set(), set()
                    self._circuits_shown, self._circuit_counts = {}, {}
                    self._dropped_shown = 0
                    self._pid = pid
        return self._counters, self._gauges

    # observer protocol

    def request_started(self, ctx) -> None:
        gauges = self._stores()[1]
        with self._lock:
            self._in_flight.add(id(ctx))
            gauges.set(IN_FLIGHT.key(()), len(self._in_flight))

    def stream_started(self, ctx) -> None:
        gauges = self._stores()[1]
        with self._lock:
            self._streams.add(id(ctx))
            gauges.set(IN_FLIGHT_STREAMS.key(()), len(self._streams))

    def request_finished(self, ctx) -> None:
        duration = time.monotonic() - ctx.started
        counters, gauges = self._stores()
        with self._lock:
            if id(ctx) in self._in_flight:
                self._in_flight.discard(id(ctx))
                gauges.set(IN_FLIGHT.key(()), len(self._in_flight))
            if id(ctx) in self._streams:
                self._streams.discard(id(ctx))
                gauges.set(IN_FLIGHT_STREAMS.key(()), len(self._streams))
        path = ctx.route if ctx.route in self.paths else "unmatched"
        method = ctx.method if ctx.method in _METHODS else "other"
        http = (path, method, status_label(ctx.http_status or ctx.status))
        adds = [(HTTP_REQUESTS.key(http), 1.0)]
        observe(adds, HTTP_DURATION, http, duration)
        # counted upstream: requests that reached a provider, or that its open circuit refused
        if ctx.attempts or ctx.error_type == "circuit_open":
            self._upstream(adds, ctx, duration)
        counters.add_all(adds)
        self._publish_circuits(gauges)
        self._publish_dropped(counters)

    def _publish_dropped(self, counters) -> None:
        """The writer's own count is this process's total: written as it is (the page sums processes)."""
        if self.dropped_rows is None:
            return
        dropped = self.dropped_rows()
        if dropped != self._dropped_shown:
            with self._publish_lock:  # an older count must not overwrite a newer one
                dropped = max(self.dropped_rows(), self._dropped_shown)
                self._dropped_shown = dropped
                counters.set(LOG_ROWS_DROPPED.key(()), float(dropped))

    def _upstream(self, adds: list, ctx, duration: float) -> None:
        vk_id, vk_name = self.vk_labels.get(ctx.virtual_key, ("", ""))
        base = (self.provider_label(ctx.provider), self.model_label(ctx.model),
                "chat_completion_stream" if ctx.stream else "chat_completion", vk_id, vk_name)
        adds.append((UPSTREAM_REQUESTS.key(base), 1.0))
        success = ctx.status == 200 and not ctx.error_type and not ctx.client_disconnected
        if success:
            adds.append((SUCCESS_REQUESTS.key(base), 1.0))
        elif ctx.client_disconnected:
            adds.append((CLIENT_DISCONNECTS.key(base), 1.0))
        else:
            adds.append((ERROR_REQUESTS.key((*base, self.reason_label(ctx.error_type or "unknown"))), 1.0))
        observe(adds, UPSTREAM_LATENCY, (*base, "true" if success else "false"), duration)
        if ctx.ttft is not None:
            observe(adds, FIRST_TOKEN, base, ctx.ttft)
        usage = ctx.usage or {}
        for family, field in ((INPUT_TOKENS, "prompt_tokens"), (OUTPUT_TOKENS, "completion_tokens")):
            tokens = usage.get(field)
            if isinstance(tokens, int) and tokens > 0:
                adds.append((family.key(base), float(tokens)))
        if ctx.retries:
            adds.append((RETRIES.key(base), float(ctx.retries)))
        if ctx.fallback_index:
            adds.append((FALLBACKS.key(base), 1.0))

    def _publish_circuits(self, gauges) -> None:
        """This worker's number of circuits in each state per provider/model label (0/1 for a model with a
        label of its own). They only change while a request runs; only what changed is rewritten."""
        if self.breakers is None:
            return
        with self._publish_lock:  # one publisher at a time: an older count must not overwrite a newer one
            changes = self.breakers.changes()
            if not changes:
                return
            shown, counts = self._circuits_shown, self._circuit_counts
            touched = set()
            for key, state in changes.items():
                before = shown.pop(key, None)
                if before is not None:
                    counts[before] -= 1.0
                    touched.add(before[:2])
                if state is not None:  # None: dropped from the table
                    labels = (self.provider_label(key[0]), self.model_label(key[1]))
                    shown[key] = (*labels, state)
                    counts[shown[key]] = counts.get(shown[key], 0.0) + 1.0
                    touched.add(labels)
            for labels in touched:
                for name in _CIRCUIT_STATES:
                    gauges.set(CIRCUITS.key((*labels, name)), counts.get((*labels, name), 0.0))

    # the page

    def render(self, *, multiprocess: bool = False) -> bytes:
        counters, gauges = self._stores()
        self._publish_circuits(gauges)
        self._publish_dropped(counters)
        if self._directory:
            return exposition(collect(self._directory))
        if multiprocess and not self._warned:
            self._warned = True
            log.warning("/metrics shows this worker's numbers only: start gunicorn with deploy/gunicorn.conf.py "
                        "(or set BIFROST_METRICS_DIR to an empty directory) to sum them over all workers")
        values = counters.snapshot()
        values.update(gauges.snapshot())
        return exposition(values)
