-- Schema version 2 of the SQLite backend: owner fencing.
--
-- `owner_epoch` is the epoch of the claim the flow detail's current owner
-- holds (0: never claimed). Every write an engine makes checks it in the
-- same statement (`... AND (SELECT owner_epoch FROM flowdetails WHERE uuid =
-- ?) <= ?`) and changes nothing when the writer's epoch is lower.

ALTER TABLE flowdetails ADD COLUMN owner_epoch INTEGER NOT NULL DEFAULT 0;
