"""The app's services in one typed bag: each job lives in its own module."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import room_push
from .addresses import ClientAddresses
from .admin import Admin
from .admin_stats import StatsSampler
from .admission import Admission
from .auth import Authenticator
from .broker import Broker
from .broker.presence import PresenceBoard
from .census import Census
from .drain import Drain
from .fanout import CommitFanout
from .files import FileService
from .hub import Hub
from .keepalive import Keepalive
from .metrics import Counters
from .moderation import Moderation
from .presence_feed import PresenceFeed
from .resync import Resync
from .rooms import RoomDirectory
from .sessions import ConnectionRegistry
from .settings import Settings
from .status_book import StatusBook
from .store import Store
from .telemetry import Telemetry
from .throttles import Throttles


@dataclass(eq=False)
class Services:
    settings: Settings
    store: Store
    hub: Hub
    broker: Broker
    presence: PresenceBoard
    auth: Authenticator
    files: FileService
    counters: Counters = field(default_factory=Counters)
    telemetry: Telemetry = field(default_factory=Telemetry)
    keepalive: Keepalive = field(default_factory=Keepalive)
    addresses: ClientAddresses = field(init=False)
    throttles: Throttles = field(init=False)
    rooms: RoomDirectory = field(init=False)
    presence_feed: PresenceFeed = field(init=False)
    status: StatusBook = field(init=False)
    drain: Drain = field(init=False)
    admission: Admission = field(init=False)
    connections: ConnectionRegistry = field(init=False)
    fanout: CommitFanout = field(init=False)
    moderation: Moderation = field(init=False)
    stats: StatsSampler = field(init=False)
    admin: Admin = field(init=False)
    census: Census = field(init=False)
    resync: Resync = field(init=False)

    def __post_init__(self) -> None:
        settings, hub = self.settings, self.hub
        self.addresses = ClientAddresses(settings.trusted_proxies)
        self.throttles = Throttles.from_settings(settings)
        self.rooms = RoomDirectory(self.store)
        self.presence_feed = PresenceFeed(hub, self.broker, settings.presence_batch_above)
        self.presence.announce = self.presence_feed.announce
        self.status = StatusBook(self.store, self.presence, self.presence_feed, self.broker)
        self.drain = Drain(hub)
        self.admission = Admission(settings, hub, self.presence, self.drain)
        self.connections = ConnectionRegistry(
            hub, self.presence, self.broker, self.drain, self.auth
        )
        self.fanout = CommitFanout(self.broker, self.files.on_event)
        self.moderation = Moderation(self.store, self.broker, self.rooms, self.connections)
        store = self.store
        self.admin = Admin(self)
        self.census = Census(self.connections, self.broker)
        self.resync = Resync(
            self.store,
            self.broker,
            auth=self.auth,
            rooms=self.rooms,
            moderation=self.moderation,
            connections=self.connections,
            status=self.status,
        )
        self.stats = StatsSampler(
            self.presence.online_users,
            hub.connection_count,
            lambda: store.statistics().committed_messages,
            self.telemetry.delivery_seconds,
        )
        self.hub.observe_delivery = self.telemetry.delivery_seconds.observe
        commit_seconds, commit_batch = self.telemetry.commit_seconds, self.telemetry.commit_batch

        def observe_commit(seconds: float, size: int) -> None:
            commit_seconds.observe(seconds)
            commit_batch.observe(size)

        self.store.observe_commit = observe_commit
        room_push.install(self)
