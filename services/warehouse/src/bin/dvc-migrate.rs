//! Applies the ClickHouse migrations, or prints them (`--print`) for other
//! tools, such as the test that runs them on current ClickHouse in chDB.

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use dvc_warehouse::{ClickHouseArgs, Cluster, Directory, migrate_cluster, migrate_with, migrations};

/// Create or upgrade the DVC Pulse tables in ClickHouse.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    clickhouse: ClickHouseArgs,
    /// Print the migrations as JSON ([{version, name, statements}]) and exit.
    #[arg(long)]
    print: bool,
    /// The directory of authorities to load (the format of
    /// schemas/reference/authorities.csv); by default the shipped one. Set
    /// it for every run: a run without it loads the shipped one again.
    #[arg(long, env = "DVC_AUTHORITIES", value_name = "FILE")]
    authorities: Option<PathBuf>,
    /// Create the cluster layout (README "Running on a cluster") on the
    /// cluster of this name (`remote_servers` in the servers' configuration).
    #[arg(long, env = "DVC_CLICKHOUSE_CLUSTER", requires = "node")]
    cluster: Option<String>,
    /// The HTTP endpoint of every node of the cluster, each once (repeat the
    /// flag, or a comma-separated list); the first runs the backfills.
    #[arg(long, env = "DVC_CLICKHOUSE_NODES", value_delimiter = ',', value_name = "URL")]
    node: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    dvc_warehouse::runtime::init_tracing("info");
    let cli = Cli::parse();
    if cli.print {
        let out: Vec<_> = migrations()?
            .iter()
            .map(|m| serde_json::json!({"version": m.version, "name": m.name, "statements": m.statements}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let directory = match &cli.authorities {
        Some(path) => &Directory::read(path)?,
        None => Directory::official()?,
    };
    let database = &cli.clickhouse.database;
    let applied = match &cli.cluster {
        None => migrate_with(&cli.clickhouse.server_client(), database, directory).await?,
        Some(name) => {
            let nodes: Vec<_> = cli
                .node
                .iter()
                .map(|url| ClickHouseArgs { url: url.clone(), ..cli.clickhouse.clone() }.server_client())
                .collect();
            migrate_cluster(&nodes, &Cluster { name: name.clone() }, database, directory).await?
        }
    };
    println!(
        "database {}: {} migration(s) applied{}",
        database,
        applied.len(),
        if applied.is_empty() { ", already up to date" } else { "" }
    );
    Ok(())
}
