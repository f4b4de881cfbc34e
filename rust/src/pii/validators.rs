//! Checks that turn a pattern's candidate into a match: checksums and shape rules the regex cannot
//! express. Each takes the matched text and says whether it is the entity.

use std::net::Ipv6Addr;

/// The digits of `text`, in order.
fn digits(text: &str) -> impl Iterator<Item = u32> + '_ {
    text.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| u32::from(b - b'0'))
}

/// A payment card number: 13-19 digits passing the Luhn check, one separator kind at most.
pub fn card(text: &str) -> bool {
    let count = digits(text).count();
    if !(13..=19).contains(&count) {
        return false;
    }
    if text.contains(' ') && text.contains('-') {
        return false;
    }
    // Card numbers are printed in groups of 3 to 6 digits (4-4-4-4, 4-6-5), a shorter one only at
    // the end; an ISBN-13 (978-0-04-410812-2) is not.
    let groups: Vec<&str> = text.split([' ', '-']).collect();
    if groups[..groups.len() - 1]
        .iter()
        .any(|group| group.len() < 3)
    {
        return false;
    }
    let all: Vec<u32> = digits(text).collect();
    if count == 13 && all[0] == 9 && all[1] == 7 && (all[2] == 8 || all[2] == 9) {
        return false; // an ISBN-13 (Bookland prefix), which has a check digit of its own
    }
    if all.iter().all(|&d| d == all[0]) {
        return false; // 0000 0000 0000 0000 passes Luhn but is no card
    }
    let mut sum = 0;
    for (i, &d) in all.iter().rev().enumerate() {
        sum += if i % 2 == 1 {
            let twice = d * 2;
            if twice > 9 {
                twice - 9
            } else {
                twice
            }
        } else {
            d
        };
    }
    sum % 10 == 0
}

/// An IBAN: a known length for its country is not checked, its ISO 13616 mod-97 checksum is.
pub fn iban(text: &str) -> bool {
    let compact: Vec<u8> = text.bytes().filter(|b| *b != b' ').collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    // Move the first four characters to the end, letters as 10..35, the whole number mod 97 is 1.
    let mut remainder: u32 = 0;
    for &b in compact[4..].iter().chain(compact[..4].iter()) {
        let value = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

/// A US social security number: not area 000, 666 or 900-999, group 00 or serial 0000.
pub fn us_ssn(text: &str) -> bool {
    let all: Vec<u32> = digits(text).collect();
    if all.len() != 9 {
        return false;
    }
    let area = all[0] * 100 + all[1] * 10 + all[2];
    let group = all[3] * 10 + all[4];
    let serial = all[5] * 1000 + all[6] * 100 + all[7] * 10 + all[8];
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// A phone number: 7-15 digits with a leading `+` (E.164), else 9-13 for a national form.
pub fn phone(text: &str) -> bool {
    let count = digits(text).count();
    if text.starts_with('+') {
        (8..=15).contains(&count)
    } else {
        (9..=13).contains(&count)
    }
}

/// An IPv6 address (the candidate is a run of hex digits and colons).
pub fn ipv6(text: &str) -> bool {
    text.bytes().filter(|b| *b == b':').count() >= 2
        && text.bytes().any(|b| b.is_ascii_hexdigit())
        && text.parse::<Ipv6Addr>().is_ok()
}

/// A token that looks random enough to be a secret: letters and digits mixed, and a Shannon
/// entropy of at least 4.2 bits a character (hex digests stay below it; base62 keys are ~4.5+).
pub fn high_entropy(text: &str) -> bool {
    let bytes = text.as_bytes();
    if !bytes.iter().any(u8::is_ascii_digit)
        || !bytes.iter().any(u8::is_ascii_lowercase)
        || !bytes.iter().any(u8::is_ascii_uppercase)
    {
        return false;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let n = bytes.len() as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    entropy >= 4.2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn() {
        assert!(card("4111 1111 1111 1111"));
        assert!(card("5500-0000-0000-0004"));
        assert!(!card("4111 1111 1111 1112"));
        assert!(!card("0000 0000 0000 0000"));
        assert!(!card("4111 1111-1111 1111"));
        assert!(!card("978-0-04-410812-2"));
        assert!(!card("9780044108122"));
    }

    #[test]
    fn iban_checksum() {
        assert!(iban("GB82WEST12345698765432"));
        assert!(iban("DE89 3704 0044 0532 0130 00"));
        assert!(!iban("GB82WEST12345698765433"));
    }

    #[test]
    fn ssn_rules() {
        assert!(us_ssn("123-45-6789"));
        assert!(!us_ssn("000-45-6789"));
        assert!(!us_ssn("666-45-6789"));
        assert!(!us_ssn("912-45-6789"));
        assert!(!us_ssn("123-00-6789"));
    }

    #[test]
    fn v6() {
        assert!(ipv6("2001:db8::1"));
        assert!(ipv6("fe80::1ff:fe23:4567:890a"));
        assert!(!ipv6("12:30:45"));
        assert!(!ipv6("::"));
    }

    #[test]
    fn entropy() {
        assert!(high_entropy("aZ3kQ9xP2mL7vB4nR8tY1wE6uI0oS5dF"));
        assert!(!high_entropy("0123456789abcdef0123456789abcdef01234567"));
        assert!(!high_entropy("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1A"));
    }
}
