//! cellwarden: parse the command line, set up logging on stderr, run the subcommand.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let asked = std::env::var("CELLWARDEN_LOG").unwrap_or_default();
    let mut filter = match asked.as_str() {
        "" => tracing_subscriber::EnvFilter::new("warn"),
        s => tracing_subscriber::EnvFilter::try_new(s).unwrap_or_else(|e| {
            eprintln!("CELLWARDEN_LOG={s:?} is not a log filter ({e}); logging warnings and errors");
            tracing_subscriber::EnvFilter::new("warn")
        }),
    };
    // kube's client logs every failed request at ERROR, once per retry (a line a second while the
    // API is away); the daemon tells each such failure once itself (`cellwarden::quiet`), so the
    // duplicates are off unless CELLWARDEN_LOG names kube_client.
    if !asked.contains("kube_client") {
        filter = filter.add_directive("kube_client::client::builder=off".parse().expect("a valid directive"));
    }
    // Colour only on a terminal: escape codes garble `kubectl logs` and log shippers.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_env_filter(filter)
        .init();
    match cellwarden::cli::run(cellwarden::cli::Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
