"""Process plumbing shared by the server and the client: log format, signals, lifetimes."""
