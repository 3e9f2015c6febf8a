-- pairls schema, version 1.  Forward-only: later changes go in new files
-- (0002_*.sql, ...); nothing here is ever dropped or rewritten.

CREATE TABLE rooms (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- An invite grants a role in a room to whoever holds its secret; only the
-- SHA-256 digest of the secret is stored.
CREATE TABLE invites (
    room_id     text NOT NULL REFERENCES rooms (id),
    role        text NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    secret_hash bytea NOT NULL UNIQUE CHECK (octet_length(secret_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invites_room_id ON invites (room_id);

CREATE TABLE members (
    room_id     text NOT NULL REFERENCES rooms (id),
    client_id   text NOT NULL,
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    joined_at   timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, client_id)
);

-- rev is the head revision: the rev of the last committed op (0 = none).
-- Committing ops is a compare-and-set on it, so two hubs cannot both
-- commit the same revision.
CREATE TABLE documents (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id     text NOT NULL REFERENCES rooms (id),
    path        text NOT NULL,
    rev         bigint NOT NULL DEFAULT 0 CHECK (rev >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (room_id, path)
);

-- The op log.  op is the ot.js JSON list (retain n > 0, delete n < 0,
-- insert "text") kept as text: stored and returned verbatim, with no jsonb
-- parse on the hot path; cast with op::jsonb for ad-hoc queries.
-- document_id has no FOREIGN KEY on purpose: ops are only ever inserted by
-- the store's append statement, which joins them to the documents row its
-- compare-and-set just updated (and documents are never deleted), so the
-- per-row RI check would only cost throughput (about 10% in the benchmark).
CREATE TABLE ops (
    document_id bigint NOT NULL,
    rev         bigint NOT NULL CHECK (rev > 0),
    author      text NOT NULL DEFAULT '',
    client_id   text NOT NULL,
    client_seq  bigint NOT NULL,
    op          text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (document_id, rev),
    -- a re-sent op after a reconnect is answered, never applied twice
    UNIQUE (document_id, client_id, client_seq)
);

-- The full text of a document at some revisions; the latest one plus the
-- ops after it give the head.  Every document has one at rev 0.
CREATE TABLE snapshots (
    document_id bigint NOT NULL REFERENCES documents (id),
    rev         bigint NOT NULL CHECK (rev >= 0),
    text        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (document_id, rev)
);
