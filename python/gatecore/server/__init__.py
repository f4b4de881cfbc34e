"""The RSGI application: route table, request handling, error bodies, and process lifecycle."""
