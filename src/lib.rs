//! The `cellwarden` binary's library half: the command line and the wiring of the pipeline.
//! Logic lives in the library crates — incident logic in `cellwarden-engine`, which every command
//! here drives through its one `drive::Driver` — and this crate opens files, prints, and connects
//! the stages.
//!
//! Layout:
//! - [`cli`]: the clap command line and one `run` per subcommand.
//! - [`discover`]: finding fixture folders among paths, globs and parent folders.
//! - [`run`]: the daemon — config, admin endpoints, the source, Incidents, Events, audit, actuators.
//! - [`quiet`]: one log line per outage for the calls repeated every step.
//! - [`shutdown`]: one SIGTERM (or SIGINT) stops the daemon within its grace period.
//! - [`validate`]: checks of config values that need no cluster (DNS-1123 names, URLs, file size).
//! - [`signals_cmd`]: `cellwarden signals` — which series became which signal, by which rule, and why not.
//! - [`record`]: `cellwarden record` — telemetry from a Prometheus or the receivers into a fixture.
//! - [`simulate`]: the closed loop between the simulated wallet and the engine (the simulator
//!   carries out what the engine decides).
//! - [`nab_cmd`]: the NAB harness: run a detector over the NAB corpus, score result folders.

pub mod cli;
pub mod discover;
pub mod nab_cmd;
pub mod quiet;
pub mod record;
pub mod run;
pub mod shutdown;
pub mod signals_cmd;
pub mod simulate;
pub mod validate;
