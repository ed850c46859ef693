//! The `fakekube` binary: starts the fake on 127.0.0.1, prints its URL on the first line of
//! stdout, optionally writes a kubeconfig, and serves until SIGINT/SIGTERM (saving its state when
//! `--state` is given, so a restart keeps it).

use std::path::PathBuf;

fn usage() -> ! {
    eprintln!("usage: fakekube [--port N] [--state FILE] [--kubeconfig FILE]");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("FAKEKUBE_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    let mut opts = fakekube::Options::default();
    let mut kubeconfig: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => opts.port = args.next().and_then(|p| p.parse().ok()).unwrap_or_else(|| usage()),
            "--state" => opts.state_file = Some(args.next().map(PathBuf::from).unwrap_or_else(|| usage())),
            "--kubeconfig" => kubeconfig = Some(args.next().map(PathBuf::from).unwrap_or_else(|| usage())),
            "-h" | "--help" => usage(),
            other => {
                eprintln!("fakekube: unknown argument {other}");
                usage()
            }
        }
    }
    let fake = match fakekube::FakeKube::start(opts).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fakekube: cannot start: {e}");
            std::process::exit(1)
        }
    };
    if let Some(path) = kubeconfig {
        if let Err(e) = std::fs::write(&path, fake.kubeconfig()) {
            eprintln!("fakekube: cannot write {}: {e}", path.display());
            std::process::exit(1)
        }
    }
    println!("{}", fake.url());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    fake.stop().await;
}
