-- Owners control their rooms, and idle rooms are deleted (docs/protocol.md,
-- "Owners"; docs/architecture.md, "The hub").  Forward-only, like 0001.

-- When a member was last connected (set on every join, and refreshed by each
-- hub while anyone is connected to the room there): the idle sweep deletes
-- rooms whose last activity is older than the hub's --room-ttl.
ALTER TABLE rooms ADD COLUMN last_active timestamptz NOT NULL DEFAULT now();
CREATE INDEX rooms_last_active ON rooms (last_active);

-- participant: the participant id of the member's newest connection (what an
-- owner names when removing someone or changing their role, on any hub);
-- secret_hash: the digest of the secret it last joined with;
-- role_set: the owner gave it its role (kept when it reconnects).
ALTER TABLE members ADD COLUMN participant text;
ALTER TABLE members ADD COLUMN secret_hash bytea;
ALTER TABLE members ADD COLUMN role_set boolean NOT NULL DEFAULT false;
CREATE INDEX members_participant ON members (room_id, participant);

-- Client ids the owner removed, and the secret each had joined with: that
-- client id never comes back, and that secret admits nobody new until the
-- invites are rotated.
CREATE TABLE removals (
    room_id     text NOT NULL REFERENCES rooms (id),
    client_id   text NOT NULL,
    secret_hash bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, client_id)
);
CREATE INDEX removals_secret ON removals (room_id, secret_hash);

-- Rooms deleted lately, and by whom (owner, operator, idle): a hub that
-- learns of a deletion from its periodic check rather than from the
-- notification still tells the members why.  Kept for a week.
CREATE TABLE deleted_rooms (
    id          text PRIMARY KEY,
    deleted_by  text NOT NULL CHECK (deleted_by IN ('owner', 'operator', 'idle')),
    deleted_at  timestamptz NOT NULL DEFAULT now()
);
