//! The webhook notifier: new incidents, approval requests, failed verifications and failed
//! actions go to the on-call engineers' tools — a generic JSON body, or a Slack-compatible one
//! (`text` plus `blocks`; Slack incoming webhooks, Mattermost and Rocket.Chat accept it).
//!
//! Sending never blocks the operator: notifications go into a bounded queue (what does not fit
//! is dropped and counted) and a background task posts them, retrying 5xx answers and
//! connection errors with backoff.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    IncidentOpened,
    ApprovalRequested,
    ActionFailed,
    VerificationFailed,
    /// The engine escalated it (a fix did not hold): pages.
    IncidentEscalated,
    /// A symptom of its fault came back after it resolved (an update, not a page).
    IncidentReopened,
    /// Every symptom back inside its baseline for the hold (an update, not a page).
    IncidentResolved,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::IncidentOpened => "incident_opened",
            NotificationKind::ApprovalRequested => "approval_requested",
            NotificationKind::ActionFailed => "action_failed",
            NotificationKind::VerificationFailed => "verification_failed",
            NotificationKind::IncidentEscalated => "incident_escalated",
            NotificationKind::IncidentReopened => "incident_reopened",
            NotificationKind::IncidentResolved => "incident_resolved",
        }
    }

    /// Whether this kind pages a person; the others update the thread its key names.
    pub fn pages(self) -> bool {
        matches!(
            self,
            NotificationKind::IncidentOpened | NotificationKind::IncidentEscalated | NotificationKind::VerificationFailed
        )
    }
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub kind: NotificationKind,
    /// The Incident object's name.
    pub incident: String,
    /// The operator's namespace (where the Incident lives).
    pub namespace: String,
    /// When (RFC 3339, telemetry time).
    pub at: String,
    /// One or two sentences a person can act on.
    pub text: String,
    /// How to respond, when a person must (e.g. the kubectl command that approves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub respond: Option<String>,
    /// The same for every notification of one incident (`cellwarden/<namespace>/<incident>`),
    /// as Alertmanager's group key or PagerDuty's `dedup_key`: a receiver folds them into one
    /// thread, and only those whose `pages` is true should page.
    #[serde(default)]
    pub dedup_key: String,
    #[serde(default)]
    pub pages: bool,
}

/// The body format a webhook expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `{"kind", "incident", "namespace", "at", "text", "respond"}`.
    #[default]
    Json,
    /// `{"text", "blocks"}` as Slack incoming webhooks take it.
    Slack,
}

/// One webhook (`notify:` in the daemon's config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST.
    pub url: String,
    #[serde(default)]
    pub format: Format,
    /// Which kinds to send; empty for all.
    #[serde(default)]
    pub kinds: Vec<NotificationKind>,
}

/// The body of `n` in `format`.
pub fn body(format: Format, n: &Notification) -> Value {
    match format {
        Format::Json => serde_json::to_value(n).expect("a notification serialises"),
        Format::Slack => {
            let title = match n.kind {
                NotificationKind::IncidentOpened => ":rotating_light: Incident opened",
                NotificationKind::ApprovalRequested => ":raised_hand: Approval requested",
                NotificationKind::ActionFailed => ":x: Action failed",
                NotificationKind::VerificationFailed => ":warning: Action did not have its effect",
                NotificationKind::IncidentEscalated => ":rotating_light: Incident escalated",
                NotificationKind::IncidentReopened => ":repeat: Incident reopened",
                NotificationKind::IncidentResolved => ":white_check_mark: Incident resolved",
            };
            let mut blocks = vec![
                json!({"type": "header", "text": {"type": "plain_text", "text": title}}),
                json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*{}* (`{}`)\n{}", n.incident, n.namespace, n.text)}}),
            ];
            if let Some(r) = &n.respond {
                blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("```{r}```")}}));
            }
            blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("cellwarden · {}", n.at)}]}));
            json!({"text": format!("{title}: {} — {}", n.incident, n.text), "blocks": blocks})
        }
    }
}

/// Counters of the notifier (exported by the daemon).
#[derive(Debug, Default)]
pub struct NotifyCounters {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    /// Dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Queued or being posted right now (what a shutdown waits for in [`Notifier::flush`]).
    pub pending: AtomicU64,
}

/// The sending side, cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    tx: Option<mpsc::Sender<Notification>>,
    pub counters: Arc<NotifyCounters>,
}

/// Notifications waiting to be posted, at most.
pub const QUEUE_CAPACITY: usize = 256;

impl Notifier {
    /// A notifier that sends nothing (no webhooks configured).
    pub fn disabled() -> Notifier {
        Notifier {
            tx: None,
            counters: Arc::default(),
        }
    }

    /// Starts the background sender for `hooks`; must run inside a Tokio runtime.
    pub fn start(hooks: Vec<WebhookConfig>, client: reqwest::Client) -> Notifier {
        if hooks.is_empty() {
            return Notifier::disabled();
        }
        let (tx, mut rx) = mpsc::channel::<Notification>(QUEUE_CAPACITY);
        let counters: Arc<NotifyCounters> = Arc::default();
        let c = counters.clone();
        tokio::spawn(async move {
            while let Some(n) = rx.recv().await {
                for h in hooks.iter().filter(|h| h.kinds.is_empty() || h.kinds.contains(&n.kind)) {
                    if post(&client, h, &n).await {
                        c.sent.fetch_add(1, Ordering::Relaxed);
                    } else {
                        c.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                c.pending.fetch_sub(1, Ordering::SeqCst);
            }
        });
        Notifier { tx: Some(tx), counters }
    }

    /// Queues `n`; never waits. A full queue drops it (counted and logged).
    pub fn send(&self, n: Notification) {
        let Some(tx) = &self.tx else { return };
        // Counted before it can be taken off the queue, so `pending` never goes below zero.
        self.counters.pending.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = tx.try_send(n) {
            self.counters.pending.fetch_sub(1, Ordering::SeqCst);
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "Dropped a notification: the queue is full.");
        }
    }

    /// Waits until every queued notification has been posted (or given up on after its retries);
    /// a shutdown calls it under its grace period, so the incidents of the last step still page.
    /// Checks every [`FLUSH_POLL`].
    pub async fn flush(&self) {
        while self.counters.pending.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(FLUSH_POLL).await;
        }
    }
}

