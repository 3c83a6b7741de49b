-- Schema version 1 of the SQLite backend.
--
-- Ids are UUID text (lower-case, hyphenated); timestamps are ms since the
-- epoch; states, intentions and kinds are TaskFlow's names (`SUCCESS`,
-- `REVERT`, `TASK`); `meta` and `body` are JSON text. `seq` keeps the order
-- records were first saved in (flows within a logbook, atoms within a flow).

CREATE TABLE logbooks (
    uuid       TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    meta       TEXT    NOT NULL
);

CREATE INDEX logbooks_by_creation ON logbooks (created_at, uuid);

CREATE TABLE flowdetails (
    seq       INTEGER NOT NULL PRIMARY KEY,
    uuid      TEXT    NOT NULL UNIQUE,
    book_uuid TEXT    NOT NULL REFERENCES logbooks (uuid) ON DELETE CASCADE,
    name      TEXT    NOT NULL,
    state     TEXT    NOT NULL,
    meta      TEXT    NOT NULL
);

CREATE INDEX flowdetails_by_book ON flowdetails (book_uuid, seq);

-- The body holds everything but the columns: result, failure, revert
-- failure, retry history, version, meta. A state change updates only
-- `state` and `intention`.
CREATE TABLE atomdetails (
    seq       INTEGER NOT NULL PRIMARY KEY,
    flow_uuid TEXT    NOT NULL REFERENCES flowdetails (uuid) ON DELETE CASCADE,
    uuid      TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    state     TEXT    NOT NULL,
    intention TEXT    NOT NULL,
    body      TEXT    NOT NULL,
    UNIQUE (flow_uuid, uuid)
);
