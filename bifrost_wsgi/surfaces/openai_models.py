"""``GET /v1/models/{provider}/{model}`` (also under ``/openai``): one model, as ``client.models.retrieve``
asks for it.

The entry is the one ``/v1/models`` lists; a model it does not list is still routable (and answered, with
the provider as owner) when the provider is configured and a key allows it, since keys that allow every
model list only what the upstream reports. Anything else is a 404, as is a model the virtual key may not
use."""

from __future__ import annotations

from .. import errors as E, web
from ..urls import Route


def retrieve_model(gateway, environ, start_response, ctx):
    vk = gateway.governance.authenticate(environ) if gateway.governance is not None else None
    provider, model = ctx.params["provider"], ctx.params["model"]
    model_id = f"{provider}/{model}"
    entry = _entry(gateway, provider, model, model_id)
    if entry is not None and vk is not None and not gateway.governance.visible(vk, [entry]):
        entry = None
    if entry is None:
        raise E.NotFound(f"model {model_id} is not routable through this gateway", param="model")
    return web.json_response(start_response, 200, entry, [("x-request-id", ctx.request_id)])


def _entry(gateway, provider: str, model: str, model_id: str) -> dict | None:
    conf = gateway.config.providers.get(provider)
    if conf is None or not conf.row.chat_supported:
        return None
    for entry in gateway.models.list(provider=provider):
        if entry["id"] == model_id:
            return entry
    try:
        gateway.router.choose_key(conf, model)
    except E.NoKeyForModel:
        return None
    return {"id": model_id, "object": "model", "owned_by": provider, "created": 0}


_MODEL = {"GET": Route(retrieve_model), "HEAD": Route(retrieve_model)}
ROUTES = {"/v1/models/{provider}/{model:path}": _MODEL, "/openai/v1/models/{provider}/{model:path}": _MODEL}
