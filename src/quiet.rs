//! One log line per outage, not one per step: a call the daemon repeats every step (renewing
//! the Lease, reading the ReplicaSets) logs its first failure at Warning, the repeats at debug,
//! and its first success after them at Info with how long it failed and how often.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// The failure streak of one repeated call.
#[derive(Debug)]
pub struct Quiet {
    /// What is being done, for the log lines ("read or renew the Lease").
    what: &'static str,
    /// What the daemon does meanwhile ("following until it works").
    meanwhile: &'static str,
    /// When the streak began and how many failures it has had.
    streak: Option<(Instant, u64)>,
}

impl Quiet {
    pub fn new(what: &'static str, meanwhile: &'static str) -> Quiet {
        Quiet {
            what,
            meanwhile,
            streak: None,
        }
    }

    /// Logs a failure (Warning the first of a streak, debug after); true for the first.
    pub fn failed(&mut self, error: &dyn Display) -> bool {
        match &mut self.streak {
            Some((_, n)) => {
                *n += 1;
                tracing::debug!(error = %error, failures = *n, "Could still not {}.", self.what);
                false
            }
            None => {
                self.streak = Some((Instant::now(), 1));
                tracing::warn!(
                    error = %error,
                    "Could not {}; {}. Repeats are logged at debug.",
                    self.what,
                    self.meanwhile
                );
                true
            }
        }
    }

    /// Logs the end of a streak (Info) if there was one; how long it lasted and its failures.
    pub fn worked(&mut self) -> Option<(Duration, u64)> {
        let (since, n) = self.streak.take()?;
        let lasted = since.elapsed();
        tracing::info!(failed_secs = lasted.as_secs(), failures = n, "Could {} again.", self.what);
        Some((lasted, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streak_is_told_at_its_first_failure_and_at_its_end_only() {
        let mut q = Quiet::new("read the ReplicaSets", "the rollouts known stand");
        assert_eq!(q.worked(), None, "no streak, nothing to tell");
        assert!(q.failed(&"connection refused"));
        assert!(!q.failed(&"connection refused"));
        assert!(!q.failed(&"connection refused"));
        let (_, failures) = q.worked().expect("the streak ends");
        assert_eq!(failures, 3);
        assert_eq!(q.worked(), None);
        assert!(q.failed(&"again"), "a new streak is told again");
    }
}
