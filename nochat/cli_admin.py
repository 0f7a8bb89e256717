"""`nochat admin promote NAME` / `nochat admin demote NAME`: roles set on the server's
own machine, against the data directory (SQLite) or NOCHAT_DATABASE_URL, never over
the network. The running server reads roles from the store at every admin call, so the
change takes effect at once without a restart. Each is written to the audit log with
the actor `cli`.
"""

from __future__ import annotations

import argparse
import sys

import trio

from .admin import CLI_ACTOR
from .backends import open_store
from .errors import ConfigError, NoChatError
from .settings import Settings
from .store import Role

#: Exit statuses: done; no such user (or no database); a bad setting.
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
#: Opening the store (and migrating it) takes at most this long.
OPEN_TIMEOUT_S = 60


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    admin = commands.add_parser("admin", help="manage roles (on the server's machine)")
    actions = admin.add_subparsers(dest="action", required=True)
    for action, role in (("promote", "an admin"), ("demote", "a member")):
        sub = actions.add_parser(action, help=f"make NAME {role}")
        sub.add_argument("name", help="the account's name")
        sub.add_argument("--data-dir", help="the data directory (NOCHAT_DATA_DIR)")


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env(data_dir=args.data_dir)
    except ConfigError as exc:
        print(f"nochat: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if not settings.database_url and not settings.db_path.exists():
        print(f"nochat: no database in {settings.data_dir}", file=sys.stderr)
        return EXIT_FAILED
    role: Role = "admin" if args.action == "promote" else "member"
    try:
        found = trio.run(_set_role, settings, args.name, role, args.action)
    except NoChatError as exc:
        print(f"nochat: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    if not found:
        print(f"nochat: no user {args.name!r}", file=sys.stderr)
        return EXIT_FAILED
    print(f"nochat: {args.name} is now {role}")
    return EXIT_OK


async def _set_role(settings: Settings, name: str, role: Role, action: str) -> bool:
    store = open_store(settings)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(OPEN_TIMEOUT_S):
            await nursery.start(store.run)
        try:
            account = await store.set_role(name, role)
            if account is not None:
                await store.add_audit(CLI_ACTOR, action, account.name, "{}")
        finally:
            store.close()
    return account is not None
