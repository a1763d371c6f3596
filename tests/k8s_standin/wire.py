"""Request bodies in and JSON out, as every route of the stand-in reads and answers them (a fake for tests)."""

from __future__ import annotations

import json
from typing import Any

import yaml
from aiohttp import web

from .status import bad_request


def flag(value: str | None) -> bool:
    """A boolean query parameter (``watch=true``, ``force=1``)."""
    return (value or "").lower() in ("true", "1")


def reply(obj: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(obj), status=status, content_type="application/json")


def decode(text: str) -> Any:
    """A request body: JSON or YAML (JSON is YAML), 400 when it is neither."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise bad_request(f"error decoding YAML: {exc}") from None
