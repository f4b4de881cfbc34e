"""Type stubs for `gatecore._core`, the Rust extension (see `rust/src/`).

This stub is the contract of the extension: every export appears here, and
`tests/unit/test_core.py` calls each one under `mypy --strict`.
"""

from typing import final

@final
class Http1Parser:
    """Incremental HTTP/1.1 response parser for the upstream client.

    Feed it the bytes read from the socket; each `feed` returns the decoded body
    bytes it made available. The head may arrive in any number of pieces; the body
    is framed by `Transfer-Encoding: chunked` (decoded incrementally, partial chunks
    returned at once), `Content-Length`, or the end of the connection. Interim 1xx
    responses (except 101) are skipped; 204 and 304 have no body. The parser does
    not know the request method, so it must not be used for responses to HEAD.

    Example:
        >>> p = Http1Parser()
        >>> p.feed(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nhi")
        b'hi'
        >>> p.status, p.complete, p.keep_alive
        (200, True, True)
    """

    def __init__(self) -> None: ...
    def feed(self, data: bytes) -> bytes:
        """Consume bytes read from the connection.

        Args:
            data: The next bytes from the socket, any size, split anywhere.

        Returns:
            The decoded body bytes made available by this call (`b""` if none).
            When all of `data` is body, `data` itself is returned (no copy). Bytes
            after the end of the message are ignored (and `complete` is True).

        Raises:
            ValueError: Malformed response, with a short stable message: "invalid
                status line", "invalid header", "too many headers" (over 128),
                "response head too large" (over 64 KiB), "invalid content-length",
                "invalid chunk size", "invalid chunk extension", "invalid chunk
                terminator", "trailers too large". The parser then stays failed
                (every later `feed` raises the same error) until `reset`.
        """

    def feed_eof(self) -> None:
        """Report that the connection closed.

        Completes a body read until EOF. If the message was otherwise not
        complete, sets `truncated`.
        """

    def reset(self) -> None:
        """Forget the current response, to parse the next one on the same connection."""

    @property
    def head_complete(self) -> bool:
        """True once the status line and headers of the final response are parsed."""

    @property
    def status(self) -> int:
        """Status code of the final response; 0 before the head is complete."""

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """Headers of the final response as `(lower-cased name, raw value)` pairs, in order.

        Only valid once `head_complete`; builds a new list on every access.
        """

    @property
    def content_type(self) -> bytes:
        """Lower-cased value of the `content-type` header, or `b""`."""

    @property
    def complete(self) -> bool:
        """True once the whole message (head and body) has been received."""

    @property
    def keep_alive(self) -> bool:
        """Whether the connection can be reused after this response.

        True for HTTP/1.1 without `connection: close`, or HTTP/1.0 with
        `connection: keep-alive`. False when the body is read until EOF, when the
        response has both `transfer-encoding` and `content-length`, and before
        the head is complete.
        """

    @property
    def truncated(self) -> bool:
        """True if the connection closed before the message was complete."""

