"""The gunicorn target: ``gunicorn bifrost_wsgi.wsgi:application`` (config from ``BIFROST_CONFIG`` or the
environment). Importing it builds the app; a bad config stops the worker with the JSON path of the problem."""

from .app import make_app
from .logsetup import configure_from_env

configure_from_env()
application = make_app()
