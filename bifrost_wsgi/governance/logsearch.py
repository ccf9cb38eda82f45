"""``GET /api/logs`` query strings into a store query: filters, sort, pagination, and rows back into JSON."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from urllib.parse import parse_qs

from ..errors import BadRequest

_LIST_FILTERS = {"providers": "provider", "models": "model", "status": "status", "objects": "object",
                 "virtual_key_ids": "virtual_key_id", "team_ids": "team_id", "customer_ids": "customer_id",
                 "stop_reasons": "stop_reason"}
_RANGE_FILTERS = {"min_latency": ("latency", ">="), "max_latency": ("latency", "<="),
                  "min_tokens": ("total_tokens", ">="), "max_tokens": ("total_tokens", "<="),
                  "min_cost": ("cost", ">="), "max_cost": ("cost", "<=")}
_SORT = {"timestamp": "timestamp", "latency": "latency", "tokens": "total_tokens", "cost": "cost"}
_JSON_COLUMNS = ("input_history", "output_message", "params", "error_details")


def _time(text: str, name: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise BadRequest(f"invalid {name}: must be an RFC 3339 time", param=name) from None


def _number(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise BadRequest(f"invalid {name}: must be a number", param=name) from None


def _whole(text: str, name: str, default: int) -> int:
    if text == "":
        return default
    if not text.isdigit():
        raise BadRequest(f"invalid {name}: must be a whole number, at least 0", param=name)
    return int(text)


def parse(query_string: str) -> dict:
    """``{"where", "params", "order", "limit", "offset", "sort_by", "order_dir"}``; 400 naming the parameter."""
    q = {k: v[-1] for k, v in parse_qs(query_string, keep_blank_values=True).items()}
    clauses, params = [], []
    for name, column in _LIST_FILTERS.items():
        values = [v for v in q.get(name, "").split(",") if v]
        if values:
            clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
            params += values
    for name, (column, op) in _RANGE_FILTERS.items():
        if q.get(name):
            clauses.append(f"{column} {op} ?")
            params.append(_number(q[name], name))
    for name, op in (("start_time", ">="), ("end_time", "<=")):
        if q.get(name):
            clauses.append(f"timestamp {op} ?")
            params.append(_time(q[name], name))
    if q.get("content_search"):
        clauses.append("(LOWER(COALESCE(input_history, '')) LIKE ? OR LOWER(COALESCE(output_message, '')) LIKE ?)")
        pattern = "%" + q["content_search"].lower() + "%"
        params += [pattern, pattern]
    limit = _whole(q.get("limit", ""), "limit", 50)
    if limit < 1 or limit > 1000:
        raise BadRequest("limit cannot exceed 1000" if limit > 1000 else "limit must be at least 1", param="limit")
    sort_by = q.get("sort_by") or "timestamp"
    if sort_by not in _SORT:
        raise BadRequest("invalid sort_by: must be one of timestamp, latency, tokens, cost", param="sort_by")
    order = q.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise BadRequest("invalid order: must be asc or desc", param="order")
    return {"where": (" WHERE " + " AND ".join(clauses)) if clauses else "", "params": params,
            "order": f"{_SORT[sort_by]} {order.upper()}, id {order.upper()}", "limit": limit,
            "offset": _whole(q.get("offset", ""), "offset", 0), "sort_by": sort_by, "order_dir": order}


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def row_json(row: dict) -> dict:
    out = dict(row)
    out["timestamp"] = rfc3339(row["timestamp"])
    out["stream"] = bool(row["stream"])
    out["cost_known"] = bool(row["cost_known"])
    for column in _JSON_COLUMNS:
        if out.get(column) is not None:
            out[column] = json.loads(out[column])
    return out


def stats_json(stats: dict) -> dict:
    total = int(stats["total"] or 0)
    return {"total_requests": total,
            "success_rate": round(100.0 * int(stats["successes"] or 0) / total, 2) if total else 0.0,
            "average_latency": float(stats["average_latency"] or 0.0),
            "total_tokens": int(stats["total_tokens"] or 0), "total_cost": float(stats["total_cost"] or 0.0)}