@final
class SseRelay:
    """Relays an upstream OpenAI-style Server-Sent-Events body to the client, event by event.

    Each `feed` returns the bytes of every event it completed, in order, each with
    its original terminator: ready for one `send_bytes`. Events pass through byte
    for byte, except for the optional model rewrite and usage-only stripping. The
    JSON of each `data:` event is scanned once (no object is built) to collect
    usage, errors, the finish reason and the output text; read those once at the
    end of the stream.

    Example:
        >>> r = SseRelay(model="my-model")
        >>> r.feed(b'data: {"model":"gpt-4o","choices":[]}\\n\\ndata: [DO')
        b'data: {"model":"my-model","choices":[]}\\n\\n'
        >>> r.feed(b"NE]\\n\\n"), r.done
        (b'data: [DONE]\\n\\n', True)
    """

    def __init__(
        self,
        model: str | None = None,
        strip_usage_only: bool = False,
        count_output: bool = True,
        encoding: str = "o200k_base",
    ) -> None:
        """Create a relay for one upstream stream.

        Args:
            model: When not None, the top-level `"model"` string of every JSON data
                event is replaced by this (client-facing) name; all other bytes
                stay identical.
            strip_usage_only: Drop every event whose JSON has `"choices": []` and a
                non-null `"usage"` object (the gateway asked for usage itself; its
                usage is still recorded).
            count_output: Collect the output text for `output_tokens`.
            encoding: `"o200k_base"` or `"cl100k_base"`, for `output_tokens`.

        Raises:
            ValueError: Unknown encoding.
        """

    def feed(self, data: bytes) -> bytes:
        """Consume decoded body bytes and return the events they complete.

        Events may be split anywhere across calls and end in a blank line (`\\n\\n`,
        `\\r\\n\\r\\n`, `\\r\\r`, or mixed). A partial trailing event is held until
        completed; everything complete is returned at once. Comments (`: ping`)
        and `event:`, `id:`, `retry:` lines pass through unchanged. Multi-line
        `data:` fields are joined with newlines for the JSON scan. Events whose
        data is not valid JSON pass through unchanged (see `malformed_events`).

        A blank line that ends in CRLF completes its event at the CR: if a call's
        data ends between that CR and LF, the LF leads the next call's output.

        Args:
            data: The next decoded body bytes.

        Returns:
            The bytes of the events completed by this call (`b""` if none). When
            the output equals `data`, `data` itself is returned (no copy).
        """

    def finish(self) -> bytes:
        """End of the upstream body: flush the held partial event, if any.

        The held bytes (an event without its final blank line) are handled like
        a complete event: inspected (so a final `data: [DONE]` without a blank
        line still sets `done`), model rewritten, and dropped if a usage-only
        chunk is to be stripped; otherwise returned as they are.

        Returns:
            The held bytes (`b""` if none).
        """

    def output_tokens(self) -> int:
        """Count the tokens of the output text collected so far.

        The text of `choices[*].delta.content`, `.reasoning_content`, `.reasoning`,
        `.tool_calls[*].function.arguments` and `choices[*].text` is collected per
        choice and kind, and each is counted with the relay's encoding. Computed on
        demand (cached until more text arrives); the GIL is released for over 2 KiB.

        Returns:
            The number of tokens (0 when `count_output` is False).
        """

    @property
    def done(self) -> bool:
        """True once a `data: [DONE]` event was seen."""

    @property
    def events(self) -> int:
        """Data events returned to the client, excluding `[DONE]` and stripped ones."""

    @property
    def usage(self) -> tuple[int, int, int, int] | None:
        """Last non-null upstream usage: `(prompt, completion, cached, reasoning)` tokens.

        From `prompt_tokens`, `completion_tokens`, `prompt_tokens_details.cached_tokens`
        and `completion_tokens_details.reasoning_tokens`; a missing, null or
        non-integer field counts as 0. None if the upstream sent no usage.
        """

    @property
    def error(self) -> bytes | None:
        """Raw JSON bytes of the last top-level `"error"` object seen, or None."""

    @property
    def held_bytes(self) -> int:
        """Bytes of a partial event held back until its terminating blank line arrives.

        The relay itself sets no bound; callers stop an upstream whose event grows past their limit.
        """

    @property
    def malformed_events(self) -> int:
        """Data events whose data was not valid JSON (they were passed through)."""

    @property
    def first_choice_finish_reason(self) -> str | None:
        """Last non-null `finish_reason` of the first choice (`index` 0), or None."""

