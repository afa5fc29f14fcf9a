"""The agency client: streams one agency's bets to the server, then asks for its winners."""
