//! The migrate step: applies `schemas/clickhouse/NNN_name.sql` in order and
//! records each in `schema_migrations`.
//!
//! The files are compiled in, so a binary always carries the schema it was
//! built for. Safe to run twice and after a crash half-way through a file:
//! every statement is `IF NOT EXISTS`, and a file is recorded only once all
//! its statements ran. A recorded file whose text has changed is an error:
//! schema changes go into a new file.
//!
//! Statements in a file end with `;` at the end of a line; `--` lines are
//! comments. Settings a server version needs (never written in the shared
//! SQL files) are added here, per version.

use anyhow::{Context, Result, bail, ensure};
use clickhouse::{Client, Row};
use include_dir::{Dir, include_dir};
use serde::Deserialize;

static SQL_DIR: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../schemas/clickhouse");

/// One numbered SQL file.
#[derive(Debug, Clone)]
pub struct Migration {
    pub version: u32,
    pub name: String,
    pub sql: &'static str,
}

impl Migration {
    /// The file's statements, comments dropped.
    pub fn statements(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut current = String::new();
        for line in self.sql.lines() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with("--") {
                continue;
            }
            current.push_str(line);
            current.push('\n');
            if trimmed.ends_with(';') {
                out.push(current.trim().trim_end_matches(';').trim().to_owned());
                current.clear();
            }
        }
        if !current.trim().is_empty() {
            out.push(current.trim().to_owned());
        }
        out
    }

    /// FNV-1a of the file text: enough to notice an edited file.
    fn checksum(&self) -> String {
        let hash =
            self.sql.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        format!("{hash:016x}")
    }
}

/// All migrations, in order; the file names must be `NNN_name.sql` with
/// distinct numbers.
pub fn migrations() -> Result<Vec<Migration>> {
    let mut out = Vec::new();
    for file in SQL_DIR.files() {
        let path = file.path();
        if path.extension().and_then(|e| e.to_str()) != Some("sql") {
            continue;
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let (num, name) = stem
            .split_once('_')
            .with_context(|| format!("{}: migration files are named NNN_name.sql", path.display()))?;
        let version =
            num.parse().with_context(|| format!("{}: migration files are named NNN_name.sql", path.display()))?;
        let sql = file.contents_utf8().with_context(|| format!("{} is not UTF-8", path.display()))?;
        out.push(Migration { version, name: name.to_owned(), sql });
    }
    out.sort_by_key(|m| m.version);
    for pair in out.windows(2) {
        ensure!(pair[0].version != pair[1].version, "two migrations are numbered {}", pair[0].version);
    }
    Ok(out)
}

/// The server's version, for the settings some versions need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    pub major: u32,
    pub minor: u32,
}

impl ServerVersion {
    pub fn parse(text: &str) -> Option<ServerVersion> {
        let mut parts = text.trim().split('.');
        Some(ServerVersion { major: parts.next()?.parse().ok()?, minor: parts.next()?.parse().ok()? })
    }

    /// Settings a DDL statement needs on this server. LowCardinality became
    /// generally available in 19.0; before, it sat behind an experimental
    /// flag that current servers reject as unknown.
    pub fn ddl_settings(self) -> &'static [(&'static str, &'static str)] {
        if self.major < 19 { &[("allow_experimental_low_cardinality_type", "1")] } else { &[] }
    }
}

#[derive(Row, Deserialize)]
struct Applied {
    version: u32,
    checksum: String,
}

#[derive(Row, Deserialize)]
struct Version {
    version: String,
}

/// Creates `client`'s database if needed and applies every migration not
/// yet recorded there. Returns the versions it applied.
pub async fn migrate(server: &Client, database: &str) -> Result<Vec<u32>> {
    migrate_to(server, database, u32::MAX).await
}

/// The same, up to migration `last` (to test upgrades from an earlier schema).
pub async fn migrate_to(server: &Client, database: &str, last: u32) -> Result<Vec<u32>> {
    ensure!(
        !database.is_empty() && database.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "database name {database:?}: use letters, digits and _"
    );
    let version_text = server
        .query("SELECT version() AS version")
        .fetch_one::<Version>()
        .await
        .context("cannot reach ClickHouse")?
        .version;
    let version = ServerVersion::parse(&version_text)
        .with_context(|| format!("unrecognised ClickHouse version {version_text:?}"))?;
    server
        .query(&format!("CREATE DATABASE IF NOT EXISTS {database}"))
        .execute()
        .await
        .with_context(|| format!("creating database {database}"))?;
    let mut db = server.clone().with_database(database);
    for (name, value) in version.ddl_settings() {
        db = db.with_setting(*name, *value);
    }
    db.query(
        "CREATE TABLE IF NOT EXISTS schema_migrations \
         (version UInt32, name String, checksum String, applied_at DateTime('UTC')) \
         ENGINE = MergeTree() ORDER BY version",
    )
    .execute()
    .await
    .context("creating schema_migrations")?;
    let applied: Vec<Applied> = db
        .query("SELECT version, any(checksum) AS checksum FROM schema_migrations GROUP BY version")
        .fetch_all()
        .await
        .context("reading schema_migrations")?;

    let mut done = Vec::new();
    for m in migrations()?.into_iter().filter(|m| m.version <= last) {
        if let Some(a) = applied.iter().find(|a| a.version == m.version) {
            if a.checksum != m.checksum() {
                bail!(
                    "migration {:03}_{} changed after it was applied to {database}; put schema changes in a new file",
                    m.version,
                    m.name
                );
            }
            continue;
        }
        for stmt in m.statements() {
            db.query(&stmt)
                .execute()
                .await
                .with_context(|| format!("migration {:03}_{}: {stmt}", m.version, m.name))?;
        }
        db.query("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, now())")
            .bind(m.version)
            .bind(&m.name)
            .bind(m.checksum())
            .execute()
            .await
            .with_context(|| format!("recording migration {:03}_{}", m.version, m.name))?;
        tracing::info!(version = m.version, name = %m.name, database, "applied migration");
        done.push(m.version);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_numbered_and_split() {
        let all = migrations().unwrap();
        assert_eq!(all[0].version, 1);
        let raw = &all[0];
        let stmts = raw.statements();
        assert_eq!(stmts.len(), 3, "{stmts:#?}");
        assert!(stmts.iter().all(|s| s.starts_with("CREATE TABLE IF NOT EXISTS") && !s.ends_with(';')));
    }

    #[test]
    fn settings_are_gated_by_version() {
        let old = ServerVersion::parse("18.16.1").unwrap();
        let new = ServerVersion::parse("26.9.2.1").unwrap();
        assert_eq!(old.ddl_settings().len(), 1);
        assert!(new.ddl_settings().is_empty());
        assert!(old < new);
    }
}
