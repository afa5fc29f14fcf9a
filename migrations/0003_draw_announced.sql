-- When the draw was logged (action: sorteo). A draw committed by a server that died before
-- logging it is announced at the next start-up, so the log shows every draw once.
ALTER TABLE draw ADD COLUMN announced_at TEXT;
