//! PII detection: typed spans of personal data and secrets in a text (issue 20).
//!
//! Every pattern runs on the `regex` crate's engines, linear in the text's length whatever the input
//! (no backtracking: a client cannot make a scan slow). One `RegexSet` pass first says which patterns
//! match at all, so a text without PII costs one scan; only the patterns that matched are run again
//! for their spans, and each candidate goes through its validator (Luhn, the IBAN checksum, SSN
//! ranges, an IPv6 parse, an entropy bound). Overlapping matches keep the earliest, then the longest.
//! Spans are byte offsets here; the Python layer (`py.rs`) gives character offsets.

pub mod py;
pub mod validators;

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

type Validator = fn(&str) -> bool;

/// The built-in entity types, each with its patterns and the check a candidate must pass.
/// `(?-u:\b)` is an ASCII word boundary: the fast engines handle it on any text.
const BUILTIN: &[(&str, &str, Option<Validator>)] = &[
    (
        "url_credentials",
        r"(?i)(?-u:\b)[a-z][a-z0-9+.\-]{1,20}://[^\s:/@]{1,256}:[^\s/@]{1,256}@[^\s/?#]{1,256}",
        None,
    ),
    (
        "email",
        r"(?i)(?-u:\b)[a-z0-9._%+\-]{1,64}@(?:[a-z0-9\-]{1,63}\.){1,8}[a-z]{2,24}(?-u:\b)",
        None,
    ),
    (
        "jwt",
        r"(?-u:\b)eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
        None,
    ),
    (
        "api_key",
        concat!(
            r"(?-u:\b)(?:sk-(?:proj-|ant-(?:api\d\d-)?|svcacct-)?[A-Za-z0-9_\-]{20,}",
            r"|AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}",
            r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}",
            r"|xox[abposr]-[A-Za-z0-9\-]{10,}|AIza[0-9A-Za-z_\-]{35}",
            r"|[sr]k_(?:live|test)_[0-9A-Za-z]{20,}|glpat-[0-9A-Za-z_\-]{20,}",
            r"|hf_[A-Za-z0-9]{30,}|gsk_[A-Za-z0-9]{40,})"
        ),
        None,
    ),
    (
        "iban",
        r"(?-u:\b)[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?-u:\b)",
        Some(validators::iban),
    ),
    (
        "credit_card",
        r"(?-u:\b)(?:\d[ \-]?){12,18}\d(?-u:\b)",
        Some(validators::card),
    ),
    (
        "us_ssn",
        r"(?-u:\b)\d{3}[ \-]\d{2}[ \-]\d{4}(?-u:\b)",
        Some(validators::us_ssn),
    ),
    // A trailing extension (x123, ext. 123) belongs to the number.
    // International (E.164 with separators, an optional "(0)" trunk and bracketed area codes) and
    // national forms: (555) 123-4567, 555.123.4567, (0161) 4960066, 030 1234 5678, 06 12 34 56 78.
    (
        "phone",
        r"\+[1-9]\d{0,2}[ .\-]?(?:\(0\)[ .\-]?)?(?:\(?\d{1,5}\)?[ .\-]?){1,6}\d(?:\s?(?:x|ext\.?)\s?\d{1,6})?(?-u:\b)",
        Some(validators::phone),
    ),
    (
        "phone",
        r"(?:\(\d{3}\) ?|(?-u:\b)\d{3}[ .\-])\d{3}[ .\-]\d{4}(?:\s?(?:x|ext\.?)\s?\d{1,6})?(?-u:\b)",
        Some(validators::phone),
    ),
    (
        "phone",
        r"(?:\(0\d{1,4}\) ?|(?-u:\b)0\d{1,4})(?:[ \-]?\d{2,4}){2,4}(?-u:\b)",
        Some(validators::phone),
    ),
    (
        "ipv6",
        r"(?i)[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}",
        Some(validators::ipv6),
    ),
    (
        "ipv4",
        r"(?-u:\b)(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?-u:\b)",
        None,
    ),
    // Open-ended on purpose: a bounded repetition ({32,512}) multiplies the automaton's states.
    (
        "secret",
        r"[A-Za-z0-9+/_\-]{32,}={0,2}",
        Some(validators::high_entropy),
    ),
];

/// The built-in entity type names, in the order ties are broken.
pub fn builtin_kinds() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for (name, _, _) in BUILTIN {
        if !names.contains(name) {
            names.push(name);
        }
    }
    names
}

/// One match: the entity type (an index into `PiiScanner::kinds`) and its byte span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    pub kind: usize,
    pub start: usize,
    pub end: usize,
}

struct Pattern {
    kind: usize,
    regex: Regex,
    validator: Option<Validator>,
}

/// A compiled set of entity types: built-ins by name plus custom patterns and deny-lists.
pub struct PiiScanner {
    kinds: Vec<String>,
    set: RegexSet,
    patterns: Vec<Pattern>,
}

// Custom patterns come from an operator's config; this bounds what one may compile to.
const CUSTOM_SIZE_LIMIT: usize = 1 << 20;

