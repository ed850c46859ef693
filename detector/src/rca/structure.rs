//! Structural evidence: what a service does for a request — the ordered calls of its entry spans
//! of one operation — has a distribution in the baseline. A code fault (an exception, a wrong
//! return value) rarely moves latency, but it changes what the *callers* do next: a caller that
//! gets an error or a useless answer stops, and its sequence of calls ends early.
//!
//! Per operation, patterns that became more frequent after the start are matched to the nearest
//! pattern that became rarer (longest common prefix). A grown pattern that is a strict prefix of
//! the one it replaced is a truncation at position k. The last thing before the stop takes the
//! blame: the answer of the last call (k − 1), or, when the caller stopped before any call, the
//! caller's own work. The call that no longer came (k) takes a little less — a request refused
//! before it was traced looks the same — and nothing when the last call failed, which explains
//! the stop. The caller shares some of the blame after a call too. Only the excess over what the
//! baseline frequency predicts counts, as a z of counts, so workload mix and rare patterns stay
//! quiet; the reference leaves out the guard band before the start when it can.
//!
//! A loop counts once: calls repeated back to back (one callee, or a block of up to
//! [`MAX_LOOP_BLOCK`] calls) are folded to one pass, so a request that loops over fewer items
//! (fewer trips found, a shorter basket) does not look like one that stopped short after the
//! loop's callee.

use super::traces::{Entry, Phase};
use super::{to_score, Finding};
use std::collections::{BTreeMap, HashMap};

/// Parameters of the structural evidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct StructureParams {
    /// Least baseline and test entries of an operation.
    pub min_base: usize,
    pub min_test: usize,
    pub half_z: f64,
    /// Structural evidence counts this much at most: it is indirect.
    pub weight: f64,
    /// Stopped after a call (whose answer takes the whole weight): the shares of the call that
    /// no longer came and of the caller.
    pub next_after_call: f64,
    pub caller: f64,
    /// Stopped before any call: the shares of the call that no longer came and of the caller.
    pub next_first: f64,
    pub caller_first: f64,
}

/// One pattern of calls: callees (name, external) in order.
type Pattern<'a> = Vec<(&'a str, bool)>;

