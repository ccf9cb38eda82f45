"""Real processes for the deploy tests: gunicorn started with the committed deploy/gunicorn.conf.py, nginx with
the committed deploy/nginx/bifrost.conf (rendered the documented way: envsubst of its two variables).
Every process is stopped and every file closed by ``close()``; ports come from binding port 0.
(tests/procs.py runs the console script instead.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.procs import free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def _wait_listening(port: int, proc: subprocess.Popen, what: str, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} is not listening on {port} after {timeout}s:\n{log.read_text(errors='replace')[-3000:]}")


def _stop(proc: subprocess.Popen, sig: int, timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class Gunicorn:
    """``gunicorn -c deploy/gunicorn.conf.py bifrost_wsgi.wsgi:application`` with a config dict."""

    def __init__(self, config: dict, tmp: Path, *, workers: int = 2, threads: int = 8, env: dict | None = None):
        self.tmp = tmp
        config_path = tmp / "config.json"
        config_path.write_text(json.dumps(config))
        self.port = free_port()
        self.out_path, self.err_path = tmp / "gunicorn.stdout", tmp / "gunicorn.stderr"
        self._out, self._err = open(self.out_path, "wb"), open(self.err_path, "wb")
        child_env = {k: v for k, v in os.environ.items()
                     if not k.startswith("BIFROST_") and k != "PROMETHEUS_MULTIPROC_DIR"}
        child_env.update({
            "BIFROST_CONFIG": str(config_path),
            "BIFROST_BIND": f"127.0.0.1:{self.port}",
            "BIFROST_WORKERS": str(workers),
            "BIFROST_THREADS": str(threads),
            "BIFROST_DATA_DIR": str(tmp / "data"),  # the stores stay in the test's folder
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        })
        child_env.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(DEPLOY / "gunicorn.conf.py"), "bifrost_wsgi.wsgi:application"],
            cwd=ROOT, env=child_env, stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL,
            start_new_session=True)  # its own process group: close() reaps workers a HUP left behind
        try:
            _wait_listening(self.port, self.proc, "gunicorn", self.err_path)
            self.wait_workers(workers)
        except BaseException:
            self.close()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> set[int]:
        pids = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat.rpartition(")")[2].split()
            if int(fields[1]) == self.proc.pid and fields[0] != "Z":
                pids.add(int(entry))
        return pids

    def wait_workers(self, n: int, *, exclude: set[int] = frozenset(), timeout: float = 20.0) -> set[int]:
        """Wait until ``n`` workers (none of ``exclude``) answer; returns their pids."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.worker_pids() - set(exclude)
            if len(pids) >= n:
                try:
                    if requests.get(self.url + "/health", timeout=2).status_code == 200:
                        return pids
                except requests.RequestException:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn has no {n} workers:\n{self.err_path.read_text(errors='replace')[-3000:]}")

    def access_lines(self) -> list[dict]:
        self._out.flush()
        lines = []
        for raw in self.out_path.read_text(errors="replace").splitlines():
            if raw.startswith("{"):
                lines.append(json.loads(raw))
        return lines

    def close(self) -> None:
        _stop(self.proc, signal.SIGINT)  # quick shutdown: graceful_timeout is 300 s
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # old workers still finishing a stream after a HUP
        except ProcessLookupError:
            pass
        self._out.close()
        self._err.close()


def render_nginx_conf(listen: str, upstream: str) -> str:
    """deploy/nginx/bifrost.conf with its two variables filled in, as ``envsubst '${BIFROST_LISTEN}
    ${BIFROST_UPSTREAM}'`` does (nothing else is touched)."""
    text = (DEPLOY / "nginx" / "bifrost.conf").read_text()
    values = {"BIFROST_LISTEN": listen, "BIFROST_UPSTREAM": upstream}
    text = re.sub(r"\$\{(BIFROST_[A-Z]+)\}", lambda m: values[m.group(1)], text)
    return text


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
                                          if os.access(p, os.X_OK)), None)


class Nginx:
    """Real nginx whose http block is a tiny main config plus the rendered deploy/nginx/bifrost.conf."""

    def __init__(self, binary: str, tmp: Path, *, upstream: str):
        self.tmp = tmp
        self.port = free_port()
        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (tmp / d).mkdir(exist_ok=True)
        (tmp / "bifrost.conf").write_text(render_nginx_conf(f"127.0.0.1:{self.port}", upstream))
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers write temp files in our private tmp
        main = tmp / "nginx.conf"
        main.write_text(f"""{user}worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/bifrost.conf;
}}
""")
        self.error_log = tmp / "error.log"
        args = [binary, "-p", str(tmp), "-c", str(main), "-e", str(self.error_log)]
        check = subprocess.run([*args, "-t"], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t failed:\n{check.stderr}")
        self._err = open(tmp / "nginx.stderr", "wb")
        self.proc = subprocess.Popen(args, stdout=self._err, stderr=self._err, stdin=subprocess.DEVNULL)
        try:
            _wait_listening(self.port, self.proc, "nginx", self.error_log)
        except BaseException:
            self.close()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        _stop(self.proc, signal.SIGTERM)
        self._err.close()
