"""What the drop-in request schemas share: the validation walk and the model a route's path or body names."""

from __future__ import annotations

from ..errors import BadRequest
from ..schema import MODEL_FORMAT, _fail


def validated(body, params: dict, *, required: tuple[str, ...] = ()) -> dict:
    """The known members of a JSON object body validated in document order (the first violation in the body
    is the one reported, ``param`` its path), then the required ones checked; nulls and members the schema
    does not know are left out."""
    if not isinstance(body, dict):
        raise BadRequest("invalid request format: request body must be a JSON object")
    valid = {}
    for key, value in body.items():
        rule = params.get(key)
        if value is not None and rule is not None:
            valid[key] = rule(value, key)
    for key in required:
        if key not in valid:
            _fail(key, "is required")
    return valid


def model_target(name: str, *, default: str, param: str = "model") -> tuple[str, str]:
    """``provider/model``, or a bare model name (or an AWS ARN, whose slashes are its own) for the route's
    default provider."""
    provider, sep, model = name.partition("/")
    if not sep or name.startswith("arn:"):
        return default, name
    if not provider.strip() or not model.strip():
        raise BadRequest(MODEL_FORMAT, param=param)
    return provider, model