@final
class EventStreamDecoder:
    """Incremental decoder of the AWS event-stream binary framing (Bedrock's ConverseStream).

    A message is a 12-byte prelude (total length, headers length: big-endian u32; then the CRC32 of
    those 8 bytes), headers, the payload and the CRC32 of everything before it. Both CRCs are
    checked. Bytes may be split anywhere across `feed` calls; each message is returned by the call
    that delivers its last byte.

    Example:
        >>> d = EventStreamDecoder()
        >>> d.feed(frame)  # one complete `:message-type: event` frame
        [('event', 'contentBlockDelta', b'{"delta":{"text":"hi"},"contentBlockIndex":0}')]
        >>> d.finish()  # nothing held: no error
    """

    def __init__(self) -> None: ...
    def feed(self, data: bytes) -> list[tuple[str, str, bytes]]:
        """Consume the next bytes of the stream.

        Args:
            data: The next decoded body bytes, any size.

        Returns:
            One `(message_type, kind, payload)` per message completed, in order: `message_type` is
            the `:message-type` header (`"event"`, `"exception"` or `"error"`; `""` when absent);
            `kind` is `:event-type`, `:exception-type` or `:error-code` respectively; `payload` is
            the payload bytes (for an `error` message without a payload, its `:error-message`).

        Raises:
            ValueError: A broken stream, with a stable message: "event-stream prelude CRC
                mismatch", "event-stream message CRC mismatch", "event-stream invalid message
                length", "event-stream message too large" (over 16 MiB, or headers over 128 KiB),
                "event-stream invalid header". The decoder then stays failed (every later call
                raises the same error).
        """

    def finish(self) -> None:
        """End of the stream.

        Raises:
            ValueError: "event-stream truncated message" when part of a message is still held,
                or the error that failed the decoder.
        """

    @property
    def held_bytes(self) -> int:
        """Bytes of an incomplete message held until the rest arrives."""

@final
class CounterTable:
    """Named u64 cells in memory shared by processes, with lock-free limit operations.

    With a `path`, the table lives in that file (created zero-filled if missing) and
    every process mapping it with the same `slots` sees the same cells: the workers
    of one server share their rate limits this way. Without a path it is private to
    the process. Slots are never freed; `slot` raises when the table is full.

    Times are nanoseconds on one clock all users share (`time.monotonic_ns()`).

    Example:
        >>> t = CounterTable(None, 64)
        >>> s = t.slot("key:k1:rpm")
        >>> t.gcra_take(s, 0, 60_000_000_000, 2, 1)
        (True, 1, 30000000000, 0)
    """

    def __init__(self, path: str | None = None, slots: int = 65536) -> None:
        """Raises OSError if the file cannot be mapped or was made for another size,
        ValueError if `slots` is not in 16..=2**26."""

    @property
    def slots(self) -> int: ...
    def used(self) -> int:
        """Slots claimed so far (a scan)."""

    def slot(self, name: str) -> int:
        """The index of the cell named `name` (claimed on first use). Raises ValueError when full."""

    def load(self, slot: int) -> int:
        """The cell's current value."""

    def gcra_take(
        self, slot: int, now_ns: int, period_ns: int, limit: int, cost: int
    ) -> tuple[bool, int, int, int]:
        """GCRA: take `cost` of `limit` units per `period_ns` (a burst of `limit` when idle).

        Returns:
            (allowed, remaining, reset_ns, retry_ns): units left, ns until the
            cell is full again, ns until the same cost could pass (0 when
            allowed; 2**64-1 when `cost` exceeds `limit`). Nothing is taken when
            refused.
        """

    def gcra_take_upto(
        self, slot: int, now_ns: int, period_ns: int, limit: int, min_cost: int, max_cost: int
    ) -> tuple[bool, int, int, int, int]:
        """GCRA: take as many units as are available between `min_cost` and `max_cost`
        (refused when fewer than `min_cost` are).

        Returns:
            (allowed, remaining, reset_ns, retry_ns, taken), as `gcra_take` plus the
            units taken (0 when refused).
        """

    def gcra_give(self, slot: int, period_ns: int, limit: int, units: int) -> None:
        """Give `units` back (a refund, or fewer tokens used than estimated)."""

    def gcra_charge(self, slot: int, now_ns: int, period_ns: int, limit: int, units: int) -> None:
        """Charge `units` more without a check (more tokens used than estimated)."""

    def acquire(self, slot: int, limit: int) -> tuple[bool, int]:
        """Take a concurrency slot if fewer than `limit` are taken: (taken, in use)."""

    def release(self, slot: int) -> None:
        """Give a concurrency slot back (never below zero)."""

    def reserve(self, slot: int, limit: int, amount: int, tag: int = 0) -> tuple[bool, int]:
        """A budget cell: add `amount` to period `tag`'s spend if it fits under `limit` (spend +
        amount <= limit, spend below limit): (reserved, spend after or as found). Concurrent
        reservations never pass `limit`. The first write of a later period starts it from 0 in the
        same cell (the word carries its period's 16-bit tag: rust/src/budget_cells.rs)."""

    def adjust(self, slot: int, delta: int, tag: int = 0) -> int:
        """A budget cell: add a signed `delta` to period `tag`'s spend (saturating at 0; a decrease
        for a period the cell has left is dropped); returns the spend after."""

    def spend(self, slot: int, tag: int = 0) -> int:
        """A budget cell: the spend it holds for period `tag` (0 when it holds another period's)."""
    def share_begin(self, slots: tuple[int, int, int, int], now_ns: int) -> int:
        """A request starts on a pool whose share clock (∫ dt / requests in flight, shared by
        every process mapping the table) has its lock, in-flight, last-time and clock cells at
        `slots`: returns the mark to pass to `share_end`."""

    def share_end(self, slots: tuple[int, int, int, int], mark: int, now_ns: int) -> int:
        """The request that started at `mark` ends at `now_ns`: its share of the pool's time in
        nanoseconds (its duration divided among the requests in flight alongside it)."""

    def share_in_flight(self, slots: tuple[int, int, int, int]) -> int:
        """Requests in flight on the pool now (every process)."""

