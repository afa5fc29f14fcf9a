"""The lottery server: an acceptor process that holds every connection, and a pool of workers."""
