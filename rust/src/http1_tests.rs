use super::*;

/// Feeds `pieces` in order and returns the concatenated body.
fn feed_all(p: &mut Http1Parser, pieces: &[&[u8]]) -> Result<Vec<u8>, Http1Error> {
    let mut body = Vec::new();
    for piece in pieces {
        for r in p.feed(piece)? {
            body.extend_from_slice(&piece[r.clone()]);
        }
    }
    Ok(body)
}

fn parse_whole(msg: &[u8]) -> (Http1Parser, Vec<u8>) {
    let mut p = Http1Parser::new();
    let body = feed_all(&mut p, &[msg]).unwrap();
    (p, body)
}

/// Checks that every two-way split and byte-by-byte feeding give `want`.
fn check_all_splits(msg: &[u8], want: &[u8]) {
    for split in 0..=msg.len() {
        let mut p = Http1Parser::new();
        let body = feed_all(&mut p, &[&msg[..split], &msg[split..]]).unwrap();
        assert_eq!(body, want, "split at {split}");
        assert!(p.complete(), "split at {split}");
    }
    let mut p = Http1Parser::new();
    let bytes: Vec<&[u8]> = msg.chunks(1).collect();
    assert_eq!(feed_all(&mut p, &bytes).unwrap(), want);
    assert!(p.complete());
}

const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: Text/Event-Stream\r\nTransfer-Encoding: chunked\r\n\r\n\
5\r\nhello\r\n1;name=value;x=\"q\"\r\n \r\nA \r\n0123456789\r\n0\r\nX-Trailer: yes\r\nX-Other: 1\r\n\r\nJUNK";

#[test]
fn chunked_every_split_point() {
    check_all_splits(CHUNKED, b"hello 0123456789");
    let (p, _) = parse_whole(CHUNKED);
    assert_eq!(p.status(), 200);
    assert_eq!(p.content_type(), b"text/event-stream");
    assert!(p.keep_alive());
    let headers: Vec<_> = p.headers().collect();
    assert_eq!(
        headers[0],
        (&b"content-type"[..], &b"Text/Event-Stream"[..])
    );
    assert_eq!(headers[1], (&b"transfer-encoding"[..], &b"chunked"[..]));
}

#[test]
fn chunked_returns_partial_chunks_immediately() {
    let mut p = Http1Parser::new();
    let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\nabc";
    assert_eq!(feed_all(&mut p, &[head]).unwrap(), b"abc");
    assert_eq!(
        feed_all(&mut p, &[b"defghijklmnop\r\n0\r\n"]).unwrap(),
        b"defghijklmnop"
    );
    assert!(!p.complete());
    feed_all(&mut p, &[b"\r\n"]).unwrap();
    assert!(p.complete());
}

#[test]
fn chunked_bare_lf_and_uppercase_hex() {
    let (p, body) =
        parse_whole(b"HTTP/1.1 200 OK\ntransfer-encoding: gzip, Chunked\n\nA\n0123456789\n0\n\n");
    assert_eq!(body, b"0123456789");
    assert!(p.complete());
}

#[test]
fn content_length_every_split_point() {
    let msg = b"HTTP/1.1 201 Created\r\ncontent-length: 11\r\nContent-Type: application/json\r\n\r\n{\"ok\":true}extra";
    check_all_splits(msg, b"{\"ok\":true}");
    let (p, _) = parse_whole(msg);
    assert_eq!(p.status(), 201);
    assert!(p.keep_alive());
}

#[test]
fn content_length_zero_and_no_body_statuses() {
    for msg in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"[..],
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
    ] {
        let (p, body) = parse_whole(msg);
        assert!(p.complete() && body.is_empty() && p.keep_alive());
    }
}

