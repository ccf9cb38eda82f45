"""What the request schemas beyond chat share: the unified API's walk over a body's top-level fields in body
order (known parameters validated into ``params``, the request's own fields through their validators,
``fallbacks`` as ``provider/model`` pairs, the rest kept in ``extra``; nulls are absent values), the drop-in
routes' validation of a native body, and the model a route's path or body names."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import BadRequest
from ..schema import MODEL_FORMAT, Validator, _fail, _model_ref, array


@dataclass(slots=True)
class Fields:
    params: dict = field(default_factory=dict)
    own: dict = field(default_factory=dict)
    fallbacks: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def walk(body: dict, *, params: dict[str, Validator], own: dict[str, Validator]) -> Fields:
    out = Fields()
    for key, value in body.items():
        if value is None or key == "model":
            continue
        rule = params.get(key)
        if rule is not None:
            out.params[key] = rule(value, key)
        elif key in own:
            out.own[key] = own[key](value, key)
        elif key == "fallbacks":
            out.fallbacks = array(_model_ref)(value, key)
        else:
            out.extra[key] = value
    return out


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