class RulePlan:
    """A request's limits compiled against a CounterTable: one `admit` and one `settle` call
    count it against every rule (requests and tokens per minute by GCRA, concurrency slots, budget
    reservations), all or nothing.

    Example:
        >>> table = CounterTable(None, 64)
        >>> plan = RulePlan(table, [(table.slot("rpm:key:k1"), 0, 10, False, 0, 0)])
        >>> admission = plan.admit(time.monotonic_ns(), 0, 0, 0)
        >>> admission.refused, plan.headers(admission)[1]
        (-1, ('x-ratelimit-remaining-requests', '9'))

    Args:
        table: The table the cells live in.
        rules: Per rule, in admission order: (slot, kind, limit, soft, alert_slot, tag). Kinds: 0
            requests/min, 1 tokens/min, 2 in flight, 3 budget (micro-units). `soft` budgets only
            count (never refuse); `alert_slot` is the budget's once-per-period alert cell; `tag`
            the budget's period (16 bits; 0 for the other kinds).

    Raises:
        ValueError: A slot outside the table or an unknown kind.
    """

    def __init__(self, table: CounterTable, rules: list[tuple[int, int, int, bool, int, int]]) -> None: ...
    def admit(self, now_ns: int, tokens: int, micros: int, min_tokens: int, min_micros: int = 0) -> Admission:
        """Count a request: 1 per requests rule and slot, `tokens` per tokens rule (between
        `min_tokens` and `tokens`, as many as are available, when `min_tokens` > 0), `micros` per
        budget (between `min_micros` and `micros` when `min_micros` > 0: as much as every hard
        budget has left; see `Admission.reserved_micros`). A hard budget refuses a reservation that
        does not fit under its limit (spend + reservation > limit). A refusal takes nothing (what
        earlier rules took is given back)."""

    def settle(self, admission: Admission, now_ns: int, tokens: int, micros: int) -> list[tuple[int, int]]:
        """Settle an admitted request with its real tokens and spend: tokens rules get the
        difference back or charged, slots are freed, budgets corrected. Returns (rule index, spend
        after) for each budget whose limit this request crossed first in its period.

        Raises:
            ValueError: `admission` was refused or is not this plan's.
        """

    def headers(self, admission: Admission) -> list[tuple[str, str]]:
        """`x-ratelimit-{limit,remaining,reset}-{requests,tokens}` of the tightest rule of each
        kind (reset in OpenAI's format: `6s`, `1m30s`, `250ms`)."""

