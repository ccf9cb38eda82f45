"""The ``bifrost-wsgi`` command line: every option says its default and its environment variable, the
environment sets what the flags do not, ``--check-config`` reports every problem in one run, and the
gunicorn settings are those of deploy/gunicorn.conf.py."""

import json
import os
import runpy
import subprocess
import sys
from argparse import Namespace

import pytest

from bifrost_wsgi import cli
from tests.deploy_procs import DEPLOY

# flag, environment variable, default as --help shows it (None: described in words)
OPTIONS = [
    ("--config", "BIFROST_CONFIG", None),
    ("--host", "BIFROST_HOST", "127.0.0.1"),
    ("--port", "BIFROST_PORT", "8080"),
    ("--workers", "BIFROST_WORKERS", None),
    ("--threads", "BIFROST_THREADS", "64"),
    ("--log-level", "BIFROST_LOG_LEVEL", "info"),
    ("--data-dir", "BIFROST_DATA_DIR", "./data"),
]
OTHER_VARIABLES = ["BIFROST_GRACEFUL_TIMEOUT", "BIFROST_MAX_REQUESTS", "BIFROST_KEEPALIVE", "BIFROST_ACCESS_LOG",
                   "BIFROST_METRICS_DIR"]


def run_cli(*args, env=None):
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("BIFROST_")}
    child_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "bifrost_wsgi.cli", *args], capture_output=True, text=True,
                          timeout=30, env=child_env)


@pytest.fixture(scope="module")
def help_text():
    proc = run_cli("--help")
    assert proc.returncode == 0
    return " ".join(proc.stdout.split())  # argparse wraps lines wherever it likes


@pytest.mark.parametrize("flag,variable,default", OPTIONS)
def test_help_names_each_option_with_its_variable_and_default(help_text, flag, variable, default):
    options = help_text.split("options:", 1)[1]
    after = options.split(f"{flag} ", 1)[1].split(" --", 1)[0]
    assert f"env {variable}" in after
    if default is not None:
        assert f"default: {default}" in after
    else:
        assert "default:" in after or "(default" in after


@pytest.mark.parametrize("variable", OTHER_VARIABLES)
def test_help_lists_the_other_variables(help_text, variable):
    assert variable in help_text.split("other environment variables:", 1)[1]


def test_the_table_above_is_every_option():
    assert [(o.flag, o.variable, o.default) for o in cli.OPTIONS] == OPTIONS


@pytest.mark.parametrize("env,argv,expected", [
    ({}, [], {"config": None, "host": "127.0.0.1", "port": 8080, "workers": None, "threads": 64,
              "log_level": "info", "data_dir": "./data"}),
    ({"BIFROST_CONFIG": "/etc/b.json", "BIFROST_HOST": "0.0.0.0", "BIFROST_PORT": "9000", "BIFROST_WORKERS": "3",
      "BIFROST_THREADS": "16", "BIFROST_LOG_LEVEL": "DEBUG", "BIFROST_DATA_DIR": "/var/lib/b"}, [],
     {"config": "/etc/b.json", "host": "0.0.0.0", "port": 9000, "workers": 3, "threads": 16, "log_level": "debug",
      "data_dir": "/var/lib/b"}),
    ({"BIFROST_PORT": "9000", "BIFROST_THREADS": "16"}, ["--port", "9001", "--threads", "8", "--data-dir", "d"],
     {"port": 9001, "threads": 8, "data_dir": "d"}),
])
def test_flags_win_over_variables_which_win_over_defaults(env, argv, expected):
    args = vars(cli.parse_args(argv, environ=env))
    assert {k: args[k] for k in expected} == expected


@pytest.mark.parametrize("env", [{"BIFROST_PORT": "http"}, {"BIFROST_THREADS": "0"}, {"BIFROST_LOG_LEVEL": "loud"}])
def test_a_bad_variable_is_a_usage_error(env):
    proc = run_cli("--check-config", env=env)
    assert proc.returncode == 2
    assert "usage: bifrost-wsgi" in proc.stderr and "Traceback" not in proc.stderr


