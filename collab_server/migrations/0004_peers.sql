-- Several hubs on one database (docs/architecture.md, "Several hubs"): who is
-- connected to which hub, so that each hub can list a room's participants on
-- the others, and forget those of a hub that died.  Forward-only, like 0001-0003.
--
-- Both tables are UNLOGGED: short-lived, rewritten all the time, worthless
-- after a crash (PostgreSQL empties unlogged tables when it recovers from one;
-- each hub then finds its row gone at its next heartbeat and writes its
-- participants again).  Neither holds anything a room needs to survive.

-- Each running hub, and when it last said it was alive (every --hub-expiry / 5
-- seconds).  A hub whose heartbeat is older than --hub-expiry is taken for
-- dead: its participants drop out of the other hubs' lists.
CREATE UNLOGGED TABLE hubs (
    id           text PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- One row per connection in a room, on the hub it is connected to.  The
-- client id finds the connection a reconnecting client replaces (on any hub);
-- it never leaves the hubs.
CREATE UNLOGGED TABLE participants (
    room_id     text NOT NULL,
    participant text NOT NULL,
    hub_id      text NOT NULL,
    client_id   text NOT NULL,
    name        text NOT NULL,
    role        text NOT NULL,
    joined_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, participant)
);
CREATE INDEX participants_hub ON participants (hub_id);
CREATE INDEX participants_client ON participants (room_id, client_id);