class Admission:
    """The outcome of `RulePlan.admit`."""

    @property
    def refused(self) -> int:
        """Index of the rule that refused, or -1 when every rule passed."""

    @property
    def retry_ns(self) -> int | None:
        """For a refused requests or tokens rule: ns until the same request could pass; None when
        it never can (a cost above the whole limit) or the rule is not a rate."""

    @property
    def reserved_micros(self) -> int | None:
        """What every hard budget reserved for an admitted request (micro-units; `micros`, or
        less with `min_micros`): the most the request may cost, so the output it may ask the
        upstream for. None when no hard budget applies."""

def count_tokens(text: str, encoding: str = "o200k_base") -> int:
    """Count the tokens of `text`, special-token text counted as ordinary text.

    The BPE tables are embedded and loaded once, on first use. The GIL is released
    for texts over 2 KiB. Lone surrogates are counted as U+FFFD.

    Example:
        >>> count_tokens("hello world")
        2

    Args:
        text: The text to count.
        encoding: `"o200k_base"` or `"cl100k_base"`.

    Returns:
        The number of tokens (tiktoken's `encode_ordinary`).

    Raises:
        ValueError: Unknown encoding.
    """

def count_prompt_tokens(body: bytes, encoding: str = "o200k_base") -> int:
    """Estimate the tokens of the prompt of an OpenAI-format request body, from its bytes.

    The texts are `messages[].content` (a string, or parts that are strings or objects with a
    `text` string), then `prompt`, then `input` (the same shapes): the estimate is the sum of each
    text's tokens plus one per newline joining them. One pass over the bytes, no Python objects.
    Each text's count is remembered (by a hash of the text, 65,536 texts at most), so a repeated
    system prompt or the earlier turns of a conversation are not tokenized again. The GIL is
    released while a text over 2 KiB is tokenized.

    Example:
        >>> count_prompt_tokens(b'{"messages":[{"role":"user","content":"hello world"}]}')
        2

    Returns:
        The number of tokens; 0 when the body is not a valid JSON object.

    Raises:
        ValueError: Unknown encoding.
    """

def replace_json_string_field(body: bytes, key: str, value: str) -> bytes | None:
    """Set a top-level string member of a JSON object, keeping every other byte.

    One linear pass, no parse tree: members nested in objects or arrays, and text
    inside strings, never match. Member names are compared after unescaping. If
    the key appears more than once at top level, every occurrence is replaced.

    Example:
        >>> replace_json_string_field(b'{"model": "gpt-4o", "n": 1}', "model", "alias")
        b'{"model": "alias", "n": 1}'

    Args:
        body: A JSON document.
        key: The top-level member name.
        value: The new string value (JSON-escaped on insertion).

    Returns:
        A copy of `body` with the member's string literal replaced, or None if
        `body` is not one valid JSON object, `key` is absent at top level, or a
        member named `key` has a non-string value.
    """

def insert_json_member(body: bytes, key: str, raw_value: bytes) -> bytes | None:
    """Insert `"key":raw_value` as the first member of a JSON object.

    It goes right after the `{` and the whitespace that follows it, with a comma
    after it unless the object is empty. Nothing else is parsed or validated, and
    an existing member with the same name is not looked for.

    Example:
        >>> insert_json_member(b'{"a": 1}', "stream_options", b'{"include_usage":true}')
        b'{"stream_options":{"include_usage":true},"a": 1}'
        >>> insert_json_member(b"{}", "n", b"1")
        b'{"n":1}'

    Args:
        body: A JSON object document.
        key: The member name (JSON-escaped on insertion).
        raw_value: The member's value as raw JSON bytes, inserted as is.

    Returns:
        The new document, or None if the first non-whitespace byte of `body` is
        not `{`.

    Raises:
        ValueError: `raw_value` is empty.
    """

