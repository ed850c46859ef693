//! The audit log: one JSON line per decision on stdout (the cluster's log pipeline collects it),
//! each carrying the SHA-256 of the previous line, so a missing or edited line shows.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::Write;

/// The hash the first line links to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Writes hash-chained audit lines.
pub struct AuditLog<W: Write> {
    out: W,
    prev: String,
    /// Lines written.
    pub lines: u64,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl<W: Write> AuditLog<W> {
    pub fn new(out: W) -> AuditLog<W> {
        AuditLog {
            out,
            prev: GENESIS.into(),
            lines: 0,
        }
    }

    /// Appends `{"at", "event", ...fields, "prev"}`; returns the line written (without newline).
    pub fn record(&mut self, at: &str, event: &str, fields: Value) -> std::io::Result<String> {
        let mut line = json!({"at": at, "event": event, "prev": self.prev});
        if let (Some(obj), Value::Object(extra)) = (line.as_object_mut(), fields) {
            for (k, v) in extra {
                obj.entry(k).or_insert(v);
            }
        }
        let text = serde_json::to_string(&line).expect("JSON");
        writeln!(self.out, "{text}")?;
        self.out.flush()?;
        self.prev = hex(&Sha256::digest(text.as_bytes()));
        self.lines += 1;
        Ok(text)
    }
}

/// Checks a chain of audit lines: `Ok(n)` when every line links to the one before it.
pub fn verify(lines: &[&str]) -> Result<usize, String> {
    let mut prev = GENESIS.to_string();
    for (i, l) in lines.iter().enumerate() {
        let v: Value = serde_json::from_str(l).map_err(|e| format!("line {}: not JSON: {e}", i + 1))?;
        if v.get("prev").and_then(Value::as_str) != Some(prev.as_str()) {
            return Err(format!("line {}: does not follow line {} (a gap or an edit)", i + 1, i));
        }
        prev = hex(&Sha256::digest(l.as_bytes()));
    }
    Ok(lines.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edited_or_missing_line_breaks_the_chain() {
        let mut log = AuditLog::new(Vec::new());
        for i in 0..3 {
            log.record("2026-03-02T09:45:00Z", "action", json!({"n": i})).unwrap();
        }
        let text = String::from_utf8(log.out.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(verify(&lines), Ok(3));
        let edited = lines[1].replace("\"n\":1", "\"n\":7");
        assert!(verify(&[lines[0], &edited, lines[2]]).is_err());
        assert!(verify(&[lines[0], lines[2]]).is_err());
    }
}
