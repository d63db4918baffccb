use clap::Parser;
use dvc_ingest::Config;
use dvc_warehouse::runtime;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    runtime::init_tracing("info,librdkafka=warn,rdkafka=warn");
    let config = Config::parse();
    // SIGTERM or Ctrl-C: stop fetching, write what is held, commit, exit 0.
    let stop = runtime::stop_on_signal();
    match dvc_ingest::run(config, stop).await {
        Ok(()) => {
            tracing::info!("stopped cleanly");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
