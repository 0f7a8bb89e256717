"""NoChat behind Debian's nginx, configured with exactly docs/deploy/nginx.conf.

Only the two ports and the two certificate paths of that file are changed. nginx runs
in the foreground with its own prefix, pid file and temporary directories under the
test's tmp_path; it needs `apt-get install nginx` (skipped without it, failed under
NOCHAT_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
import trustme

from nochat.settings import Settings

from ..support import (
    STEP_S,
    Api,
    free_port,
    make_settings,
    require_program,
    start_server,
    ws_connect,
)

REPO = Path(__file__).resolve().parents[2]
DOCUMENTED = REPO / "docs" / "deploy" / "nginx.conf"
#: The documented values the test replaces (each must appear exactly once).
UPSTREAM = "server 127.0.0.1:8000;"
LISTEN = "listen 443 ssl;"
CERT = "/etc/ssl/nochat/fullchain.pem"
KEY = "/etc/ssl/nochat/privkey.pem"


@dataclass
class Nginx:
    port: int


def documented_config(nginx_port: int, nochat_port: int, cert: Path, key: Path) -> str:
    text = DOCUMENTED.read_text()
    for old, new in (
        (UPSTREAM, f"server 127.0.0.1:{nochat_port};"),
        (LISTEN, f"listen 127.0.0.1:{nginx_port} ssl;"),
        (CERT, str(cert)),
        (KEY, str(key)),
    ):
        assert text.count(old) == 1, f"docs/deploy/nginx.conf no longer has {old!r} once"
        text = text.replace(old, new)
    return text


@asynccontextmanager
async def run_nginx(tmp_path: Path, site: str) -> AsyncIterator[Nginx]:
    nginx = require_program("nginx")
    prefix = tmp_path / "nginx"
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"):
        (prefix / sub).mkdir(parents=True)
    (prefix / "nochat.conf").write_text(site)
    port = int(re.search(r"listen 127\.0\.0\.1:(\d+) ssl;", site).group(1))  # type: ignore[union-attr]
    # The harness around the documented file: what Debian's /etc/nginx/nginx.conf holds,
    # pointed at the test's own directories, in the foreground.
    (prefix / "nginx.conf").write_text(
        f"""
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/nochat.conf;
}}
"""
    )
    cmd = [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
    check = await trio.run_process([*cmd, "-t"], capture_stderr=True, check=False)
    assert check.returncode == 0, check.stderr.decode()
    log = (prefix / "logs" / "stderr").open("wb")
    proc = await trio.lowlevel.open_process(cmd, stderr=log, stdout=subprocess.DEVNULL)
    try:
        with trio.fail_after(STEP_S):
            while True:  # a child process: poll its port (bounded)
                try:
                    stream = await trio.open_tcp_stream("127.0.0.1", port)
                    await stream.aclose()
                    break
                except OSError:
                    assert proc.returncode is None, (prefix / "logs" / "stderr").read_text()
                    await trio.sleep(0.05)
        yield Nginx(port)
    finally:
        proc.terminate()  # SIGTERM: nginx's fast shutdown
        with trio.move_on_after(STEP_S, shield=True):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
        log.close()


def https_request(
    port: int,
    context: ssl.SSLContext,
    method: str,
    path: str,
    body: Any = None,
    *,
    source: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One HTTPS request to nginx from the local address `source` (any of 127/8)."""
    conn = http.client.HTTPSConnection(
        "127.0.0.1", port, context=context, timeout=STEP_S, source_address=(source, 0)
    )
    try:
        data = None if body is None else json.dumps(body)
        conn.request(method, path, data, {"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(raw or "null")
    finally:
        conn.close()


def test_documented_read_timeout_is_above_the_ping_interval() -> None:
    found = re.search(r"proxy_read_timeout (\d+)s;", DOCUMENTED.read_text())
    assert found is not None
    assert int(found.group(1)) > 2 * Settings().ping_interval_s


async def test_chat_through_nginx_with_forwarded_headers_and_a_restart(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    require_program("nginx")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    cert.private_key_pem.write_to_path(str(keyfile))
    for blob in cert.cert_chain_pems:
        blob.write_to_path(str(certfile), append=True)
    context = ssl.create_default_context()
    ca.configure_trust(context)

    nochat_port = free_port()
    settings = make_settings(
        tmp_path / "data",
        port=nochat_port,
        trusted_proxies=("127.0.0.1",),
        signup_rate_per_h=2,
    )
    server = await start_server(nursery, settings)
    site = documented_config(free_port(), nochat_port, certfile, keyfile)

    async def call(*args: Any, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
        return await trio.to_thread.run_sync(lambda: https_request(*args, **kwargs))

    async with run_nginx(tmp_path, site) as proxy:
        # Sign-ups are limited per client address: nginx's X-Forwarded-For tells NoChat
        # which address, and a client's own X-Forwarded-For cannot change it.
        tokens = {}
        for name, source in (("alice", "127.0.0.5"), ("bob", "127.0.0.5")):
            status, _, _ = await call(
                proxy.port, context, "POST", "/api/users",
                {"name": name, "password": "correct horse"}, source=source,
            )  # fmt: skip
            assert status == 201
            status, headers, body = await call(
                proxy.port, context, "POST", "/api/sessions",
                {"name": name, "password": "correct horse"}, source=source,
            )  # fmt: skip
            assert status == 200
            tokens[name] = body["token"]
            # TLS ended at nginx, which said so (X-Forwarded-Proto): Secure cookie, HSTS.
            assert "Secure" in headers["set-cookie"].split("; ")
            assert headers["strict-transport-security"].startswith("max-age=")
        status, _, body = await call(
            proxy.port, context, "POST", "/api/users",
            {"name": "carol", "password": "correct horse"}, source="127.0.0.5",
            headers={"X-Forwarded-For": "198.51.100.7"},
        )  # fmt: skip
        assert status == 429, body
        status, _, body = await call(
            proxy.port, context, "POST", "/api/users",
            {"name": "carol", "password": "correct horse"}, source="127.0.0.6",
        )  # fmt: skip
        assert status == 201, body

        # WebSocket through nginx (Upgrade/Connection), frames both ways.
        async with (
            ws_connect(proxy, tokens["alice"], ssl_context=context) as alice,
            ws_connect(proxy, tokens["bob"], ssl_context=context) as bob,
        ):
            await alice.join()
            await bob.join()
            await alice.say("hello through nginx")
            [got] = await bob.messages(1)
            assert got["text"] == "hello through nginx"
            last_seq = got["seq"]
            # Restarting NoChat behind nginx: the 1012 reaches the client through it.
            await server.stop()
            assert await alice.closed() == 1012
            assert await bob.closed() == 1012

        server = await start_server(nursery, settings)
        missed = await Api(server.http, tokens["bob"]).post(
            "/api/rooms/general/messages", {"text": "while you were away", "client_id": "m2"}
        )
        async with ws_connect(proxy, tokens["alice"], ssl_context=context) as alice:
            joined = await alice.join(since=last_seq)
            assert joined["head_seq"] == missed["seq"]
            [replayed] = await alice.messages(1)
            assert (replayed["seq"], replayed["text"]) == (missed["seq"], "while you were away")
            await alice.say("back again")
            [echo] = await alice.messages(1)
            assert echo["text"] == "back again"
    await server.stop()


def test_nginx_refuses_a_broken_copy_of_the_file(tmp_path: Path) -> None:
    """The config check the test relies on (`nginx -t`) does catch a broken file."""
    nginx = require_program("nginx")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    broken = DOCUMENTED.read_text().replace("proxy_http_version 1.1;", "proxy_http_version;")
    (prefix / "nochat.conf").write_text(broken)
    (prefix / "nginx.conf").write_text(
        f"pid {prefix}/nginx.pid; error_log stderr; events {{}} "
        f"http {{ include {prefix}/nochat.conf; }}"
    )
    result = subprocess.run(
        [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-t"],
        capture_output=True,
        check=False,
        timeout=STEP_S,
    )
    assert result.returncode != 0
