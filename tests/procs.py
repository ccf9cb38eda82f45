"""Start real server processes (bifrost-wsgi / gunicorn) on a free loopback port and stop them for sure."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, *, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            requests.get(url, timeout=0.5).close()
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout}s")


class Gateway:
    """``bifrost-wsgi`` (the console script, i.e. gunicorn gthread) with a temp config."""

    def __init__(self, config: dict, *, workers: int = 1, threads: int = 8, extra_args=(), env=None) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.config_path = os.path.join(self.dir.name, "config.json")
        with open(self.config_path, "w") as f:
            json.dump(config, f)
        self.port = free_port()
        self.log_path = os.path.join(self.dir.name, "server.log")
        self.log = open(self.log_path, "wb")
        cmd = [sys.executable, "-m", "bifrost_wsgi.cli", "--config", self.config_path, "--port", str(self.port),
               "--workers", str(workers), "--threads", str(threads), *extra_args]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, **(env or {})})
        try:
            wait_http(self.url + "/health", proc=self.proc)
        except Exception:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        self.dir.cleanup()