impl PiiScanner {
    /// A scanner for the built-in types `builtins` plus `custom` `(type, regex)` pairs (a deny-list
    /// is a custom pattern of escaped words). Errors name an unknown type or a bad pattern.
    pub fn new(builtins: &[String], custom: &[(String, String)]) -> Result<Self, String> {
        let known = builtin_kinds();
        let mut kinds: Vec<String> = Vec::new();
        let mut sources: Vec<String> = Vec::new();
        let mut patterns: Vec<Pattern> = Vec::new();
        let kind_of = |name: &str, kinds: &mut Vec<String>| -> usize {
            match kinds.iter().position(|k| k == name) {
                Some(i) => i,
                None => {
                    kinds.push(name.to_string());
                    kinds.len() - 1
                }
            }
        };
        for name in builtins {
            if !known.contains(&name.as_str()) {
                return Err(format!("unknown entity type {name:?}"));
            }
        }
        // Built-ins in table order (it breaks ties), whatever order the config lists them in.
        for (name, source, validator) in BUILTIN {
            if !builtins.iter().any(|b| b == name) {
                continue;
            }
            let kind = kind_of(name, &mut kinds);
            let regex = Regex::new(source).map_err(|e| e.to_string())?;
            sources.push((*source).to_string());
            patterns.push(Pattern {
                kind,
                regex,
                validator: *validator,
            });
        }
        for (name, source) in custom {
            let kind = kind_of(name, &mut kinds);
            let regex = RegexBuilder::new(source)
                .size_limit(CUSTOM_SIZE_LIMIT)
                .build()
                .map_err(|e| format!("pattern of {name:?}: {e}"))?;
            sources.push(source.clone());
            patterns.push(Pattern {
                kind,
                regex,
                validator: None,
            });
        }
        let set = RegexSetBuilder::new(&sources)
            .size_limit(CUSTOM_SIZE_LIMIT * 16)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            kinds,
            set,
            patterns,
        })
    }

    /// The entity type names, indexed by `Match::kind`.
    pub fn kinds(&self) -> &[String] {
        &self.kinds
    }

    /// Every entity in `text`, ordered by start, none overlapping.
    pub fn scan(&self, text: &str) -> Vec<Match> {
        let mut found: Vec<Match> = Vec::new();
        if self.patterns.is_empty() {
            return found;
        }
        for index in self.set.matches(text).iter() {
            let pattern = &self.patterns[index];
            for m in pattern.regex.find_iter(text) {
                if m.start() == m.end() {
                    continue;
                }
                if let Some(valid) = pattern.validator {
                    if !valid(m.as_str()) {
                        continue;
                    }
                }
                found.push(Match {
                    kind: pattern.kind,
                    start: m.start(),
                    end: m.end(),
                });
            }
        }
        // Earliest first, then longest, then the type listed first.
        found.sort_unstable_by(|a, b| {
            a.start
                .cmp(&b.start)
                .then(b.end.cmp(&a.end))
                .then(a.kind.cmp(&b.kind))
        });
        let mut kept: Vec<Match> = Vec::with_capacity(found.len());
        for m in found {
            if kept.last().is_none_or(|last| m.start >= last.end) {
                kept.push(m);
            }
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> PiiScanner {
        let names: Vec<String> = builtin_kinds().iter().map(|s| s.to_string()).collect();
        PiiScanner::new(&names, &[("employee_id".into(), r"EMP-\d{6}".into())]).unwrap()
    }

    fn kinds_in(scanner: &PiiScanner, text: &str) -> Vec<(String, String)> {
        scanner
            .scan(text)
            .iter()
            .map(|m| {
                (
                    scanner.kinds()[m.kind].clone(),
                    text[m.start..m.end].to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn finds_each_type() {
        let s = all();
        let text = "mail ann.lee@example.co.uk, card 4111 1111 1111 1111, ssn 123-45-6789, \
                    call +44 20 7946 0958 or (555) 123-4567, iban GB82 WEST 1234 5698 7654 32, \
                    host 10.0.0.1 / 2001:db8::1, db postgres://u:hunter2@db.local/x, \
                    key sk-proj-abcdefghijklmnopqrstuvwx, EMP-123456";
        let found = kinds_in(&s, text);
        let names: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "email",
                "credit_card",
                "us_ssn",
                "phone",
                "phone",
                "iban",
                "ipv4",
                "ipv6",
                "url_credentials",
                "api_key",
                "employee_id"
            ],
            "{found:?}"
        );
        assert_eq!(found[1].1, "4111 1111 1111 1111");
        assert_eq!(found[5].1, "GB82 WEST 1234 5698 7654 32");
    }

    #[test]
    fn distractors_pass() {
        let s = all();
        for text in [
            "order 2024-05-17 #4111111111111112 v1.2.3 at 12:30:45",
            "sha 0123456789abcdef0123456789abcdef01234567",
            "ISO 8601 2024-01-01T00:00:00Z, build 20240101",
        ] {
            assert!(s.scan(text).is_empty(), "{text}: {:?}", kinds_in(&s, text));
        }
    }

    #[test]
    fn bad_config() {
        assert!(PiiScanner::new(&["nope".into()], &[]).is_err());
        assert!(PiiScanner::new(&[], &[("x".into(), "(".into())]).is_err());
    }
}