fn common_prefix(a: &[(&str, bool)], b: &[(&str, bool)]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Longest block of calls folded as one loop iteration.
const MAX_LOOP_BLOCK: usize = 4;

/// Folds back-to-back repeats of a block of up to [`MAX_LOOP_BLOCK`] calls into one pass:
/// `a b b b c` → `a b c`, `a b c b c d` → `a b c d`. Shorter blocks first, until nothing repeats.
fn fold_loops<T: PartialEq>(pattern: &mut Vec<T>) {
    let mut changed = true;
    while changed {
        changed = false;
        for len in 1..=MAX_LOOP_BLOCK {
            let mut i = 0;
            while i + 2 * len <= pattern.len() {
                if pattern[i..i + len] == pattern[i + len..i + 2 * len] {
                    pattern.drain(i + len..i + 2 * len);
                    changed = true;
                } else {
                    i += 1;
                }
            }
        }
    }
}

/// Structural evidence per service.
pub(crate) fn evidence(entries: &[Entry], p: &StructureParams) -> Vec<Finding> {
    // (service, op) → pattern → [baseline, early baseline, test, test whose last call failed]
    let mut ops: BTreeMap<(&str, &str), HashMap<Pattern<'_>, [usize; 4]>> = BTreeMap::new();
    for e in entries {
        let mut pattern: Pattern<'_> = e.calls.iter().map(|c| (c.callee.as_str(), c.external)).collect();
        fold_loops(&mut pattern);
        let last_failed = e.calls.last().is_some_and(|c| c.failed);
        let slot = ops
            .entry((e.service.as_str(), e.op.as_str()))
            .or_default()
            .entry(pattern)
            .or_default();
        match e.phase {
            Phase::Base => {
                slot[0] += 1;
                slot[1] += usize::from(!e.guarded);
            }
            Phase::Test => {
                slot[2] += 1;
                slot[3] += usize::from(last_failed);
            }
        }
    }
    let mut out = Vec::new();
    for ((service, op), patterns) in &ops {
        // The reference: the baseline without its guard band, when that holds enough entries.
        let early: usize = patterns.values().map(|v| v[1]).sum();
        let col = if early >= p.min_base { 1 } else { 0 };
        let nb: usize = patterns.values().map(|v| v[col]).sum();
        let nt: usize = patterns.values().map(|v| v[2]).sum();
        if nb < p.min_base || nt < p.min_test {
            continue;
        }
        let share = |(b, t): (usize, usize)| t as f64 / nt as f64 - b as f64 / nb as f64;
        let shrunk: Vec<(&Pattern<'_>, f64)> = patterns
            .iter()
            .map(|(q, v)| (q, share((v[col], v[2]))))
            .filter(|(_, d)| *d < 0.0)
            .collect();
        if shrunk.is_empty() {
            continue;
        }
        for (q, v) in patterns {
            let (b, t, failed_last) = (v[col], v[2], v[3]);
            let expected = nt as f64 * b as f64 / nb as f64;
            let z = (t as f64 - expected) / (expected + 1.0).sqrt();
            if z <= 0.0 || share((b, t)) <= 0.0 {
                continue;
            }
            // The pattern it replaced: longest common prefix, then the one that shrank most.
            let Some((r, _)) = shrunk
                .iter()
                .max_by(|x, y| common_prefix(x.0, q).cmp(&common_prefix(y.0, q)).then(y.1.total_cmp(&x.1)))
            else {
                continue;
            };
            let k = common_prefix(r, q);
            if k != q.len() || k >= r.len() {
                continue; // not a truncation
            }
            let score = to_score(z, p.half_z);
            let what = format!(
                "{service} `{op}` stopped before calling {} in {t} of {nt} requests after the start (expected {expected:.1} from the baseline)",
                r[k].0
            );
            // A failed last call explains the stop: it is the cause, not the call that never came.
            let prev_failed = k > 0 && failed_last * 2 > t;
            let (w_prev, w_next, w_caller) = match (k, prev_failed) {
                (_, true) => (1.0, 0.0, p.caller),
                (0, false) => (0.0, p.next_first, p.caller_first),
                _ => (1.0, p.next_after_call, p.caller),
            };
            if w_prev > 0.0 {
                out.push(Finding::callee(
                    r[k - 1],
                    "trace:structure",
                    score * p.weight * w_prev,
                    format!(
                        "{what}; it called {} last{}.",
                        r[k - 1].0,
                        if prev_failed { ", which failed" } else { "" }
                    ),
                ));
            }
            if w_next > 0.0 {
                out.push(Finding::callee(
                    r[k],
                    "trace:structure",
                    score * p.weight * w_next,
                    format!("{what}."),
                ));
            }
            out.push(Finding::service(
                service,
                "trace:structure",
                score * p.weight * w_caller,
                format!(
                    "{what}; {}.",
                    if k == 0 {
                        "it stopped before any call: the caller itself"
                    } else {
                        "the caller itself"
                    }
                ),
            ));
        }
    }
    out.retain(|f| f.score > 0.0);
    out
}

#[cfg(test)]
mod tests {
    use super::fold_loops;

    #[test]
    fn back_to_back_repeats_fold_to_one_pass_and_other_order_stays() {
        let fold = |s: &str| {
            let mut v: Vec<char> = s.chars().collect();
            fold_loops(&mut v);
            v.into_iter().collect::<String>()
        };
        assert_eq!(fold("abbbc"), "abc");
        assert_eq!(fold("abcbcbcd"), "abcd");
        assert_eq!(fold("abcdabcde"), "abcde");
        assert_eq!(fold("abab"), "ab");
        // Not back to back, or a longer block than folded: left as it is.
        assert_eq!(fold("abca"), "abca");
        assert_eq!(fold("abcdeabcde"), "abcdeabcde");
        assert_eq!(fold(""), "");
    }
}
