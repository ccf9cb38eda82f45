"""Reading a multipart/form-data request as it arrives: text fields into memory (small), file parts into
spools (``wire.multipart.SpooledPart``), the body limit kept while reading (413), so an upload is never
held whole in memory."""

from __future__ import annotations

from ..errors import BadRequest, UnsupportedMediaType
from ..web import body_blocks
from ..wire.multipart import DATA, END, PART, Parser, SpooledPart, boundary_of

MAX_FIELD_BYTES = 1024 * 1024


class Form:
    """The fields of a form in the order they came (``fields``: (name, value) pairs) and its files by name."""

    def __init__(self) -> None:
        self.fields: list[tuple[str, str]] = []
        self.files: dict[str, SpooledPart] = {}

    def close(self) -> None:
        for upload in self.files.values():
            upload.close()


def read_form(environ, limit: int, *, file_fields: frozenset[str]) -> Form:
    """Parse a multipart/form-data body; parts named in ``file_fields`` are spooled, the rest are text."""
    boundary = boundary_of(environ.get("CONTENT_TYPE", ""))
    if boundary is None:
        raise UnsupportedMediaType("invalid request format: the body must be multipart/form-data")
    parser = Parser(boundary)
    form = Form()
    try:
        current = None  # the SpooledPart or the list of text pieces being filled
        name = ""
        size = 0
        for block in body_blocks(environ, limit):
            for kind, value in parser.feed(block):
                if kind == PART:
                    name, size = value.name, 0
                    if name in file_fields:
                        current = form.files[name] = SpooledPart(value)
                    else:
                        current = []
                elif kind == DATA:
                    if isinstance(current, SpooledPart):
                        current.write(value)
                        continue
                    size += len(value)
                    if size > MAX_FIELD_BYTES:
                        raise BadRequest(f"invalid request format: {name}: is too large", param=name)
                    current.append(value)
                elif kind == END and isinstance(current, list):
                    try:
                        form.fields.append((name, b"".join(current).decode("utf-8")))
                    except UnicodeDecodeError:
                        raise BadRequest(f"invalid request format: {name}: is not UTF-8", param=name) from None
        parser.close()
    except BaseException:
        form.close()
        raise
    return form