/// How often [`Notifier::flush`] looks at the queue: short next to a webhook's answer (tens of
/// milliseconds) and to a shutdown's grace (seconds).
const FLUSH_POLL: Duration = Duration::from_millis(10);

/// Posts with up to 3 attempts (1 s, 2 s backoff) on connection errors and 5xx/429.
async fn post(client: &reqwest::Client, hook: &WebhookConfig, n: &Notification) -> bool {
    let payload = body(hook.format, n);
    let mut delay = Duration::from_secs(1);
    for attempt in 1..=3 {
        match client.post(&hook.url).json(&payload).timeout(Duration::from_secs(10)).send().await {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) if r.status().is_server_error() || r.status().as_u16() == 429 => {
                tracing::warn!(
                    status = r.status().as_u16(),
                    attempt,
                    kind = n.kind.as_str(),
                    "Webhook refused a notification; retrying."
                );
            }
            Ok(r) => {
                tracing::warn!(
                    status = r.status().as_u16(),
                    kind = n.kind.as_str(),
                    "Webhook refused a notification."
                );
                return false;
            }
            Err(e) => tracing::warn!(error = %e, attempt, kind = n.kind.as_str(), "Could not reach the webhook; retrying."),
        }
        if attempt < 3 {
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval() -> Notification {
        Notification {
            kind: NotificationKind::ApprovalRequested,
            incident: "inc-1".into(),
            namespace: "cellwarden".into(),
            at: "2026-01-01T00:00:00Z".into(),
            text: "cordon cell-2 waits for approval".into(),
            respond: Some("kubectl -n cellwarden annotate incident inc-1 cellwarden.io/approved-by=$USER".into()),
            dedup_key: "cellwarden/cellwarden/inc-1".into(),
            pages: false,
        }
    }

    #[test]
    fn the_json_body_carries_every_field_and_slack_gets_text_and_blocks() {
        let n = approval();
        let j = body(Format::Json, &n);
        assert_eq!(j["kind"], "approval_requested");
        assert_eq!(j["incident"], "inc-1");
        assert!(j["respond"].as_str().unwrap().contains("approved-by"));
        let s = body(Format::Slack, &n);
        assert!(s["text"].as_str().unwrap().contains("Approval requested: inc-1"));
        let blocks = s["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert!(blocks.iter().any(|b| b.to_string().contains("kubectl -n cellwarden annotate")));
    }

    #[test]
    fn the_config_names_formats_and_kinds_and_refuses_typos() {
        let c: WebhookConfig = serde_yaml_ng::from_str("url: http://x\nformat: slack\nkinds: [verification_failed]\n").unwrap();
        assert_eq!(c.format, Format::Slack);
        assert_eq!(c.kinds, vec![NotificationKind::VerificationFailed]);
        assert!(serde_yaml_ng::from_str::<WebhookConfig>("url: http://x\nfromat: slack\n").is_err());
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let (tx, _rx) = mpsc::channel(1);
        let n = Notifier {
            tx: Some(tx),
            counters: Arc::default(),
        };
        n.send(approval());
        n.send(approval());
        n.send(approval());
        assert_eq!(n.counters.dropped.load(Ordering::Relaxed), 2);
    }
}

#[cfg(test)]
mod flush_tests {
    use super::*;

    /// A webhook on 127.0.0.1 that answers 200 after `delay`, counting the requests it got.
    async fn slow_hook(delay: Duration) -> (String, Arc<AtomicU64>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got = Arc::new(AtomicU64::new(0));
        let g = got.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { return };
                let g = g.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 << 10];
                    let _ = sock.read(&mut buf).await;
                    tokio::time::sleep(delay).await;
                    g.fetch_add(1, Ordering::SeqCst);
                    let _ = sock
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                });
            }
        });
        (url, got)
    }

    #[tokio::test]
    async fn flush_waits_until_every_queued_notification_is_posted() {
        let (url, got) = slow_hook(Duration::from_millis(100)).await;
        let hook = WebhookConfig {
            url,
            format: Format::Json,
            kinds: vec![],
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let n = Notifier::start(vec![hook], reqwest::Client::new());
        for i in 0..3 {
            n.send(Notification {
                kind: NotificationKind::IncidentOpened,
                incident: format!("inc-{i}"),
                namespace: "cellwarden".into(),
                at: "2026-01-01T00:00:00Z".into(),
                text: "opened".into(),
                respond: None,
                dedup_key: format!("k{i}"),
                pages: true,
            });
        }
        assert!(got.load(Ordering::SeqCst) < 3, "posting takes 100 ms each: not done yet");
        tokio::time::timeout(Duration::from_secs(10), n.flush()).await.unwrap();
        assert_eq!(got.load(Ordering::SeqCst), 3);
        assert_eq!(n.counters.sent.load(Ordering::Relaxed), 3);
        assert_eq!(n.counters.pending.load(Ordering::SeqCst), 0);
        Notifier::disabled().flush().await;
    }
}
