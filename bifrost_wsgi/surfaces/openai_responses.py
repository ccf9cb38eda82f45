"""``POST /v1/responses`` (also under ``/openai``): OpenAI's Responses API over every chat provider.

OpenAI and Azure answer natively: their answer and their stream's events are relayed as they come. Every other
provider is reached through its chat API (providers/responses/via_chat.py): a whole chat.completion becomes a
Response here, and a chat stream becomes OpenAI's typed events, written by ``ResponsesStreamEncoder`` in
OpenAI's order: ``response.created``, ``response.in_progress``, then per output item ``output_item.added``,
its parts and deltas, their ``.done`` events and ``output_item.done``, and last ``response.completed`` with
the usage. Each event is ``event: <type>`` + ``data: {…,"sequence_number":n}``; there is no ``[DONE]``; a failure
after the first byte is one ``event: error``."""

from __future__ import annotations

from .. import web
from ..answers import PlainChunk
from ..errors import GatewayError
from ..operations import COUNT_TOKENS, RESPONSES
from ..response_items import (TERMINAL, RawEvent, function_call_item, message_item, new_id, reasoning_item,
                              response_from_chat, response_object, text_part, usage_from_chat)
from ..routing.relay import StreamState
from ..routing.router import Answer
from ..schemas.responses import parse_responses
from ..urls import Route
from ..wire.sse import compact as _dumps
from . import inbound, unified


def responses(gateway, environ, start_response, ctx):
    inbound.authenticate(gateway, environ)
    req = parse_responses(web.parse_json(web.read_body(environ, gateway.body_limit)))
    answer = inbound.run(gateway, environ, start_response, ctx, req, RESPONSES,
                        ResponsesStreamEncoder(req.body), state_class=ResponsesState)
    if not isinstance(answer, Answer):
        return answer  # the stream
    return unified.reply(start_response, ctx, answer, render(answer.body, req.body), RESPONSES)


def input_tokens(gateway, environ, start_response, ctx):
    """``POST /v1/responses/input_tokens``: what the same body would count as input on the target."""
    inbound.authenticate(gateway, environ)
    req = parse_responses(web.parse_json(web.read_body(environ, gateway.body_limit)))
    req.stream = False  # a count is never streamed
    answer = inbound.run(gateway, environ, start_response, ctx, req, COUNT_TOKENS)
    return unified.reply(start_response, ctx, answer, answer.body, COUNT_TOKENS)


_RESPONSES = {"POST": Route(responses, inference=True)}
_INPUT_TOKENS = {"POST": Route(input_tokens, inference=True)}
ROUTES = {"/v1/responses": _RESPONSES, "/openai/v1/responses": _RESPONSES, "/openai/responses": _RESPONSES,
          "/v1/responses/input_tokens": _INPUT_TOKENS, "/openai/v1/responses/input_tokens": _INPUT_TOKENS,
          "/openai/responses/input_tokens": _INPUT_TOKENS}


def render(result: dict, body: dict) -> dict:
    return response_from_chat(result, body) if result.get("object") == "chat.completion" else result


def usage_of_response(response) -> dict | None:
    """A Responses usage in the chat vocabulary the logs, metrics and prices read."""
    usage = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("input_tokens") or 0, usage.get("output_tokens") or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": usage.get("total_tokens") or prompt + completion}


class ResponsesState(StreamState):
    """Chat chunks are normalised as chat's; a native event passes as it is, its usage read at the end."""

    __slots__ = ()

    def take(self, chunk):
        if type(chunk) is RawEvent:
            if chunk.kind in TERMINAL:
                self.usage = usage_of_response(chunk.parsed.get("response"))
            return chunk
        return super().take(chunk)


