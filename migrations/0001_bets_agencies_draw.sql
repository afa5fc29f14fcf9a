-- The bets, which agencies finished, the draw, and the recorded length of bets.csv.
-- Applied by storage/migrations.py inside one transaction with its user_version bump.

CREATE TABLE bets (
    id          INTEGER PRIMARY KEY,           -- commit order = row order in bets.csv
    agency      INTEGER NOT NULL CHECK (agency >= 1),
    seq         INTEGER NOT NULL CHECK (seq >= 0),  -- position in the agency's stream
    first_name  TEXT    NOT NULL,
    last_name   TEXT    NOT NULL,
    document    TEXT    NOT NULL,
    birthdate   TEXT    NOT NULL,              -- YYYY-MM-DD
    number      INTEGER NOT NULL CHECK (number BETWEEN 0 AND 9999),
    received_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (agency, seq)                       -- exactly-once: a position is stored once
);

-- "Winners of agency a" is a lookup on (agency, number = the drawn number).
CREATE INDEX bets_by_agency_number ON bets (agency, number);

CREATE TABLE agencies (
    agency      INTEGER PRIMARY KEY CHECK (agency >= 1),
    finished_at TEXT    NOT NULL               -- when its END arrived
);

CREATE TABLE draw (
    id             INTEGER PRIMARY KEY CHECK (id = 1),  -- one draw per lottery
    drawn_at       TEXT    NOT NULL,
    winning_number INTEGER NOT NULL
);

-- The length of bets.csv that the committed rows account for: a batch is stored when the
-- transaction that inserts it and moves this length commits.
CREATE TABLE csv_state (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    length INTEGER NOT NULL CHECK (length >= 0)
);
INSERT INTO csv_state (id, length) VALUES (1, 0);
