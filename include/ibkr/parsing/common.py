"""Shared pieces of the pure parsers: shape checks, number coercion and IBKR error bodies -> typed errors (§3)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from include.ibkr import errors as E

_DUPLICATE_RE = re.compile(r"Local order ID=(.*?) is already registered", re.IGNORECASE)
_ORDER_ENDPOINT_RE = re.compile(r"^/iserver/(account/[^/]+/orders?(/|$)|reply/)")
# Sanity ceilings (not market limits): they also reject inf and oversized JSON ints before float().
_MAX_PRICE = 1e9
_MAX_LOTS = 1e13
_NUM = (int, float)


# ---------------------------------------------------------------- shared helpers
def snippet(payload: Any, limit: int = 200) -> str:
    text = payload if isinstance(payload, str) else json.dumps(payload, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def malformed(endpoint: str | None, what: str, payload: Any = None) -> E.MalformedResponseError:
    body = snippet(payload) if payload is not None else None
    tail = f"; response starts {body!r}" if body else ""
    return E.MalformedResponseError(
        f"unexpected response from {endpoint or 'the gateway'}: {what}{tail}", endpoint=endpoint, body=body
    )


def expect_dict(payload: Any, endpoint: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise malformed(endpoint, f"expected a JSON object, got {type(payload).__name__}", payload)
    if "error" in payload:
        raise parse_error(200, json.dumps(payload), endpoint)
    return payload


def expect_list(payload: Any, endpoint: str) -> list[Any]:
    if isinstance(payload, dict) and "error" in payload:
        raise parse_error(200, json.dumps(payload), endpoint)
    if not isinstance(payload, list):
        raise malformed(endpoint, f"expected a JSON array, got {type(payload).__name__}", payload)
    return payload


def to_float(value: Any, field: str, endpoint: str | None = None) -> float | None:
    """JSON number or numeric string (with thousands separators) -> float; ''/None -> None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise malformed(endpoint, f"field {field!r} is a boolean, expected a number", value)
    if isinstance(value, int | float):
        result = float(value)
    else:
        try:
            result = float(str(value).replace(",", "").strip())
        except ValueError:
            raise malformed(endpoint, f"field {field!r} is not numeric: {value!r}") from None
    if not math.isfinite(result):
        raise malformed(endpoint, f"field {field!r} is not finite: {value!r}")
    return result


def to_int(value: Any, field: str, endpoint: str | None = None) -> int | None:
    """Integer or digit string (conid is a string in secdef/search, an int elsewhere, §10.9)."""
    number = to_float(value, field, endpoint)
    if number is None:
        return None
    if not number.is_integer():
        raise malformed(endpoint, f"field {field!r} is not an integer: {value!r}")
    return int(number)


def to_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


# ---------------------------------------------------------------- errors (§3)
def _error_text(body_text: str | None) -> str:
    if not body_text:
        return ""
    try:
        decoded = json.loads(body_text)
    except ValueError:
        return body_text.strip()[:300]
    if isinstance(decoded, dict):
        return str(decoded.get("error") or decoded.get("message") or body_text)[:300]
    return body_text.strip()[:300]


def parse_error(status_code: int, body_text: str | None, endpoint: str | None) -> E.IBKRError:
    """Map an HTTP status plus an ``{"error": ...}`` body to the typed error (does not raise it)."""
    text = _error_text(body_text)
    low = text.lower()
    ctx: dict[str, Any] = {"endpoint": endpoint, "status_code": status_code, "body": body_text}
    said = f" (IBKR: {text!r})" if text else ""
    if status_code == 401 or low in ("no session", "not authenticated"):
        return E.NotAuthenticatedError(**ctx)  # §3.1: the 401 body is UNCONFIRMED, branch on status
    if "no bridge" in low or "init session first" in low:
        return E.NoBridgeError(**ctx)
    if "please query /accounts first" in low:
        return E.NotPrimedError(**ctx)
    if low.startswith("no data"):
        return E.NoDataError(**ctx)
    if match := _DUPLICATE_RE.search(text):
        return E.DuplicateOrderError(match.group(1).strip(), **ctx)
    if "order not confirmed" in low or "reply id not found" in low:
        return E.OrderNotConfirmedError(f"{E.OrderNotConfirmedError.default_message}{said}", **ctx)
    if status_code == 429 or "too many" in low:
        return E.RateLimitedError(f"{E.RateLimitedError.default_message}{said}", **ctx)
    if status_code >= 500:
        msg = f"HTTP {status_code}{said}: {E.GatewayServerError.default_message}"
        return E.GatewayServerError(msg, **ctx)
    if status_code == 404 and "access denied" in low:
        # §1 IP allow-list: the gateway answers 404 "Access Denied" to callers outside ips.allow.
        msg = "gateway refused this host (404 Access Denied): add its IP to ips.allow in conf.yaml"
        return E.BadRequestError(msg, **ctx)
    if endpoint and _ORDER_ENDPOINT_RE.match(endpoint):
        return E.OrderRejectedError(f"order rejected by IBKR{said or ' (no reason given)'}", **ctx)
    return E.BadRequestError(f"IBKR rejected the request (HTTP {status_code}){said}", **ctx)