class ResponsesStreamEncoder:
    """Writes a Responses stream: native events as they came, chat chunks as the events OpenAI would send."""

    media_type = "text/event-stream"
    keepalive = b": ping\n\n"

    def __init__(self, body: dict) -> None:
        self.body = body
        self.seq = 0
        self.native = False
        self.started = False
        self.response_id = new_id("resp")
        self.model = ""
        self.created = 0
        self.output: list[dict] = []  # finished items, by output index
        self.open = None  # the item being streamed: [kind, item_id, output_index, text parts, extra]
        self.calls: dict[int, list] = {}  # chat tool-call index -> its open item
        # while a message is open: its output_text.delta event's data between sequence_number and the delta
        self.delta_head: str | None = None

    # --- framing --------------------------------------------------------------------------------------

    def event(self, kind: str, fields: dict) -> str:
        """One event: ``{"type", "sequence_number", **fields}`` as compact JSON."""
        return self.event_json(kind, _dumps(fields)[1:-1])

    def event_json(self, kind: str, members: str) -> str:
        """``event`` with ``fields`` already written (their JSON object's members, without the braces): a
        value sent in several events is encoded once."""
        seq = self.seq
        self.seq = seq + 1
        return f'event: {kind}\ndata: {{"type":"{kind}","sequence_number":{seq}{"," if members else ""}{members}}}\n\n'

    def chunk(self, chunk, state) -> bytes:
        state.mark()
        if type(chunk) is RawEvent:
            self.native = True
            seq = chunk.parsed.get("sequence_number")
            if isinstance(seq, int):
                self.seq = seq + 1
            return f"event: {chunk.kind}\ndata: {chunk.data}\n\n".encode()
        if type(chunk) is PlainChunk:
            if self.delta_head is not None:  # PERF: most of a stream: one delta of the open message
                return self._delta(chunk.content(), chunk.text).encode()
            out = self._start(chunk, state) if not self.started else []
            out.extend(self._text(chunk.content(), chunk.text))
            return "".join(out).encode()
        out = self._start(chunk, state) if not self.started else []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # a Response has one answer
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning") or delta.get("reasoning_content")
            if isinstance(reasoning, str) and reasoning:
                out.extend(self._reasoning(reasoning))
            content = delta.get("content")
            if isinstance(content, str) and content:
                out.extend(self._text(content))
            for call in delta.get("tool_calls") or ():
                out.extend(self._tool_call(call))
        return "".join(out).encode()  # b"" when the chunk held nothing a Response shows (servers skip it)

    def finish(self, state) -> bytes:
        if self.native:
            return b""  # the upstream's own terminal event has been relayed
        out = [] if self.started else self._start({}, state)
        out.extend(self._close())
        usage = usage_from_chat(state.usage)
        finish = state.finish.get(0)
        response = self._response("completed", usage=usage, finish=finish)
        kind = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
        out.append(self.event(kind, {"response": response}))
        return "".join(out).encode()

    def failure(self, err: GatewayError, state) -> bytes:
        fields = {"code": err.code or err.type, "message": err.message, "param": err.param}
        return self.event("error", {k: v for k, v in fields.items() if v is not None}).encode()

    # --- the answer, item by item -----------------------------------------------------------------------

    def _response(self, status: str, *, usage=None, finish=None) -> dict:
        return response_object(response_id=self.response_id, created=self.created, model=self.model,
                               body=self.body, output=list(self.output), status=status, usage=usage, finish=finish)

    def _start(self, chunk, state) -> list[str]:
        self.started = True
        self.model = (chunk.get("model") if isinstance(chunk, dict) else None) or state.model or state.model_requested
        self.created = state.created
        response = '"response":' + _dumps(self._response("in_progress"))
        return [self.event_json("response.created", response), self.event_json("response.in_progress", response)]

    def _open(self, kind: str, item: dict, extra=None) -> list[str]:
        out = self._close()
        index = len(self.output)
        self.open = [kind, item["id"], index, [], extra]
        return [*out, self.event("response.output_item.added", {"output_index": index, "item": item})]

    def _reasoning(self, text: str) -> list[str]:
        out = []
        if self.open is None or self.open[0] != "reasoning":
            item_id = new_id("rs")
            out.extend(self._open("reasoning", reasoning_item(item_id, None)))
            out.append(self.event("response.reasoning_summary_part.added", {
                "item_id": item_id, "output_index": self.open[2], "summary_index": 0,
                "part": {"type": "summary_text", "text": ""}}))
        _, item_id, index, parts, _ = self.open
        parts.append(text)
        out.append(self.event("response.reasoning_summary_text.delta", {
            "item_id": item_id, "output_index": index, "summary_index": 0, "delta": text}))
        return out

    def _text(self, text: str, literal: str | None = None) -> list[str]:
        out = []
        if self.delta_head is None:
            item_id = new_id("msg")
            out.extend(self._open("message", message_item(item_id, None, status="in_progress")))
            index = self.open[2]
            out.append(self.event("response.content_part.added", {
                "item_id": item_id, "output_index": index, "content_index": 0, "part": text_part("")}))
            self.delta_head = f',"item_id":{_dumps(item_id)},"output_index":{index},"content_index":0,"delta":'
        out.append(self._delta(text, literal))
        return out

    def _delta(self, text: str, literal: str | None) -> str:
        """``event("response.output_text.delta", …)`` of the open message, written from its template: the same
        text (tests hold the two equal). ``literal`` is the upstream's JSON string of ``text``, used as it is
        when it is what ``_dumps`` would write (printable ASCII without escapes)."""
        self.open[3].append(text)
        if literal is None or "\\" in literal or not (literal.isascii() and literal.isprintable()):
            literal = _dumps(text)
        seq = self.seq
        self.seq = seq + 1
        return (f'event: response.output_text.delta\ndata: {{"type":"response.output_text.delta",'
                f'"sequence_number":{seq}{self.delta_head}{literal},"logprobs":[]}}\n\n')

    def _tool_call(self, call: dict) -> list[str]:
        out = []
        position = call.get("index", 0)
        fn = call.get("function") or {}
        current = self.calls.get(position)
        if current is None or current is not self.open:
            item_id = new_id("fc")
            call_id = call.get("id") or new_id("call")
            name = fn.get("name") or ""
            out.extend(self._open("function_call",
                                  function_call_item(item_id, call_id, name, "", status="in_progress"),
                                  extra=(call_id, name)))
            self.calls[position] = self.open
        _, item_id, index, parts, _ = self.open
        arguments = fn.get("arguments")
        if isinstance(arguments, str) and arguments:
            parts.append(arguments)
            out.append(self.event("response.function_call_arguments.delta", {
                "item_id": item_id, "output_index": index, "delta": arguments}))
        return out

    def _close(self) -> list[str]:
        """The ``.done`` events of the item being streamed, which joins the finished output."""
        if self.open is None:
            return []
        kind, item_id, index, parts, extra = self.open
        self.open = self.delta_head = None
        text = "".join(parts)
        out = []
        if kind == "message":
            out.append(self.event("response.output_text.done", {
                "item_id": item_id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}))
            out.append(self.event("response.content_part.done", {
                "item_id": item_id, "output_index": index, "content_index": 0, "part": text_part(text)}))
            item = message_item(item_id, text)
        elif kind == "reasoning":
            part = {"type": "summary_text", "text": text}
            out.append(self.event("response.reasoning_summary_text.done", {
                "item_id": item_id, "output_index": index, "summary_index": 0, "text": text}))
            out.append(self.event("response.reasoning_summary_part.done", {
                "item_id": item_id, "output_index": index, "summary_index": 0, "part": part}))
            item = reasoning_item(item_id, text)
        else:
            call_id, name = extra
            out.append(self.event("response.function_call_arguments.done", {
                "item_id": item_id, "output_index": index, "name": name, "arguments": text}))
            item = function_call_item(item_id, call_id, name, text)
        self.output.append(item)
        out.append(self.event("response.output_item.done", {"output_index": index, "item": item}))
        return out
