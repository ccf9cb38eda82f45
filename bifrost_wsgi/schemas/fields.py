"""The walk every unified request's validator shares: the body's fields in document order (so the first
violation reported is the first in the body), nulls skipped as absent."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..schema import Validator, _model_ref, array


@dataclass(slots=True)
class Fields:
    params: dict = field(default_factory=dict)  # known parameters, validated, in body order
    own: dict = field(default_factory=dict)  # the request's own fields (input, prompt, stream), validated
    extra: dict = field(default_factory=dict)  # unknown fields, as sent
    fallbacks: list = field(default_factory=list)


def collect(body: dict, params: dict[str, Validator], own: dict[str, Validator]) -> Fields:
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
