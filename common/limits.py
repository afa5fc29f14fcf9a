"""Process limits the server adjusts at start."""

import contextlib
import resource


def raise_open_files_limit() -> int:
    """Raise the soft limit on open files to the hard one; return the limit now in force
    (the acceptor holds one descriptor per connection)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft
