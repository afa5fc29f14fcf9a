-- Winners are found when the draw happens, not indexed on every insert: keeping an index on
-- the number cost every batch as many scattered index pages as it has bets (one agency's
-- 1,000,000 bets: 3.4 x slower, and slower as the lottery grew). The draw's transaction scans
-- the bets once and records each winner's (agency, seq) here; a WINNERS answer reads its
-- agency's range and joins the bets on their UNIQUE (agency, seq) key. Nothing stored before
-- the draw depends on the winning number.
DROP INDEX bets_by_agency_number_seq;

CREATE TABLE draw_winners (
    agency INTEGER NOT NULL,
    seq    INTEGER NOT NULL,
    PRIMARY KEY (agency, seq)
) WITHOUT ROWID;

-- A lottery drawn before this migration keeps answering the same winners.
INSERT INTO draw_winners (agency, seq)
SELECT agency, seq FROM bets WHERE number = (SELECT winning_number FROM draw);

DROP VIEW winners;
CREATE VIEW winners AS
SELECT b.agency, b.document, b.first_name, b.last_name, b.number
FROM draw_winners AS w
JOIN bets AS b ON b.agency = w.agency AND b.seq = w.seq
ORDER BY w.agency, w.seq;

DROP VIEW agency_summary;
CREATE VIEW agency_summary AS
SELECT
    a.agency,
    (SELECT COUNT(*) FROM bets AS b WHERE b.agency = a.agency) AS bets,
    (SELECT COUNT(*) FROM draw_winners AS w WHERE w.agency = a.agency) AS winners,
    EXISTS (SELECT 1 FROM agencies AS f WHERE f.agency = a.agency) AS finished
FROM (SELECT DISTINCT agency FROM bets UNION SELECT agency FROM agencies) AS a
ORDER BY a.agency;