def test_data_dir_is_exported_to_the_app_as_an_absolute_path(tmp_path):
    args = cli.parse_args(["--data-dir", "relative/data"], environ={})
    assert cli.app_environment(args) == {"BIFROST_DATA_DIR": os.path.abspath("relative/data")}


@pytest.mark.parametrize("argv, env, exported", [
    ([], {}, None),
    (["--allow-remote-admin"], {}, "1"),
    ([], {"BIFROST_ALLOW_REMOTE_ADMIN": "1"}, "1"),
    ([], {"BIFROST_ALLOW_REMOTE_ADMIN": "no"}, None),
])
def test_allow_remote_admin_is_exported_to_the_app(argv, env, exported):
    args = cli.parse_args(argv, environ=env)
    assert cli.app_environment(args).get("BIFROST_ALLOW_REMOTE_ADMIN") == exported


def test_check_config_names_every_missing_variable_in_one_run(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({
        "providers": {"openai": {"keys": [{"value": "env.MISSING_OPENAI"}]},
                      "anthropic": {"keys": [{"value": "env.MISSING_ANTHROPIC"}, {"value": "sk-ant-literal"}]}},
        "governance": {"virtual_keys": [{"id": "vk", "value": "env.MISSING_VK"}]},
    }))
    proc = run_cli("--check-config", "--config", str(path))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "bifrost-wsgi: config error: providers.openai.keys[0].value: environment variable MISSING_OPENAI is not set",
        "bifrost-wsgi: config error: providers.anthropic.keys[0].value: environment variable MISSING_ANTHROPIC is not set",
        "bifrost-wsgi: config error: governance.virtual_keys[0].value: environment variable MISSING_VK is not set",
    ]
    assert "sk-ant-literal" not in proc.stderr


def test_check_config_accepts_a_valid_config_from_the_variable(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"providers": {"openai": {"keys": [{"value": "env.SOME_KEY"}]}}}))
    proc = run_cli("--check-config", env={"BIFROST_CONFIG": str(path), "SOME_KEY": "sk-x"})
    assert proc.returncode == 0, proc.stderr
    assert f"config ok ({path})" in proc.stdout


def test_cli_uses_the_settings_of_deploy_gunicorn_conf(monkeypatch):
    for name in list(os.environ):
        if name.startswith("BIFROST_") or name == "WEB_CONCURRENCY":
            monkeypatch.delenv(name)
    conf = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    args = Namespace(host="127.0.0.1", port=8080, log_level="info")
    settings = cli.gunicorn_settings(args, workers=conf["workers"], threads=conf["threads"])
    for name in ("worker_class", "workers", "threads", "timeout", "graceful_timeout", "max_requests",
                 "max_requests_jitter", "preload_app", "accesslog", "errorlog", "loglevel", "proc_name",
                 "control_socket_disable", "limit_request_line", "limit_request_fields", "limit_request_field_size"):
        assert settings[name] == conf[name], name
    assert conf["bind"] == [settings["bind"]]
    assert conf["workers"] == (os.cpu_count() or 1) and conf["threads"] == 64
    # the one difference: bare bifrost-wsgi faces clients, the deploy config sits behind nginx's 60 s keep-alive
    assert settings["keepalive"] == 5 and conf["keepalive"] == 75
    monkeypatch.setenv("BIFROST_KEEPALIVE", "30")
    assert cli.gunicorn_settings(args, workers=1, threads=1)["keepalive"] == 30
    assert runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))["keepalive"] == 30


def test_the_readme_and_the_deploy_files_stand_alone():
    """Users get the repository only: no pointers to documents outside it."""
    root = DEPLOY.parent
    files = [root / "README.md", *sorted(p for p in DEPLOY.rglob("*") if p.is_file()),
             *sorted((root / "bench").glob("*.py")), root / "bench" / "README.md"]
    for path in files:
        text = path.read_text()
        for marker in ("CONTRACT", "§", "the performance issue", "../shared", "bifrost-behaviour"):
            assert marker not in text, f"{path.relative_to(root)} mentions {marker!r}"
