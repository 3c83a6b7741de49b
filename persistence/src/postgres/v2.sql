-- Schema version 2 of the PostgreSQL backend: owner fencing (run with
-- search_path set to the backend's schema).
--
-- `owner_epoch` is the epoch of the claim the flow detail's current owner
-- holds (0: never claimed). Every write an engine makes checks it in the
-- same statement, reading it `FOR SHARE` so that a fence (an `UPDATE` of
-- the row) waits for writes in flight and a write waits for a fence in
-- flight: no write at a lower epoch lands once a fence has returned.

ALTER TABLE flowdetails ADD COLUMN owner_epoch BIGINT NOT NULL DEFAULT 0;
