use anyhow::Context;
use clap::Parser;
use dvc_rollup::Config;
use dvc_rollup::telemetry::{self, Telemetry};
use dvc_warehouse::runtime;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runtime::init_tracing("info");
    let config = Config::parse();
    if config.catch_up {
        let caught = dvc_rollup::catch_up(&config.clickhouse.client(), config.batch).await?;
        let (rates, index) = (caught.rates.len(), caught.index.len());
        tracing::info!(rates, index, database = %config.clickhouse.database, "caught up (batches)");
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let stop = runtime::stop_on_signal();
    let telemetry = Telemetry::new();
    let server = tokio::spawn(telemetry::serve(listener, telemetry.clone(), stop.clone()));
    dvc_rollup::run(config, telemetry, stop).await?;
    server.await??;
    Ok(())
}
