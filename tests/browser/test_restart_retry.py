"""After close 1012 ("service restart") the client comes back quickly, but not at once."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from .ui import sign_up, status

pytestmark = pytest.mark.browser


def test_restart_close_first_retry_waits_half_a_second_then_reconnects(new_page: Any) -> None:
    page: Page = new_page(goto=False)
    # The jitter's low end: the backoff's first step would retry at once (0 ms), while
    # the server is still going down; the restart retry waits its 0.5 s floor.
    page.add_init_script("Math.random = () => 0;")
    connected_at: list[float] = []
    routes: list[WebSocketRoute] = []

    def relay(route: WebSocketRoute) -> None:
        connected_at.append(time.monotonic())
        upstream = route.connect_to_server()
        route.on_message(upstream.send)
        upstream.on_message(route.send)
        routes.append(route)

    page.route_web_socket("**/ws", relay)
    page.goto("/")
    sign_up(page, "rhea")
    before = len(connected_at)
    closed_at = time.monotonic()
    routes[-1].close(code=1012, reason="service restart")
    expect(status(page)).to_have_attribute("data-state", "reconnecting")
    expect(status(page)).to_have_attribute("data-state", "connected", timeout=5_000)
    assert len(connected_at) == before + 1
    waited = connected_at[-1] - closed_at
    assert 0.45 <= waited < 1.5, waited
    # The delay itself, over its whole range.
    lows_highs = page.evaluate(
        "import('/socket.js').then(m => [m.restartDelay(() => 0), m.restartDelay(() => 0.9999)])"
    )
    assert lows_highs == [500, 1499]
