"""What happened to each request: the usage ledger (rows in the store, spooled when it is down) and
the access log."""
