"""The operator's view: a read-only HTTP listener in its own process (the status page,
/status.json, /metrics, /healthz, /readyz). It never writes storage, never takes the storage
lock and never shows a bettor: counts only."""
