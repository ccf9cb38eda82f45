"""The kinds of upstream call the gateway makes, and the request types clients and observers see for them
(``extra_fields.request_type``, logs, metrics): the one place these names are defined.

A provider adapter offers a translator per operation it supports (``adapter.translator(name)``); routing
asks for the one a request needs and answers ``unsupported_operation`` when there is none."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Operation:
    name: str  # the translator's name in an adapter
    request_type: str
    stream_request_type: str = ""  # empty: the operation does not stream

    def request_type_for(self, *, stream: bool) -> str:
        return self.stream_request_type if stream and self.stream_request_type else self.request_type


CHAT = Operation("chat", "chat_completion", "chat_completion_stream")
TEXT_COMPLETION = Operation("text_completion", "text_completion", "text_completion_stream")
EMBEDDING = Operation("embedding", "embedding")
RESPONSES = Operation("responses", "responses", "responses_stream")
COUNT_TOKENS = Operation("count_tokens", "count_tokens")
#: a model's tokens (Cohere's /v1/tokenize)
TOKENIZE = Operation("tokenize", "tokenize")
SPEECH = Operation("speech", "speech", "speech_stream")
TRANSCRIPTION = Operation("transcription", "transcription", "transcription_stream")
IMAGE_GENERATION = Operation("image_generation", "image_generation")
LIST_MODELS = Operation("list_models", "list_models")
#: the Anthropic Messages route: served natively by Anthropic, through the chat translators by the rest
MESSAGES = Operation("messages", "chat_completion", "chat_completion_stream")
MESSAGES_COUNT_TOKENS = Operation("messages_count_tokens", "count_tokens")
