-- Views for people inspecting the data (make db).

CREATE VIEW winners AS
SELECT b.agency, b.document, b.first_name, b.last_name, b.number
FROM bets AS b
JOIN draw AS d ON b.number = d.winning_number
ORDER BY b.agency, b.seq;

CREATE VIEW agency_summary AS
SELECT
    a.agency,
    (SELECT COUNT(*) FROM bets AS b WHERE b.agency = a.agency) AS bets,
    (SELECT COUNT(*) FROM bets AS b JOIN draw AS d ON b.number = d.winning_number
      WHERE b.agency = a.agency) AS winners,
    EXISTS (SELECT 1 FROM agencies AS f WHERE f.agency = a.agency) AS finished
FROM (SELECT DISTINCT agency FROM bets UNION SELECT agency FROM agencies) AS a
ORDER BY a.agency;
