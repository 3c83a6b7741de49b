-- The PostgreSQL job board, schema version 3: the flow factory a job's
-- details name (`details.factory`, when it is a string; NULL when they
-- name none) as a column of its own, so that `claim_next` passes over the
-- jobs a conductor cannot build inside the one statement that claims.
-- Jobs posted before it get theirs from their details here; details that
-- are not JSON leave it NULL (reading such a job reports it as corrupt).
ALTER TABLE jobboard_jobs ADD COLUMN factory TEXT;
DO $$
DECLARE
    r RECORD;
BEGIN
    FOR r IN SELECT sequence, details FROM jobboard_jobs LOOP
        BEGIN
            UPDATE jobboard_jobs SET factory = r.details::jsonb ->> 'factory'
                WHERE sequence = r.sequence
                AND jsonb_typeof(r.details::jsonb -> 'factory') = 'string';
        EXCEPTION WHEN invalid_text_representation THEN
            NULL;
        END;
    END LOOP;
END $$;
