"""A tiny blocking REST client (http.client) for registering users and logging in.

The worker calls it from `trio.to_thread.run_sync` under a CapacityLimiter: the
REST traffic is set-up only, never part of a measured phase.
"""

from __future__ import annotations

import http.client
import json
from typing import Any


class RestError(Exception):
    """An unexpected HTTP status from the server."""


def call(
    port: int, method: str, path: str, body: dict[str, Any] | None = None, token: str = ""
) -> tuple[int, Any]:
    """One request to 127.0.0.1:`port`; returns (status, decoded JSON body or None)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        payload = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=payload, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, (json.loads(raw) if raw else None)
    finally:
        conn.close()


def register_and_login(port: int, name: str, password: str) -> str:
    """Register `name` (an existing account is fine) and return a bearer token."""
    status, body = call(port, "POST", "/api/users", {"name": name, "password": password})
    if status not in (200, 201, 409):
        raise RestError(f"POST /api/users -> {status} {body}")
    status, body = call(port, "POST", "/api/sessions", {"name": name, "password": password})
    if status != 200:
        raise RestError(f"POST /api/sessions -> {status} {body}")
    return str(body["token"])


def create_room(port: int, name: str, token: str) -> None:
    """Create public room `name` (one that exists already is fine)."""
    status, body = call(port, "POST", "/api/rooms", {"name": name}, token)
    if status not in (200, 201, 409):
        raise RestError(f"POST /api/rooms -> {status} {body}")


def healthy(port: int) -> bool:
    try:
        status, _ = call(port, "GET", "/healthz")
    except OSError:
        return False
    return status == 200
