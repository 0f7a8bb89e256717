"""create_app: the Quart-Trio app, its services, lifespan, web client and error mapping."""

from __future__ import annotations

import hmac
import logging
from pathlib import Path

import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope
from quart import Response, request, send_from_directory
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from . import logs, ws
from .auth import Authenticator, bearer_from_header
from .backends import open_blobs, open_store, signing_secret
from .broker import BrokerStatus, open_broker, open_presence
from .broker.feed import StoreFeed
from .broker.metrics import BrokerCollector
from .errors import AuthError, NoChatError, NotFound
from .files import FileService
from .files_api import blueprint as files_blueprint
from .http_account import blueprint as account_blueprint
from .http_admin import blueprint as admin_blueprint
from .http_api import RoomConverter, client_used_https, error_response, json_response
from .http_api import blueprint as api_blueprint
from .http_chat import blueprint as chat_blueprint
from .http_rooms import blueprint as rooms_blueprint
from .hub import Hub
from .metrics import NoChatCollector, render
from .services import Services
from .settings import Settings
from .upload_body import NoChatRequest, gated_receive, is_upload

log = logging.getLogger(__name__)

#: Largest REST request body.
MAX_BODY_BYTES = 256 * 1024
#: Longest path under the web client's directory worth looking up (its own are < 40).
MAX_WEB_PATH_CHARS = 255
BUNDLED_WEB = Path(__file__).resolve().parent.parent / "web"
#: Browsers that saw NoChat over HTTPS use only HTTPS for it for a year (RFC 6797).
HSTS = "max-age=31536000"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)


def build_services(settings: Settings) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    hub = Hub()
    store = open_store(settings)
    # The secret is set when the store has started (backends.signing_secret): with
    # PostgreSQL it comes from the database.
    auth = Authenticator(
        store,
        b"",
        ttl_s=settings.token_ttl_s,
        hashing=settings.password_hashing,
    )
    feed = StoreFeed(store)
    broker = open_broker(settings, hub, fetch_range=feed.fetch_range, fetch_head=feed.fetch_head)
    hub.room_opened, hub.room_closed = broker.subscribe, broker.unsubscribe
    files = FileService(open_blobs(settings), settings, store)
    svc = Services(settings, store, hub, broker, open_presence(settings), auth, files)
    store.on_commit = svc.fanout
    return svc


class NoChatApp(QuartTrio):
    """The Quart-Trio app, with the WebSocket endpoint (`ws.PATH`) answered at the ASGI
    level by `ws.serve_websocket` (see nochat/ws.py for why)."""

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "websocket" and scope["path"] == ws.PATH:
            await ws.serve_websocket(self.extensions["nochat"], scope, receive, send)
        elif is_upload(scope):
            await self.asgi_app(scope, gated_receive(scope, receive), send)
        else:
            if scope["type"] == "http":
                logs.request_id.set(logs.new_id("r"))
            await self.asgi_app(scope, receive, send)


