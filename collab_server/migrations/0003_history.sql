-- History, blame and per-person undo (docs/protocol.md, "History";
-- docs/architecture.md, decision 10).  Forward-only, like 0001 and 0002.

-- user_id: who made the op, across reconnects and room entries (hello's
-- "user", or the client id when it has none; '' for ops stored before this
-- migration, read as their client id).  It never leaves the hub.
-- change_rev: the first revision of the change (a run of one user's edits in
-- one place) the op belongs to, as the hub decided when it sequenced the op;
-- NULL when the hub did not have the document's history loaded then: the
-- history decides it when it reads the op, by the same rule on the same
-- stored user, op and time.
-- toggles: set on the ops an undo or redo made: the first revision of the
-- change they undid or redid (NULL: an ordinary op).
-- created_at is from now on written by the hub (its clock when it sequenced
-- the op), so that a history replayed from the log sees the times the live
-- one saw.
ALTER TABLE ops ADD COLUMN user_id text NOT NULL DEFAULT '';
ALTER TABLE ops ADD COLUMN change_rev bigint;
ALTER TABLE ops ADD COLUMN toggles bigint;

-- The user behind a member (NULL for members recorded before this
-- migration: their client id), for the names history and blame show.
ALTER TABLE members ADD COLUMN user_id text;

-- Who created the document (its initial text is revision 0 of its history);
-- '' for documents created before this migration.
ALTER TABLE documents ADD COLUMN created_by text NOT NULL DEFAULT '';
