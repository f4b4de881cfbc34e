"""What happened to each request: the usage ledger (rows in the store, spooled when it is down).

The access log and body logging are in telemetry/."""
