use super::*;
use crate::chunk_scan::{ARGUMENTS, CONTENT, KINDS, REASONING};

fn relay(model: Option<&str>, strip: bool) -> SseRelay {
    SseRelay::new(model, strip, true, Encoding::O200kBase)
}

/// Output of one feed.
fn feed(r: &mut SseRelay, data: &[u8]) -> Vec<u8> {
    match r.feed(data) {
        Emitted::Empty => Vec::new(),
        Emitted::Input(range) => data[range].to_vec(),
        Emitted::Buffer => r.output().to_vec(),
    }
}

/// Feeds every piece, then finishes; returns the output of each call.
fn run(r: &mut SseRelay, pieces: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut outs: Vec<Vec<u8>> = pieces.iter().map(|p| feed(r, p)).collect();
    outs.push(r.finish());
    outs
}

const E1: &str = r#"data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}"#;
const E2: &str = r#"data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"content":" wor\u006cd"},"finish_reason":null}]}"#;
const E3: &str = r#"data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":1}}}"#;

fn stream(term: &str) -> String {
    [E1, E2, E3].iter().map(|e| format!("{e}{term}")).collect()
}

fn check_results(r: &mut SseRelay) {
    assert_eq!(r.events, 3);
    assert_eq!(r.malformed_events, 0);
    assert_eq!(
        r.usage,
        Some(Usage {
            prompt: 9,
            completion: 2,
            cached: 4,
            reasoning: 1
        })
    );
    assert_eq!(r.finish_reason.as_deref(), Some("stop"));
    assert_eq!(r.texts[CONTENT], b"Hello world");
    assert_eq!(r.output_tokens(), 2);
}

#[test]
fn every_split_point_every_terminator() {
    for term in ["\n\n", "\r\n\r\n", "\r\r", "\n\r\n", "\r\n\n"] {
        let body = stream(term);
        let bytes = body.as_bytes();
        let ends: Vec<usize> = [E1, E2, E3]
            .iter()
            .scan(0, |end, e| {
                *end += e.len() + term.len();
                Some(*end)
            })
            .collect();
        for split in 0..=bytes.len() {
            let mut r = relay(None, false);
            let outs = run(&mut r, &[&bytes[..split], &bytes[split..]]);
            assert_eq!(outs.concat(), bytes, "term {term:?} split {split}");
            // The first feed returns exactly the events it completed. A blank line ending in
            // CRLF is complete at its CR; the LF then leads the next output.
            let mut want = ends
                .iter()
                .copied()
                .filter(|&e| e <= split)
                .max()
                .unwrap_or(0);
            if term.ends_with("\r\n") && ends.contains(&(split + 1)) {
                want = split;
            }
            assert_eq!(outs[0].len(), want, "term {term:?} split {split}");
            assert!(outs[2].is_empty());
            check_results(&mut r);
        }
        let mut r = relay(None, false);
        let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(run(&mut r, &pieces).concat(), bytes);
        check_results(&mut r);
    }
}

#[test]
fn whole_input_passes_through_as_one_range() {
    let body = stream("\n\n");
    let mut r = relay(None, false);
    assert_eq!(r.feed(body.as_bytes()), Emitted::Input(0..body.len()));
    assert_eq!(r.feed(b"data: {\"a\":"), Emitted::Empty);
}

#[test]
fn model_rewrite_keeps_other_bytes() {
    let body = stream("\r\n\r\n");
    let want = body.replace(
        r#""model":"gpt-4o-2024-08-06""#,
        r#""model":"my \"alias\"""#,
    );
    for split in [0, 7, 100, body.len() / 2, body.len() - 1] {
        let mut r = relay(Some("my \"alias\""), false);
        let outs = run(
            &mut r,
            &[&body.as_bytes()[..split], &body.as_bytes()[split..]],
        );
        assert_eq!(
            String::from_utf8(outs.concat()).unwrap(),
            want,
            "split {split}"
        );
        check_results(&mut r);
    }
    // Nested "model" members and models inside strings are left alone.
    let event = "data: {\"choices\":[{\"delta\":{\"content\":\"\\\"model\\\":\\\"x\\\"\",\"model\":\"n\"}}],\"model\":\"up\"}\n\n";
    let mut r = relay(Some("down"), false);
    assert_eq!(
        feed(&mut r, event.as_bytes()),
        event
            .replace("\"model\":\"up\"", "\"model\":\"down\"")
            .as_bytes()
    );
    // Same name: no copy needed.
    let mut r = relay(Some("gpt-4o-2024-08-06"), false);
    assert_eq!(r.feed(E1.as_bytes()), Emitted::Empty);
    assert_eq!(r.feed(b"\n\n"), Emitted::Buffer);
    assert_eq!(r.output(), format!("{E1}\n\n").as_bytes());
}

#[test]
fn comments_and_other_fields_pass_through() {
    let body = ": ping\n\nevent: message\nid: 7\nretry: 1000\ndata: {\"model\":\"a\",\"choices\":[]}\n\n: keep-alive\r\n\r\n";
    let mut r = relay(Some("b"), false);
    let out = feed(&mut r, body.as_bytes());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        body.replace("\"a\"", "\"b\"")
    );
    assert_eq!(r.events, 1);
}

