-- Which agencies were sent their winners (the whole list) at least once. A lottery whose draw
-- happened and whose every agency got its winners is complete: the next start-up archives it
-- and begins a new one.
CREATE TABLE deliveries (
    agency       INTEGER PRIMARY KEY,
    delivered_at TEXT NOT NULL
);
