-- "Winners of agency a" as one index range in stream order: equality on (agency, number),
-- seq already sorted. The (agency, number) index left SQLite preferring the UNIQUE
-- (agency, seq) index for the ORDER BY, which scans every bet of the agency.
DROP INDEX bets_by_agency_number;
CREATE INDEX bets_by_agency_number_seq ON bets (agency, number, seq);

-- The same lookup for the views: compare with the drawn number instead of joining.
DROP VIEW winners;
CREATE VIEW winners AS
SELECT agency, document, first_name, last_name, number
FROM bets
WHERE number = (SELECT winning_number FROM draw)
ORDER BY agency, seq;

DROP VIEW agency_summary;
CREATE VIEW agency_summary AS
SELECT
    a.agency,
    (SELECT COUNT(*) FROM bets AS b WHERE b.agency = a.agency) AS bets,
    (SELECT COUNT(*) FROM bets AS b
      WHERE b.agency = a.agency AND b.number = (SELECT winning_number FROM draw)) AS winners,
    EXISTS (SELECT 1 FROM agencies AS f WHERE f.agency = a.agency) AS finished
FROM (SELECT DISTINCT agency FROM bets UNION SELECT agency FROM agencies) AS a
ORDER BY a.agency;
