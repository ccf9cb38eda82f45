"""The walk every JSON request of the unified API makes over its body's top-level fields, in body order
(so the first violation reported is the first in the document): known parameters validated into
``params``, the request's own fields through their validators, ``fallbacks`` as ``provider/model`` pairs,
anything else kept in ``extra``; nulls are absent values."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..schema import Validator, _model_ref, array


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
