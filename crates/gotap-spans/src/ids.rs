//! Trace and span ids, and W3C `traceparent` parsing/formatting.
use crate::{SpanId, TraceId};

/// Parses a W3C `traceparent` value (`00-<32 hex>-<16 hex>-<2 hex>`). Returns `None` for anything
/// malformed, all-zero ids, or version `ff`, as the spec requires.
pub fn parse_traceparent(s: &str) -> Option<(TraceId, SpanId, u8)> {
    let s = s.trim();
    let parts: Vec<&str> = s.split('-').collect();
    if parts.len() < 4
        || parts[0].len() != 2
        || parts[1].len() != 32
        || parts[2].len() != 16
        || parts[3].len() != 2
    {
        return None;
    }
    let version = u8::from_str_radix(parts[0], 16).ok()?;
    if version == 0xff || (version == 0 && parts.len() != 4) {
        return None;
    }
    let mut trace = [0u8; 16];
    let mut span = [0u8; 8];
    decode_hex(parts[1], &mut trace)?;
    decode_hex(parts[2], &mut span)?;
    let flags = u8::from_str_radix(parts[3], 16).ok()?;
    if trace == [0; 16] || span == [0; 8] {
        return None;
    }
    Some((trace, span, flags))
}

pub fn format_traceparent(trace: &TraceId, span: &SpanId, flags: u8) -> String {
    format!("00-{}-{}-{:02x}", hex(trace), hex(span), flags)
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

fn decode_hex(s: &str, out: &mut [u8]) -> Option<()> {
    let b = s.as_bytes();
    if b.len() != out.len() * 2 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        let hi = (b[2 * i] as char).to_digit(16)?;
        let lo = (b[2 * i + 1] as char).to_digit(16)?;
        if b[2 * i].is_ascii_uppercase() || b[2 * i + 1].is_ascii_uppercase() {
            return None; // W3C requires lowercase hex
        }
        *o = (hi << 4 | lo) as u8;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trip() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let (t, s, f) = parse_traceparent(tp).unwrap();
        assert_eq!(format_traceparent(&t, &s, f), tp);
    }

    #[test]
    fn traceparent_rejects_bad_values() {
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
    }
}