@final
class SqliteRowWriter:
    """Bulk INSERTs into one SQLite database with the GIL released, through the SQLite library
    already loaded in the process (`library`, the `libsqlite3.so` Python's sqlite3 uses: a second
    copy of SQLite in one process would not see the first one's file locks). OSError when that
    library is not loaded or the database cannot be opened.

    `insert_one` is an INSERT of one row of `width` `?` parameters; `insert_chunk` the same for
    `chunk_rows` rows.
    """

    def __init__(
        self, library: str, path: str, insert_one: str, insert_chunk: str, chunk_rows: int, width: int
    ) -> None: ...
    def insert(self, rows: list[tuple[object, ...]]) -> None:
        """All of `rows` (None, bool, int, float or str values) in one transaction, or none of them:
        OSError with SQLite's message (busy after 10 s, constraint, I/O), ValueError for a value
        of another type or a row of another width."""
    def close(self) -> None:
        """Close the connection; later inserts raise OSError."""

@final
class RequestMetrics:
    """One worker's per-request metrics, filled in one call per finished request. Per label set:
    requests by status class (1xx to 5xx; any other status counts as 5xx), the cost sum, and six
    histograms in this order: overhead, duration, input tokens, output tokens, TTFT, time per output
    token (`bounds[kind]`: bucket bounds in the unit observed, ns for durations; a kind's sum is
    divided by `scale[kind]`, 1e9 to show seconds). And one stage histogram: per stage, then
    upstream_connect and relay (`stage_bounds_ns`).

    Example:
        >>> m = RequestMetrics([[1e6]] * 6, [1e9, 1e9, 1.0, 1.0, 1e9, 1.0], 1, [1_000])
        >>> s = m.add_set()
        >>> m.observe(s, 200, 0, 3_000_000, 2_500_000, 0, 7, 9, 0.5, True, [400], 600)
        >>> m.request_counts(), m.costs()
        ([(0, 1, 1)], [(0, 0.5)])
        >>> m.histogram_rows()[0]
        (0, [1.0, 0.0, 0.0005])
    """

    def __init__(
        self, bounds: list[list[float]], scale: list[float], stages: int, stage_bounds_ns: list[int]
    ) -> None: ...
    def add_set(self) -> int:
        """A new label set; its index."""
    def observe(
        self,
        set: int,
        status: int,
        started_ns: int,
        finished_ns: int,
        upstream_ns: int,
        first_byte_ns: int,
        input_tokens: int,
        output_tokens: int,
        cost_usd: float,
        succeeded: bool,
        stage_ends: list[int],
        sent_ns: int,
    ) -> None:
        """One finished request of label set `set`. Overhead: the latency less `upstream_ns`.
        Duration only when `succeeded`; tokens when `input_tokens` >= 0; TTFT from `first_byte_ns`
        (0: none), and time per output token after the first when there are two or more. The
        stages from `stage_ends` (the first from `started_ns`); once through all stages,
        upstream_connect to `sent_ns` (0: not sent) and relay, the rest of the overhead."""
    def histogram_rows(self) -> list[tuple[int, list[float]]]:
        """Each histogram observed at least once: its index (set * 6 + kind), its bucket counts
        (one per bound, then +Inf) and its sum."""
    def stage_rows(self) -> list[list[float]]:
        """Per stage row (the stages, upstream_connect, relay): the bucket counts, then the sum in
        seconds."""
    def request_counts(self) -> list[tuple[int, int, int]]:
        """(set, status class index: 0 for 1xx to 4 for 5xx, count) for each class counted."""
    def costs(self) -> list[tuple[int, float]]:
        """(set, USD) for each set with a priced request."""

