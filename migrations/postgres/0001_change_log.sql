-- The change log: one row per committed write, in the same transaction as the write.
--
-- Writers never serialise on each other: they insert with `seq` NULL. Commit order is given
-- afterwards by the sequencer (rthub_sequence_changes), a short transaction that only one
-- process runs at a time (the counter row's lock), which numbers the committed rows it can see.
-- A row is numbered only after its transaction committed, so readers that follow `seq` never
-- see a gap filled in later, and no NOTIFY is sent from the writers' transactions (which would
-- serialise their commits on the database-wide notify lock).
CREATE TABLE rthub_changes (
    id          bigserial PRIMARY KEY,
    seq         bigint,
    collection  text        NOT NULL,
    operation   text        NOT NULL CHECK (operation IN ('create', 'update', 'delete')),
    item_id     uuid        NOT NULL,
    data        jsonb       NOT NULL,
    before      jsonb,
    ts          timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX rthub_changes_seq ON rthub_changes (seq) WHERE seq IS NOT NULL;
CREATE INDEX rthub_changes_pending ON rthub_changes (id) WHERE seq IS NULL;
CREATE INDEX rthub_changes_ts ON rthub_changes (ts);

-- The last seq handed out: never goes back, also after retention deleted every row.
CREATE TABLE rthub_change_counter (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    last_seq  bigint  NOT NULL
);
INSERT INTO rthub_change_counter (last_seq) VALUES (0);

-- Number up to max_rows committed, unnumbered changes in insert order; wake every listener.
CREATE FUNCTION rthub_sequence_changes(max_rows integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    last bigint;
    assigned bigint;
BEGIN
    SELECT last_seq INTO last FROM rthub_change_counter FOR UPDATE;
    WITH pending AS (
        SELECT id, row_number() OVER (ORDER BY id) AS n
        FROM rthub_changes WHERE seq IS NULL ORDER BY id LIMIT max_rows
    )
    UPDATE rthub_changes c SET seq = last + pending.n FROM pending WHERE c.id = pending.id;
    GET DIAGNOSTICS assigned = ROW_COUNT;
    IF assigned > 0 THEN
        UPDATE rthub_change_counter SET last_seq = last + assigned;
        PERFORM pg_notify('rthub_changes', (last + assigned)::text);
    END IF;
    RETURN assigned;
END
$$;
