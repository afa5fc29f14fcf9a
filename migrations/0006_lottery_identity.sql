-- What the stored lottery was started for: the deployment that began it (LOTTERY_ID), its
-- number of agencies and its winning number. The start-up rule (storage/lottery.py) continues
-- a lottery only under the rules it was started with, and judges it complete by its own
-- agency count, never the configuration's.
CREATE TABLE lottery (
    id             INTEGER PRIMARY KEY CHECK (id = 1),  -- one lottery per storage folder
    lottery_id     TEXT    NOT NULL,                    -- '' = begun without a LOTTERY_ID
    agencies       INTEGER CHECK (agencies >= 0),       -- NULL = begun before this was recorded
    winning_number INTEGER CHECK (winning_number BETWEEN 0 AND 9999),
    started_at     TEXT    NOT NULL
);

-- A lottery begun before this migration: what its data shows. A drawn one was drawn when
-- agencies 1..N had all finished (no other agency is accepted), so N is the finished count;
-- an undrawn one leaves both unknown and adopts the configuration at its next start.
INSERT INTO lottery (id, lottery_id, agencies, winning_number, started_at)
SELECT 1, '',
       CASE WHEN d.id IS NULL THEN NULL ELSE (SELECT COUNT(*) FROM agencies) END,
       d.winning_number,
       COALESCE((SELECT MIN(received_at) FROM bets), d.drawn_at,
                strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
FROM (SELECT 1) LEFT JOIN draw AS d
WHERE EXISTS (SELECT 1 FROM bets) OR EXISTS (SELECT 1 FROM agencies) OR d.id IS NOT NULL;
