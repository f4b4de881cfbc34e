"""What happened to each request: the access log now, the usage ledger later."""
