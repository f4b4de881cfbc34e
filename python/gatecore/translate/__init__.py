"""Client-side translation between the client APIs and the hub format (OpenAI Chat Completions).

Inbound: a client's request becomes an OpenAI chat request in `ctx.body`, so every provider serves it.
Outbound: the OpenAI-shaped answer the relay produces becomes the client's shape again (a whole body,
or a stream event by event). See README.md beside this file.
"""