#[test]
fn strips_usage_only_chunk() {
    let usage = r#"data: {"id":"c1","model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7}}"#;
    let body = format!("{E1}\n\n{usage}\n\ndata: [DONE]\n\n");
    let mut r = relay(None, true);
    let out = feed(&mut r, body.as_bytes());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("{E1}\n\ndata: [DONE]\n\n")
    );
    assert_eq!(
        r.usage,
        Some(Usage {
            prompt: 5,
            completion: 7,
            cached: 0,
            reasoning: 0
        })
    );
    assert_eq!(r.events, 1);
    assert!(r.done);
    // Without stripping, or with a null usage, it stays.
    let mut r = relay(None, false);
    assert_eq!(feed(&mut r, body.as_bytes()), body.as_bytes());
    assert_eq!(r.events, 2);
    let null_usage = "data: {\"choices\":[],\"usage\":null}\n\n";
    let mut r = relay(None, true);
    assert_eq!(feed(&mut r, null_usage.as_bytes()), null_usage.as_bytes());
    assert_eq!(r.usage, None);
    // A held usage-only chunk is dropped by finish too.
    let mut r = relay(None, true);
    assert!(feed(&mut r, usage.as_bytes()).is_empty());
    assert!(r.finish().is_empty());
    assert_eq!(r.usage.map(|u| u.completion), Some(7));
}

#[test]
fn done_and_finish() {
    let mut r = relay(None, false);
    assert_eq!(feed(&mut r, b"data: [DONE]\n\n"), b"data: [DONE]\n\n");
    assert!(r.done);
    assert_eq!(r.events, 0);
    let mut r = relay(Some("x"), false);
    assert!(feed(&mut r, b"data: [DONE]").is_empty());
    assert_eq!(r.finish(), b"data: [DONE]");
    assert!(r.done);
    assert!(r.finish().is_empty());
}

#[test]
fn error_events() {
    let body = "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\",\"code\":null}}\n\n";
    let mut r = relay(None, false);
    assert_eq!(feed(&mut r, body.as_bytes()), body.as_bytes());
    assert_eq!(
        r.error.as_deref(),
        Some(&br#"{"message":"overloaded","type":"server_error","code":null}"#[..])
    );
    assert_eq!(r.events, 1);
    let mut r = relay(None, false);
    feed(&mut r, b"data: {\"error\":null}\n\n");
    assert_eq!(r.error, None);
}

#[test]
fn multi_line_data() {
    let body = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\r\ndata:\"model\":\"up\",\ndata:  \"x\": 1}\n\n";
    let mut r = relay(Some("down"), false);
    let out = feed(&mut r, body.as_bytes());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        body.replace("\"up\"", "\"down\"")
    );
    assert_eq!((r.events, r.malformed_events), (1, 0));
    assert_eq!(r.texts[CONTENT], b"Hi");
}

#[test]
fn malformed_events_pass_through() {
    let body = "data: {\"model\":\"a\",\ndata:\n\ndata: not json\n\ndata: {\"a\":1} x\n\ndata\n\n";
    let mut r = relay(Some("b"), false);
    assert_eq!(feed(&mut r, body.as_bytes()), body.as_bytes());
    assert_eq!((r.events, r.malformed_events), (4, 4));
    let mut r = relay(Some("b"), false);
    assert_eq!(feed(&mut r, b"data: [1, 2]\n\n"), b"data: [1, 2]\n\n");
    assert_eq!((r.events, r.malformed_events), (1, 0));
}

#[test]
fn collects_all_output_text_kinds() {
    let body = concat!(
        r#"data: {"choices":[{"index":0,"delta":{"reasoning_content":"think","content":null}}]}"#,
        "\n\n",
        r#"data: {"choices":[{"delta":{"reasoning":" more"},"index":0}]}"#,
        "\n\n",
        r#"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{\"a\":"}}]}}]}"#,
        "\n\n",
        r#"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}}]}"#,
        "\n\n",
        r#"data: {"choices":[{"text":"legacy","index":1,"finish_reason":"length"}]}"#,
        "\n\n",
        r#"data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        "\n\n",
    );
    let mut r = relay(None, false);
    feed(&mut r, body.as_bytes());
    assert_eq!(r.texts[REASONING], b"think more");
    assert_eq!(r.texts[ARGUMENTS], br#"{"a":1}"#);
    assert_eq!(r.texts[KINDS + CONTENT], b"legacy");
    assert_eq!(r.finish_reason.as_deref(), Some("tool_calls"));
    let want: usize = ["think more", "{\"a\":1}", "legacy"]
        .iter()
        .map(|t| Encoding::O200kBase.count(t))
        .sum();
    assert_eq!(r.output_tokens(), want);
    let mut quiet = SseRelay::new(None, false, false, Encoding::Cl100kBase);
    feed(&mut quiet, body.as_bytes());
    assert_eq!(quiet.output_tokens(), 0);
}

#[test]
fn lone_cr_at_end_of_feed() {
    let mut r = relay(None, false);
    assert_eq!(feed(&mut r, b"data: {}\r\r"), b"data: {}\r\r");
    assert_eq!(feed(&mut r, b"\ndata: {}\r\n\r\n"), b"\ndata: {}\r\n\r\n");
    assert_eq!(r.events, 2);
    // A line ending CR, then its LF in the next feed, is not a blank line.
    let mut r = relay(None, false);
    assert!(feed(&mut r, b"data: {}\r").is_empty());
    assert!(feed(&mut r, b"\n").is_empty());
    assert_eq!(feed(&mut r, b"\r\n"), b"data: {}\r\n\r\n");
}

#[test]
fn never_holds_complete_events() {
    let mut r = relay(Some("z"), false);
    let e1 = format!("{E1}\n\n");
    let out = feed(&mut r, format!("{e1}{}", &E2[..20]).as_bytes());
    assert_eq!(out, e1.replace("gpt-4o-2024-08-06", "z").as_bytes());
    let out = feed(&mut r, format!("{}\n\n{E3}\n\n: c", &E2[20..]).as_bytes());
    let want = format!("{E2}\n\n{E3}\n\n").replace("gpt-4o-2024-08-06", "z");
    assert_eq!(String::from_utf8(out).unwrap(), want);
    assert_eq!(r.finish(), b": c");
}
