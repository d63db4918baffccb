use anyhow::Context;
use clap::Parser;
use dvc_rates_api::Config;
use dvc_warehouse::runtime;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runtime::init_tracing("info");
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
    dvc_rates_api::serve(listener, config, runtime::stop_on_signal()).await
}
