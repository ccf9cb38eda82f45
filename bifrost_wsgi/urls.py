"""The route table: paths and path templates to a route per HTTP method.

A path is looked up in a dict first (every fixed path: the hot path costs one lookup); templates such as
``/genai/v1beta/models/{model}:generateContent`` are tried after, in the order they were added. ``{name}``
matches one path segment (``{name:path}`` several); the values reach the handler as ``ctx.params``, and the
template itself is what logs and metrics name the route by (a bounded set, whatever clients send)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

_PARAM = re.compile(r"\{(\w+)(?::(path))?\}")


@dataclass(frozen=True, slots=True)
class Route:
    """``handler(gateway, environ, start_response, ctx) -> body``. ``inference`` routes call providers: they are
    admitted under the worker's limit and reported as started. ``envelope(err) -> (status, headers, body)``
    writes the route's own error format (Anthropic's, Google's, …); None means Bifrost's."""

    handler: Callable
    inference: bool = False
    envelope: Callable | None = None


class _Template:
    """A path template, compiled at its first use: a worker builds ~80 of them and may never serve most
    (PERF: compiling them all was half of the app's build time)."""

    __slots__ = ("path", "prefix", "methods", "_pattern")

    def __init__(self, path: str, methods: dict[str, Route]) -> None:
        self.path = path
        self.prefix = path[:path.index("{")]  # a path that does not start with it cannot match
        self.methods = methods
        self._pattern: re.Pattern | None = None

    def match(self, path: str) -> dict | None:
        if not path.startswith(self.prefix):
            return None
        if self._pattern is None:
            parts, pos = [], 0
            for m in _PARAM.finditer(self.path):
                parts.append(re.escape(self.path[pos:m.start()]))
                parts.append(f"(?P<{m[1]}>.+?)" if m[2] else f"(?P<{m[1]}>[^/]+?)")
                pos = m.end()
            parts.append(re.escape(self.path[pos:]))
            self._pattern = re.compile("".join(parts) + r"\Z")
        m = self._pattern.match(path)
        return None if m is None else m.groupdict()


class RouteTable:
    def __init__(self) -> None:
        self.fixed: dict[str, dict[str, Route]] = {}
        self.templates: list[_Template] = []

    def add(self, path: str, methods: dict[str, Route]) -> None:
        if "{" not in path:
            self.fixed.setdefault(path, {}).update(methods)
            return
        for known in self.templates:
            if known.path == path:
                known.methods.update(methods)
                return
        self.templates.append(_Template(path, dict(methods)))

    def extend(self, routes: dict[str, dict[str, Route]], *, prefix: str = "") -> None:
        for path, methods in routes.items():
            self.add(prefix + path, methods)

    def mount(self, prefix: str, *, sources: tuple[str, ...]) -> None:
        """Serve every route under each of ``sources`` under ``prefix`` as well (``/openai/v1/x`` as
        ``/litellm/v1/x``); where two sources give the same path, the first source's route is kept."""
        fixed = [(p, m) for p, m in self.fixed.items()]
        templates = [(t.path, t.methods) for t in self.templates]
        taken: set[str] = set()
        for source in sources:
            for path, methods in (*fixed, *templates):
                if path.startswith(source + "/"):
                    mounted = prefix + path[len(source):]
                    if mounted not in taken:
                        taken.add(mounted)
                        self.add(mounted, methods)

    def match(self, path: str) -> tuple[str, dict[str, Route] | None, dict]:
        """(the route's name: its path or template, its methods or None, the template's values)."""
        methods = self.fixed.get(path)
        if methods is not None:
            return path, methods, {}
        for template in self.templates:
            params = template.match(path)
            if params is not None:
                return template.path, template.methods, params
        return path, None, {}

    def names(self) -> list[str]:
        return [*self.fixed, *(t.path for t in self.templates)]
