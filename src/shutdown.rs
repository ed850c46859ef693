//! One SIGTERM (or SIGINT) stops the daemon. Kubernetes sends one TERM, waits the pod's
//! `terminationGracePeriodSeconds`, then KILLs; so the first signal must start the whole
//! shutdown: the receivers stop taking pushes, the step under way finishes, pending Incident
//! writes are flushed, the Lease is released, and the process exits — all within
//! `shutdown_grace_secs`, which a backstop enforces by exiting anyway. A second signal exits at
//! once.
//!
//! [`Shutdown`] is the handle every part of the daemon waits on.

use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Whether shutdown was asked for, and when (a cheap clone per task).
#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<Option<Instant>>,
    grace: Duration,
}

impl Shutdown {
    /// Listens for SIGTERM and SIGINT (inside a tokio runtime). The first starts shutdown and
    /// arms a backstop that exits the process, with status 1, `grace` later; the second exits
    /// at once.
    pub fn on_signals(grace: Duration) -> Shutdown {
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            let signal = next_signal().await;
            tracing::info!(
                signal,
                grace_secs = grace.as_secs(),
                "Stopping: receivers closed, finishing the step, then releasing the Lease."
            );
            let _ = tx.send(Some(Instant::now()));
            tokio::select! {
                signal = next_signal() => {
                    tracing::warn!(signal, "Second signal; exiting now.");
                }
                _ = tokio::time::sleep(grace) => {
                    tracing::error!(grace_secs = grace.as_secs(), "Shutdown took longer than shutdown_grace_secs; exiting now.");
                }
            }
            std::process::exit(1);
        });
        Shutdown { rx, grace }
    }

    /// A handle that `trigger` stops (tests).
    pub fn manual(grace: Duration) -> (Shutdown, impl FnOnce()) {
        let (tx, rx) = watch::channel(None);
        (Shutdown { rx, grace }, move || {
            let _ = tx.send(Some(Instant::now()));
        })
    }

    /// Completes once shutdown was asked for (at once if it was).
    pub async fn requested(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(Option::is_some).await;
    }

    /// Whether shutdown was asked for.
    pub fn is_requested(&self) -> bool {
        self.rx.borrow().is_some()
    }

    /// The instant by which the part of shutdown that has `share` of the grace period must be
    /// done, counted from the signal (from now when there was none: stopping on an error is
    /// bounded the same way).
    pub fn deadline(&self, share: f64) -> Instant {
        let start = self.rx.borrow().unwrap_or_else(Instant::now);
        start + self.grace.mul_f64(share.clamp(0.0, 1.0))
    }
}

/// The name of the next SIGTERM or SIGINT.
async fn next_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            },
            _ => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn deadlines_are_shares_of_the_grace_period_from_the_request() {
        let (stop, trigger) = Shutdown::manual(Duration::from_secs(20));
        assert!(!stop.is_requested());
        assert_eq!(stop.deadline(0.5), Instant::now() + Duration::from_secs(10));
        let waiting = tokio::spawn({
            let stop = stop.clone();
            async move { stop.requested().await }
        });
        tokio::time::advance(Duration::from_secs(3)).await;
        let asked = Instant::now();
        trigger();
        waiting.await.unwrap();
        assert!(stop.is_requested());
        assert_eq!(stop.deadline(0.5), asked + Duration::from_secs(10));
        assert_eq!(stop.deadline(1.0), asked + Duration::from_secs(20));
    }
}
