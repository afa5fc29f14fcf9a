"""The lottery server: an acceptor process and one process per connection."""
