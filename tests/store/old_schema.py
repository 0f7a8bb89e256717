"""The schema main shipped before migrations (user_version 0), copied as a fixture."""

OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    expires_ms INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS rooms (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    private INTEGER NOT NULL DEFAULT 0,
    dm INTEGER NOT NULL DEFAULT 0,
    owner_id INTEGER REFERENCES users(id),
    last_seq INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    room_id INTEGER NOT NULL REFERENCES rooms(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    last_read INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
    room_id INTEGER NOT NULL REFERENCES rooms(id),
    seq INTEGER NOT NULL,
    id TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users(id),
    text TEXT NOT NULL,
    client_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    PRIMARY KEY (room_id, seq),
    UNIQUE (user_id, client_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dms (
    user_a INTEGER NOT NULL REFERENCES users(id),
    user_b INTEGER NOT NULL REFERENCES users(id),
    room_id INTEGER NOT NULL REFERENCES rooms(id),
    PRIMARY KEY (user_a, user_b)
) WITHOUT ROWID;
"""

#: What a database made by main held: one user, general with three messages, a member.
OLD_ROWS = """
INSERT INTO meta VALUES ('epoch', 'oldepoch00000000');
INSERT INTO users VALUES (1, 'ann', 'hash', 1);
INSERT INTO rooms (id, name, last_seq, created_ms) VALUES (1, 'general', 3, 1);
INSERT INTO members VALUES (1, 1, 2);
INSERT INTO messages VALUES (1, 1, 'id1', 1, 'one', 'c1', 10);
INSERT INTO messages VALUES (1, 2, 'id2', 1, 'two', 'c2', 11);
INSERT INTO messages VALUES (1, 3, 'id3', 1, 'three', 'c3', 12);
"""
