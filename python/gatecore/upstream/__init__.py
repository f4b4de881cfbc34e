"""Talking to upstream servers: the HTTP/1.1 client, its connection pool and timeouts."""
