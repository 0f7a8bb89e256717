"""A tiny blocking REST client (http.client) for registering users and logging in.

The worker calls it from `trio.to_thread.run_sync` under a CapacityLimiter: the
REST traffic is set-up only, never part of a measured phase.
"""

from __future__ import annotations

import http.client
import json
import time
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


#: A 503 `overloaded` (the server's password-hashing queue is full) is retried this often.
BUSY_RETRIES = 50
BUSY_WAIT_S = 0.05


def call_patiently(port: int, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    """`call`, retrying while the server answers 503 overloaded (sign-ups and logins
    share bounded hashing queues; the bench's concurrent set-up can fill them)."""
    for _ in range(BUSY_RETRIES):
        status, reply = call(port, method, path, body)
        if status != 503:
            return status, reply
        time.sleep(BUSY_WAIT_S)  # a blocking client in a worker thread, honouring "busy"
    return status, reply


def register_and_login(port: int, name: str, password: str) -> str:
    """Register `name` (an existing account is fine) and return a bearer token."""
    credentials = {"name": name, "password": password}
    status, body = call_patiently(port, "POST", "/api/users", credentials)
    if status not in (200, 201, 409):
        raise RestError(f"POST /api/users -> {status} {body}")
    status, body = call_patiently(port, "POST", "/api/sessions", credentials)
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
