-- Schema version 1 of the PostgreSQL backend (run with search_path set to
-- the backend's schema).
--
-- States, intentions and kinds are TaskFlow's names (`SUCCESS`, `REVERT`,
-- `TASK`), checked by the backend when read (not by constraints, so a later
-- version can add a state without a migration here); `meta` and `body` are
-- JSON text, kept verbatim. `seq` keeps the order records were first saved
-- in (flows within a logbook, atoms within a flow).

CREATE TABLE logbooks (
    uuid       UUID   NOT NULL PRIMARY KEY,
    name       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    meta       TEXT   NOT NULL
);

CREATE INDEX logbooks_by_creation ON logbooks (created_at, uuid);

CREATE TABLE flowdetails (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid      UUID   NOT NULL UNIQUE,
    book_uuid UUID   NOT NULL REFERENCES logbooks (uuid) ON DELETE CASCADE,
    name      TEXT   NOT NULL,
    state     TEXT   NOT NULL,
    meta      TEXT   NOT NULL
);

CREATE INDEX flowdetails_by_book ON flowdetails (book_uuid, seq);

-- The body holds everything but the columns: result, failure, revert
-- failure, retry history, version, meta. A state change updates only
-- `state` and `intention` (not indexed, so with the free space left by the
-- fill factor it is a HOT update that leaves the body alone).
CREATE TABLE atomdetails (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flow_uuid UUID   NOT NULL REFERENCES flowdetails (uuid) ON DELETE CASCADE,
    uuid      UUID   NOT NULL,
    name      TEXT   NOT NULL,
    kind      TEXT   NOT NULL,
    state     TEXT   NOT NULL,
    intention TEXT   NOT NULL,
    body      TEXT   NOT NULL,
    UNIQUE (flow_uuid, uuid)
) WITH (fillfactor = 80);
