"""Text completions for providers that only have a chat API (Anthropic, Bedrock): the prompt is one user
message (``as_chat``, for providers/via_chat.py); the answer stays a chat.completion, which the surface
writes as a ``text_completion``."""

from __future__ import annotations

from ...errors import UnsupportedParameter
from ...schema import parse_request
from ..base import Target

# text-completion parameter -> chat parameter
CHAT_PARAMS = {"max_tokens": "max_completion_tokens", "temperature": "temperature", "top_p": "top_p",
               "stop": "stop", "user": "user", "seed": "seed", "presence_penalty": "presence_penalty",
               "frequency_penalty": "frequency_penalty"}
REFUSED = ("suffix", "echo", "logprobs", "best_of")


def as_chat(req, target: Target, *, stream: bool):
    prompt = req.prompt
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise UnsupportedParameter(f"prompt must be one string for {target.provider} (it has a chat API only)",
                                       param="prompt")
        prompt = prompt[0]
    for name in REFUSED:
        if req.params.get(name):
            raise UnsupportedParameter(f"{name} is not supported by {target.provider}", param=name)
    body = {"model": f"{target.provider}/{target.model}", "messages": [{"role": "user", "content": prompt}]}
    for name, chat_name in CHAT_PARAMS.items():
        if name in req.params:
            body[chat_name] = req.params[name]
    if stream:
        body["stream"] = True
    return parse_request(body)

