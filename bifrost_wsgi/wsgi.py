"""The gunicorn target: ``gunicorn bifrost_wsgi.wsgi:application`` (config from ``BIFROST_CONFIG`` or the
environment). Importing it builds the app; a bad config stops the worker with one line per problem naming
its JSON path, never a traceback."""

import logging
import sys

from .app import make_app
from .config import ConfigError, load
from .observe.logsetup import configure_from_env

configure_from_env()
try:
    _config = load()
except ConfigError as exc:
    for _line in str(exc).splitlines():
        print(f"bifrost-wsgi: config error: {_line}", file=sys.stderr, flush=True)
    sys.exit(2)
for _warning in _config.warnings:
    logging.getLogger("bifrost_wsgi").warning("%s", _warning)
application = make_app(_config)
