use anyhow::Context;
use clap::Parser;
use dvc_rates_api::Config;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = Config::parse();
    if config.openapi {
        println!("{}", serde_json::to_string_pretty(&dvc_rates_api::openapi::document())?);
        return Ok(());
    }
    if config.print_queries {
        println!("{}", serde_json::to_string_pretty(&dvc_rates_api::queries())?);
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        on_signal.cancel();
    });
    dvc_rates_api::serve(listener, config, stop).await
}
