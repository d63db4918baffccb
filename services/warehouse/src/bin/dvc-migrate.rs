//! Applies the ClickHouse migrations, or prints them (`--print`) for other
//! tools, such as the test that runs them on current ClickHouse in chDB.

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use dvc_warehouse::{ClickHouseArgs, Directory, migrate_with, migrations};

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
    let applied = migrate_with(&cli.clickhouse.server_client(), &cli.clickhouse.database, directory).await?;
    println!(
        "database {}: {} migration(s) applied{}",
        cli.clickhouse.database,
        applied.len(),
        if applied.is_empty() { ", already up to date" } else { "" }
    );
    Ok(())
}
