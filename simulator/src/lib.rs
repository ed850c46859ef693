//! A deterministic simulator of a cellular wallet platform: cells of services on nodes in zones,
//! shared payment providers, a queue per cell; realistic telemetry (metrics named as FIXTURES.md's
//! signals table has them, sampled OTLP spans); incident scenarios with their truth; and reaction
//! to cellwarden's actions, so a closed-loop run shows the outage avoided, not just the alarm.
//!
//! Layout:
//! - [`model`]: the static shape — services and their sizes, providers, zones.
//! - [`rng`]: a seedable generator, so a seed gives the same wallet everywhere.
//! - [`wallet`]: the running system — [`wallet::Wallet::step`] and [`wallet::Wallet::apply`].
//! - [`telemetry`]: the recorder of metric families and spans.
//! - [`traces`]: sampled traces as OTLP spans.
//! - [`scenario`]: the bundled scenarios and their `truth.yaml`.
//! - [`fixture`]: running a scenario without action and writing it as a fixture.
//!
//! Pure: depends on `cellwarden-models` only; time is simulated, never read from a clock.

pub mod fixture;
pub mod model;
pub mod rng;
pub mod scenario;
pub mod telemetry;
mod traces;
pub mod wallet;

pub use scenario::{scenario, Scenario};
pub use wallet::{Outcome, Wallet};