def create_app(settings: Settings) -> NoChatApp:
    """The ASGI app. Its store opens at startup and is drained and closed at shutdown."""
    app = NoChatApp(__name__, static_folder=None)
    app.request_class = NoChatRequest
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.url_map.merge_slashes = False  # a 308 to a "cleaned" path is no answer to an API call
    app.url_map.converters["room"] = RoomConverter
    app.config["JSON_SORT_KEYS"] = False
    svc = build_services(settings)
    app.extensions["nochat"] = svc
    registry = svc.telemetry.registry
    registry.register(
        NoChatCollector(svc.counters, svc.hub, svc.presence, lambda: _store_counts(svc))
    )
    registry.register(BrokerCollector(svc.broker, svc.hub))
    store_done = trio.Event()
    blobs_done = trio.Event()
    web_dir = Path(settings.web_dir) if settings.web_dir else BUNDLED_WEB

    @app.before_serving
    async def open_store() -> None:
        async def run_store(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            try:
                await svc.store.run(task_status=task_status)
            finally:
                store_done.set()

        async def run_blobs(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            try:
                await svc.files.blobs.run(task_status=task_status)
            finally:
                blobs_done.set()

        await app.nursery.start(run_store)
        svc.auth.use_secret(signing_secret(settings, svc.store))
        await app.nursery.start(run_blobs)
        await app.nursery.start(svc.files.run)
        await app.nursery.start(svc.hub.run)
        await app.nursery.start(svc.broker.run)
        await app.nursery.start(svc.keepalive.run)
        await app.nursery.start(svc.presence_feed.run)
        await app.nursery.start(svc.presence.run)
        await app.nursery.start(svc.stats.run)
        await app.nursery.start(svc.resync.run)
        log.info("%s open (epoch %s)", type(svc.store).__name__, svc.store.epoch)

    @app.after_serving
    async def close_store() -> None:
        svc.drain.begin()
        with trio.move_on_after(settings.shutdown_grace_s):
            await svc.drain.drained.wait()
        svc.store.close()
        await store_done.wait()
        svc.files.blobs.close()
        await blobs_done.wait()
        log.info("store flushed and closed")

    app.register_blueprint(api_blueprint)
    app.register_blueprint(rooms_blueprint)
    app.register_blueprint(chat_blueprint)
    app.register_blueprint(files_blueprint)
    app.register_blueprint(admin_blueprint)
    app.register_blueprint(account_blueprint)

    @app.get("/healthz")
    async def healthz() -> Response:
        return json_response({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> Response:
        """Ready when serving and the store is sound: "store" is ok, failed (its writer's
        last commit failed), damaged (a read found corruption) or closed (not running).
        A disconnected Redis broker is "degraded", still 200: local delivery and durable
        sends go on; other nodes' events do not arrive until it reconnects."""
        store = "closed" if store_done.is_set() or not svc.store.epoch else svc.store.health
        if svc.drain.shutting_down or store != "ok":
            return json_response({"status": "unavailable", "store": store}, 503)
        if svc.broker.status is BrokerStatus.DEGRADED:
            return json_response({"status": "degraded", "store": store, "broker": "down"})
        return json_response({"status": "ready", "store": store})

    @app.get("/metrics")
    async def metrics() -> Response:
        """Off (404) unless NOCHAT_METRICS_TOKEN is set; then only for that bearer token."""
        if not settings.metrics_token:
            raise NotFound("metrics are off (set NOCHAT_METRICS_TOKEN)")
        given = bearer_from_header(request.headers.get("Authorization")) or ""
        if not hmac.compare_digest(given.encode(), settings.metrics_token.encode()):
            raise AuthError("metrics need the metrics bearer token")
        return Response(render(registry), content_type="text/plain; version=0.0.4")

    @app.get("/")
    async def index() -> Response:
        return await _web_file(web_dir, "index.html")

    @app.get("/admin")
    async def admin_page() -> Response:
        """The admin page; only its data is guarded (every /api/admin call is authorised)."""
        return await _web_file(web_dir, "admin.html")

    @app.get("/reset")
    async def reset_page() -> Response:
        """Where an admin's one-time password reset link (/reset#token) leads."""
        return await _web_file(web_dir, "reset.html")

    @app.get("/<path:filename>")
    async def web_file(filename: str) -> Response:
        return await _web_file(web_dir, filename)

    @app.errorhandler(NoChatError)
    async def nochat_error(exc: NoChatError) -> Response:
        return error_response(exc)

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        status = exc.code or 500
        return json_response({"error": {"code": code, "message": exc.description}}, status)

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error in a request")
        return json_response({"error": {"code": "internal", "message": "internal error"}}, 500)

    @app.after_request
    async def security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("X-Frame-Options", "DENY")
        if response.mimetype == "text/html":
            headers.setdefault("Content-Security-Policy", CSP)
        if client_used_https():  # only over TLS: HSTS over plain HTTP is ignored
            headers.setdefault("Strict-Transport-Security", HSTS)
        # The path only: a query string is the client's to fill (a token, by mistake).
        log.debug("%s %s %d", request.method, request.path, response.status_code)
        return response

    return app


def _store_counts(svc: Services) -> tuple[int, int]:
    stats = svc.store.statistics()
    return stats.commits, stats.committed_messages


async def _web_file(web_dir: Path, filename: str) -> Response:
    """A file of the web client; 404 for anything else, however odd the path.

    The client's paths are short; a path longer than MAX_WEB_PATH_CHARS, or one the
    file system refuses to look up (ENAMETOOLONG, a NUL byte, ...), is simply not there.
    """
    if len(filename) > MAX_WEB_PATH_CHARS:
        raise NotFound("no such file")
    try:
        response = await send_from_directory(web_dir, filename)
    except (OSError, ValueError):
        raise NotFound("no such file") from None
    response.headers["Cache-Control"] = "no-cache"
    return response
