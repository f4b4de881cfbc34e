"""Requests to paths gatecore does not serve, for the access log and `/metrics`.

Clients point at a gateway expecting APIs it may not have (OpenAI's Responses, Gemini's
`/v1beta/...`, audio, images): those 404s are logged and counted like any request, under an endpoint
named after the API family the path belongs to (`unrouted:responses`). The families are a fixed list,
so a client sending random paths cannot grow the number of series; the raw path is never a label.
"""

from __future__ import annotations

from gatecore.request import Endpoint

# Path prefix → API family, first match wins.
_FAMILIES = (
    ("/v1/responses", "responses"),
    ("/responses", "responses"),
    ("/v1beta/", "gemini"),
    ("/v1/audio/", "audio"),
    ("/v1/images/", "images"),
    ("/v1/moderations", "moderations"),
    ("/v1/rerank", "rerank"),
    ("/v1/files", "files"),
    ("/v1/batches", "batches"),
    ("/v1/realtime", "realtime"),
    ("/v1/", "other_v1"),
)
_ENDPOINTS = {
    family: Endpoint(f"unrouted:{family}", "", streams=False)
    for family in (*dict.fromkeys(family for _, family in _FAMILIES), "other")
}


def unrouted_endpoint(path: str) -> Endpoint:
    """The endpoint an unknown path is recorded under: its API family's, from a fixed set."""
    for prefix, family in _FAMILIES:
        if path.startswith(prefix):
            return _ENDPOINTS[family]
    return _ENDPOINTS["other"]
