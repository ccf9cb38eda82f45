"""bifrost-wsgi: a Bifrost-compatible LLM gateway as a plain WSGI application."""

__version__ = "0.1.0"


def make_app(config=None):
    """The gateway as a WSGI callable; ``config`` is a path, a dict with the config-file schema, or None
    (``BIFROST_CONFIG``, else the environment)."""
    from .app import make_app as _make_app

    return _make_app(config)


__all__ = ["__version__", "make_app"]
