//! What every DVC Pulse service binary sets up the same way: its logs, its
//! stop signal and the `key=value` client options it takes.

use tokio_util::sync::CancellationToken;

/// Logs to stderr, filtered by `RUST_LOG`, else by `default_filter`.
pub fn init_tracing(default_filter: &str) {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .init();
}

/// A token cancelled at the first SIGTERM or Ctrl-C (SIGINT). Where SIGTERM
/// cannot be listened for, Ctrl-C alone still stops the service (with a
/// warning). Call inside a Tokio runtime.
pub fn stop_on_signal() -> CancellationToken {
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops this service");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        tracing::info!("signal received; stopping");
        on_signal.cancel();
    });
    stop
}

/// A `--kafka-option` (or any `key=value` flag): the key and the value,
/// each trimmed.
pub fn key_value(s: &str) -> Result<(String, String), String> {
    let (key, value) = s.split_once('=').ok_or_else(|| format!("{s:?} is not key=value"))?;
    Ok((key.trim().to_owned(), value.trim().to_owned()))
}