@final
class OtlpSpans:
    """Finished spans encoded into OTLP/HTTP export bodies (`ExportTraceServiceRequest`, binary
    protobuf) of `batch_size` spans, waiting oldest first; past `max_spans` waiting, new spans are
    dropped and counted.
    Every span goes out under `resource` (its attributes) and the instrumentation scope
    `scope_name` `scope_version`. Ids are ints (a trace id 128 bits, a span id 64); times are epoch
    ns. Attribute values: str, bool, int (int64), float, or a tuple or list of those; a None value
    leaves its attribute out; anything else is a ValueError (and no span is added).

    Example:
        >>> spans = OtlpSpans({"service.name": "gatecore"}, "gatecore", "1.0", 512, 2048)
        >>> trace_id, span_id = spans.trace_id(), spans.span_id()
        >>> spans.add(trace_id, span_id, 0, "chat m", 2, 1_000, 2_000, {"gen_ai.request.model": "m"})
        1
        >>> body = spans.take()  # POST it to /v1/traces as application/x-protobuf
        >>> len(spans)
        0
    """

    def __init__(
        self,
        resource: dict[str, object],
        scope_name: str,
        scope_version: str,
        batch_size: int,
        max_spans: int,
    ) -> None: ...
    def span_id(self) -> int:
        """A new span id: 64 random bits, never 0 (seeded from the OS per instance)."""
    def trace_id(self) -> int:
        """A new trace id: 128 random bits, never 0."""
    def add(
        self,
        trace_id: int,
        span_id: int,
        parent_id: int,
        name: str,
        kind: int,
        start_ns: int,
        end_ns: int,
        attributes: dict[str, object] | None,
        status: int = 0,
        message: str = "",
        trace_state: str = "",
        flags: int = 0,
    ) -> int:
        """One ended span (`parent_id` 0: a root; `kind` and `status` are OTLP's SpanKind and
        StatusCode; `flags` OTLP's Span.flags). Returns the spans now waiting."""
    def add_chain(
        self,
        trace_id: int,
        parent_id: int,
        flags: int,
        names: tuple[str, ...],
        start_ns: int,
        ends: list[int],
        offset_ns: int,
        trace_state: str | None = None,
    ) -> int:
        """Internal spans one after the other under `parent_id`: the first from `start_ns` to
        `ends[0]`, the next from there to `ends[1]`, …, as many as `names` and `ends` both have;
        `offset_ns` moves these clock readings to epoch time. Returns the spans now waiting."""
    def take(self) -> bytes | None:
        """An export body of the oldest batch (`batch_size` spans, or all that wait when fewer
        do), which leaves the queue; None when none wait."""
    @property
    def dropped(self) -> int:
        """Spans dropped because the queue was full, since it was made."""
    def __len__(self) -> int:
        """Spans waiting."""

def traceparent_line(trace_id: int, span_id: int, flags: int, trace_state: str) -> bytes:
    """The request header lines that hand a span's context on: `traceparent` (version 00, lower-case
    hex, the flags' low byte) and `tracestate` when `trace_state` is not empty.

    Example:
        >>> traceparent_line(1, 2, 0x01, "")
        b'traceparent: 00-00000000000000000000000000000001-0000000000000002-01\\r\\n'
    """

