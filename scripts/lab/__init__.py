"""Real processes and sample data for the tests, make chaos and the benches: a server, a raw
protocol peer, agency clients, a whole lottery with its verdict. Imported by tests, never the
other way round."""