#[test]
fn until_eof_body() {
    let mut p = Http1Parser::new();
    let body = feed_all(&mut p, &[b"HTTP/1.1 200 OK\r\nX: 1\r\n\r\nab", b"cd"]).unwrap();
    assert_eq!(body, b"abcd");
    assert!(!p.complete() && !p.keep_alive());
    p.feed_eof();
    assert!(p.complete() && !p.truncated());
    // Transfer-Encoding without chunked last is also read until EOF.
    let (p, body) = parse_whole(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz");
    assert_eq!(body, b"xyz");
    assert!(!p.complete() && !p.keep_alive());
}

#[test]
fn skips_interim_responses() {
    let msg = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
    check_all_splits(msg, b"hi");
    let (p, _) = parse_whole(msg);
    assert_eq!(p.status(), 200);
    assert_eq!(p.headers().count(), 1);
    let mut p = Http1Parser::new();
    feed_all(&mut p, &[b"HTTP/1.1 100 Continue\r\n\r\n"]).unwrap();
    assert!(!p.head_complete());
    assert_eq!(p.status(), 0);
}

#[test]
fn keep_alive_rules() {
    let ka = |msg: &[u8]| parse_whole(msg).0.keep_alive();
    assert!(!ka(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    ));
    assert!(!ka(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
    assert!(ka(
        b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n"
    ));
    assert!(!ka(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
    ));
    assert!(!ka(b"HTTP/1.1 200 OK\r\n\r\n"));
    assert!(!Http1Parser::new().keep_alive());
}

#[test]
fn truncated_and_eof_cases() {
    let mut p = Http1Parser::new();
    feed_all(&mut p, &[b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"]).unwrap();
    p.feed_eof();
    assert!(p.truncated() && !p.complete());
    let mut p = Http1Parser::new();
    feed_all(&mut p, &[b"HTTP/1.1 200 OK\r\nContent-"]).unwrap();
    p.feed_eof();
    assert!(p.truncated() && !p.head_complete());
    let mut p = Http1Parser::new();
    feed_all(&mut p, &[b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]).unwrap();
    p.feed_eof();
    assert!(!p.truncated() && p.complete());
}

#[test]
fn reset_reuses_the_parser() {
    let mut p = Http1Parser::new();
    feed_all(
        &mut p,
        &[b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Type: A/B\r\n\r\nx"],
    )
    .unwrap();
    assert!(p.complete());
    p.reset();
    assert!(!p.complete() && !p.head_complete() && p.status() == 0 && p.content_type().is_empty());
    let body = feed_all(
        &mut p,
        &[b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno"],
    )
    .unwrap();
    assert_eq!((p.status(), body.as_slice()), (404, &b"no"[..]));
}

fn error_of(pieces: &[&[u8]]) -> Http1Error {
    let mut p = Http1Parser::new();
    let err = feed_all(&mut p, pieces).unwrap_err();
    // The parser stays failed.
    assert_eq!(p.feed(b"more").unwrap_err(), err);
    err
}

#[test]
fn malformed_inputs() {
    assert_eq!(
        error_of(&[b"HTTX/1.1 200 OK\r\n\r\n"]),
        Http1Error::StatusLine
    );
    assert_eq!(
        error_of(&[b"HTTP/1.1 2x0 OK\r\n\r\n"]),
        Http1Error::StatusLine
    );
    assert_eq!(
        error_of(&[b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n"]),
        Http1Error::Header
    );
    for cl in ["abc", "-1", "", "1, 2", "99999999999999999999", "+5"] {
        let msg = format!("HTTP/1.1 200 OK\r\nContent-Length: {cl}\r\n\r\n");
        assert_eq!(
            error_of(&[msg.as_bytes()]),
            Http1Error::ContentLength,
            "{cl:?}"
        );
    }
    let msg = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n";
    assert_eq!(error_of(&[msg]), Http1Error::ContentLength);
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (bad, err) in [
        (&b"zz\r\n"[..], Http1Error::ChunkSize),
        (b"\r\n", Http1Error::ChunkSize),
        (b";ext\r\n", Http1Error::ChunkSize),
        (b"1 x\r\n", Http1Error::ChunkSize),
        (b"1000000000000000000\r\n", Http1Error::ChunkSize),
        (b"1;a\x01\r\n", Http1Error::ChunkExtension),
        (b"1\r\nxy", Http1Error::ChunkEnd),
        (b"0\r\n\rx", Http1Error::ChunkEnd),
    ] {
        assert_eq!(
            error_of(&[chunked, bad]),
            err,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn head_size_limits() {
    let big = format!("HTTP/1.1 200 OK\r\nX: {}\r\n", "a".repeat(MAX_HEAD));
    assert_eq!(error_of(&[big.as_bytes()]), Http1Error::HeadTooLarge);
    let pieces: Vec<&[u8]> = big.as_bytes().chunks(1000).collect();
    assert_eq!(error_of(&pieces), Http1Error::HeadTooLarge);
    let many: String = (0..MAX_HEADERS + 1)
        .map(|i| format!("H{i}: v\r\n"))
        .collect();
    let msg = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
    assert_eq!(error_of(&[msg.as_bytes()]), Http1Error::TooManyHeaders);
    let trailer = format!("{}\r\n", "t".repeat(MAX_TRAILERS));
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
    assert_eq!(
        error_of(&[chunked, trailer.as_bytes()]),
        Http1Error::TrailersTooLarge
    );
}

#[test]
fn whole_input_body_is_one_range() {
    let mut p = Http1Parser::new();
    feed_all(&mut p, &[b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"]).unwrap();
    let ranges = p.feed(b"0123456789").unwrap();
    assert_eq!((ranges.len(), ranges[0].clone()), (1, 0..10));
}
