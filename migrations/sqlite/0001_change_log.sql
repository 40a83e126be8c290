-- The change log: one row per committed write, in the same transaction as the write. SQLite
-- has one writer at a time, so the autoincrement key is already in commit order: it is the seq
-- (AUTOINCREMENT: never reused, also after retention deleted rows).
CREATE TABLE rthub_changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    collection  TEXT    NOT NULL,
    operation   TEXT    NOT NULL CHECK (operation IN ('create', 'update', 'delete')),
    item_id     TEXT    NOT NULL,
    data        TEXT    NOT NULL,
    before      TEXT,
    ts          TEXT    NOT NULL
);

CREATE INDEX rthub_changes_ts ON rthub_changes (ts);