class JsonLines:
    """JSON Lines with fixed `fields`: each `add` formats one object (`{"field": value, ...}`) and
    a newline straight onto an internal buffer; `take` returns and clears it, `write_to` writes it
    to a file descriptor. Strings are escaped as JSON requires (UTF-8 kept), non-finite floats are
    written as null. A field whose unit is "ms" or "s" takes integer nanoseconds and shows them in
    milliseconds (to the µs, half up) or seconds (to the ms) with three decimals.

    Example:
        >>> lines = JsonLines(["id", "ok", "ms"])
        >>> lines.add(("a\\"b", True, 1.5))
        33
        >>> lines.take()
        b'{"id":"a\\\\"b","ok":true,"ms":1.5}\\n'
        >>> timed = JsonLines(["at", "ms"], ["s", "ms"])
        >>> timed.add((1_700_000_000_123_456_789, 1_234_567))
        33
        >>> timed.take()
        b'{"at":1700000000.123,"ms":1.235}\\n'
    """

    def __init__(self, fields: list[str], units: list[str] | None = None) -> None:
        """`units`: per field "" (as given), "ms" or "s"; ValueError for another or a wrong count."""
    def add(self, values: tuple[object, ...]) -> int:
        """One line: `values` (None, bool, int, float or str) in the fields' order; ValueError
        for another count or type (nothing is written then). Returns the bytes now waiting."""
    def add_raw(self, line: bytes) -> int:
        """A line formatted elsewhere: one JSON object without a newline. Returns the bytes now
        waiting."""
    def take(self) -> bytes:
        """The lines added since the last take."""
    def write_to(self, fd: int) -> int:
        """Write the waiting lines to file descriptor `fd` (no copy into Python) and forget them;
        returns the bytes written. A non-blocking descriptor that is full keeps the rest waiting;
        another error drops them and raises OSError."""
    def __len__(self) -> int:
        """Bytes waiting."""

def cache_key(secret: bytes, namespace: str, extra: str, body: bytes) -> tuple[bytes, bool] | None:
    """The exact-cache key of a hub-format request body (rust/src/cache_key.rs).

    A keyed 128-bit hash (two SipHash-2-4 runs with the four 64-bit words of the 32-byte `secret`)
    over `namespace`, `extra` and the body's canonical form: members sorted by key, no whitespace,
    strings and numbers written one way, the top-level `user`, `metadata`, `store`,
    `safety_identifier` and `prompt_cache_key` left out. Bodies over 16 KiB are keyed with the GIL
    released.

    Returns:
        `(key, deterministic)`: the 16-byte key, and whether `temperature` is 0 or a `seed` is set;
        None when the body is not a JSON object (nested at most 128 deep).

    Raises:
        ValueError: `secret` is not 32 bytes.
    """

@final
class HfTokenizer:
    """A Hugging Face tokenizer loaded from a local `tokenizer.json` (the `tokenizers` crate; never
    downloaded): exact token counts for a deployment's own model.

    Example:
        >>> tokenizer = HfTokenizer("/models/llama/tokenizer.json")
        >>> tokenizer.count("hello world")
        2

    Raises:
        ValueError: The file cannot be read or is not a tokenizer.
    """

    def __init__(self, path: str) -> None: ...
    def count(self, text: str) -> int:
        """Tokens of `text`, no special tokens added (the GIL is released past 256 bytes).

        Raises:
            ValueError: The tokenizer failed on the text.
        """

    def count_prompt(self, body: bytes) -> int:
        """Tokens of the prompt of an OpenAI-format request body, as `count_prompt_tokens` finds
        its texts (each text's count remembered, keyed by the text; the GIL released past 256 bytes).

        Returns:
            The number of tokens; 0 when the body is not a valid JSON object.
        """

@final
class PiiScanner:
    """Typed spans of personal data and secrets in a text (rust/src/pii/): the built-in entity types
    named in `builtins` (`builtin_kinds()`) plus `custom` `(type, regex)` pairs in the `regex`
    crate's syntax. Linear-time matching; the GIL is released for texts over 4 KiB. ValueError for
    an unknown type or a pattern that does not compile (or compiles past 1 MiB)."""

    def __init__(self, builtins: list[str], custom: list[tuple[str, str]] = ...) -> None: ...
    @property
    def kinds(self) -> list[str]:
        """The entity type names, indexed by a match's first member."""
    @staticmethod
    def builtin_kinds() -> list[str]:
        """The built-in entity type names."""
    def scan(self, text: str) -> list[tuple[int, int, int]]:
        """`(kind, start, end)` of every entity in `text`: character offsets, ordered, disjoint
        (overlaps keep the earliest, then the longest)."""
