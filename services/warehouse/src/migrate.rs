//! The migrate step: applies `schemas/clickhouse/NNN_name.sql` in order and
//! records each in `schema_migrations`.
//!
//! The files are compiled in, so a binary always carries the schema it was
//! built for. Safe to run twice and after a crash half-way through a file:
//! every statement is `IF NOT EXISTS` or idempotent, and a file is recorded
//! only once all its statements ran. A recorded file whose statements have
//! changed is an error: schema changes go into a new file (comments may be
//! edited; they are not part of the checksum).
//!
//! Statements in a file end with `;` at the end of a line; `--` lines are
//! comments. Comments starting `-- migrate:` are directives for the
//! materialized view that follows, so that a view's SELECT is written once:
//! - `backfill`: after `CREATE MATERIALIZED VIEW … TO target AS SELECT …`,
//!   also `INSERT INTO target SELECT …` with the view's SELECT, so that rows
//!   stored before the view existed are folded in the same way;
//! - `as VIEW`: `CREATE MATERIALIZED VIEW … TO target` (no `AS`) gets the
//!   SELECT of the materialized view VIEW of this or an earlier file.
//!
//! Settings a server version needs (never written in the shared SQL files)
//! are added here, per version.

use std::collections::HashMap;

use anyhow::{Context, Result, bail, ensure};
use clickhouse::{Client, Row};
use include_dir::{Dir, include_dir};
use serde::Deserialize;

use crate::Directory;
use crate::cluster::{Cluster, Nodes};

static SQL_DIR: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../schemas/clickhouse");

/// A directive: a comment line the migrate step reads (module documentation).
const DIRECTIVE: &str = "-- migrate:";

/// Checksums recorded before the checksum covered statements rather than the
/// file's text: (version, the text's checksum, the statements' checksum the
/// file had then). A database that recorded such a text checksum is up to date
/// for that file while the file still runs the same statements
/// (`recorded_checksums_still_run_the_same_statements`).
const TEXT_CHECKSUMS: &[(u32, &str, &str)] = &[
    (1, "21ad2d02930e3559", "ab8f15c9f89dfef9"),
    (2, "3fa8c7ee89ced626", "20b3c982498ea0ce"),
    (3, "70a196c59cc303c5", "529b31a9b4ec57e7"),
    (4, "4772dcfaf12a778a", "ba6aa6bcb857032f"),
    (5, "1523a9fe1d752f5f", "db8538b038045ae6"),
];

/// The migration that creates `working_calendar`, which the migrate step
/// then fills from `schemas/reference/vn-days-off.csv`.
const CALENDAR_SINCE: u32 = 7;

/// The migration that creates `authorities`, which the migrate step then
/// fills from the directory of authorities.
const DIRECTORY_SINCE: u32 = 8;

/// One numbered SQL file.
#[derive(Debug, Clone)]
pub struct Migration {
    pub version: u32,
    pub name: String,
    /// What the migrate step runs, in order: the file's statements, comments
    /// dropped, directives expanded.
    pub statements: Vec<String>,
}

impl Migration {
    /// Splits `sql` and expands its directives; `views` holds the SELECT of
    /// every materialized view of the files before (name → SELECT) and gains
    /// this file's.
    fn parse(version: u32, name: &str, sql: &str, views: &mut HashMap<String, String>) -> Result<Migration> {
        let at = format!("{version:03}_{name}");
        let mut statements = Vec::new();
        let mut current = String::new();
        let mut directives = Vec::new();
        for line in sql.lines() {
            let trimmed = line.trim();
            if let Some(text) = trimmed.strip_prefix(DIRECTIVE) {
                ensure!(current.trim().is_empty(), "{at}: `{trimmed}` inside a statement");
                directives.push(Directive::parse(text).with_context(|| at.clone())?);
                continue;
            }
            if trimmed.is_empty() || trimmed.starts_with("--") {
                continue;
            }
            current.push_str(line);
            current.push('\n');
            if trimmed.ends_with(';') {
                let written = current.trim().trim_end_matches(';').trim().to_owned();
                current.clear();
                let expanded = expand(&written, &std::mem::take(&mut directives), views)
                    .with_context(|| format!("{at}: {written}"))?;
                statements.extend(expanded);
            }
        }
        ensure!(directives.is_empty(), "{at}: a `{DIRECTIVE}` line at the end of the file");
        if !current.trim().is_empty() {
            statements.push(current.trim().to_owned());
        }
        Ok(Migration { version, name: name.to_owned(), statements })
    }

    /// FNV-1a of the statements: enough to notice a changed migration.
    fn checksum(&self) -> String {
        let hash = self
            .statements
            .iter()
            .flat_map(|s| s.bytes().chain(*b";\n"))
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        format!("{hash:016x}")
    }

    /// Whether `recorded` (from `schema_migrations`) names these statements.
    fn is_recorded_as(&self, recorded: &str) -> bool {
        let now = self.checksum();
        recorded == now
            || TEXT_CHECKSUMS
                .iter()
                .any(|&(v, text, statements)| v == self.version && text == recorded && statements == now)
    }
}

/// What a `-- migrate:` line asks for.
#[derive(Debug, Clone, PartialEq)]
enum Directive {
    /// `backfill`: after `CREATE MATERIALIZED VIEW … TO target AS SELECT …`,
    /// also `INSERT INTO target SELECT …` (the rows stored before the view).
    Backfill,
    /// `as VIEW`: the `CREATE MATERIALIZED VIEW … TO target` that follows
    /// has the SELECT of the materialized view VIEW of this or an earlier file.
    As(String),
}

impl Directive {
    fn parse(text: &str) -> Result<Directive> {
        match text.split_ascii_whitespace().collect::<Vec<_>>()[..] {
            ["backfill"] => Ok(Directive::Backfill),
            ["as", view] => Ok(Directive::As(view.to_owned())),
            _ => bail!("unknown directive `{DIRECTIVE}{text}` (known: `backfill`, `as VIEW`)"),
        }
    }
}

/// The parts of `CREATE MATERIALIZED VIEW [IF NOT EXISTS] name TO target
/// [AS SELECT …]`.
struct View<'a> {
    name: &'a str,
    target: &'a str,
    select: Option<&'a str>,
}

impl View<'_> {
    fn parse(statement: &str) -> Result<View<'_>> {
        let offset = |word: &str| word.as_ptr() as usize - statement.as_ptr() as usize;
        let words: Vec<&str> = statement.split_ascii_whitespace().collect();
        ensure!(View::starts(statement), "not a CREATE MATERIALIZED VIEW");
        let to = words.iter().position(|w| w.eq_ignore_ascii_case("TO")).context("the view has no TO table")?;
        ensure!(to > 3, "the view has no name");
        let target = words.get(to + 1).context("the view has no TO table")?;
        let select = match words.get(to + 2) {
            None => None,
            Some(as_) => {
                ensure!(as_.eq_ignore_ascii_case("AS"), "expected AS after TO {target}");
                let select = statement[offset(as_) + as_.len()..].trim_start();
                ensure!(select.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("SELECT")), "its AS is not a SELECT");
                Some(select)
            }
        };
        Ok(View { name: words[to - 1], target, select })
    }

    fn starts(statement: &str) -> bool {
        let words = statement.split_ascii_whitespace().take(3).map(str::to_ascii_uppercase);
        words.eq(["CREATE", "MATERIALIZED", "VIEW"])
    }
}

/// The statements that `written`, after `directives`, stands for; a
/// materialized view's SELECT is recorded in `views`.
fn expand(written: &str, directives: &[Directive], views: &mut HashMap<String, String>) -> Result<Vec<String>> {
    let mut statement = written.to_owned();
    for directive in directives {
        if let Directive::As(source) = directive {
            let select = views.get(source).with_context(|| format!("`as {source}`: no materialized view {source}"))?;
            ensure!(View::parse(&statement)?.select.is_none(), "`as {source}` before a view with a SELECT of its own");
            statement = format!("{statement} AS\n{select}");
        }
    }
    let backfill = directives.contains(&Directive::Backfill);
    if !View::starts(&statement) {
        ensure!(!backfill, "`backfill` before a statement that is no CREATE MATERIALIZED VIEW");
        return Ok(vec![statement]);
    }
    let view = View::parse(&statement)?;
    let select = view.select.context("a materialized view without a SELECT")?;
    views.insert(view.name.to_owned(), select.to_owned());
    let insert = backfill.then(|| format!("INSERT INTO {}\n{select}", view.target));
    Ok(std::iter::once(statement).chain(insert).collect())
}

/// All migrations, in order; the file names must be `NNN_name.sql` with
/// distinct numbers.
pub fn migrations() -> Result<Vec<Migration>> {
    let mut files = Vec::new();
    for file in SQL_DIR.files() {
        let path = file.path();
        if path.extension().and_then(|e| e.to_str()) != Some("sql") {
            continue;
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let (num, name) = stem
            .split_once('_')
            .with_context(|| format!("{}: migration files are named NNN_name.sql", path.display()))?;
        let version: u32 =
            num.parse().with_context(|| format!("{}: migration files are named NNN_name.sql", path.display()))?;
        let sql = file.contents_utf8().with_context(|| format!("{} is not UTF-8", path.display()))?;
        files.push((version, name, sql));
    }
    files.sort_by_key(|&(version, ..)| version);
    for pair in files.windows(2) {
        ensure!(pair[0].0 != pair[1].0, "two migrations are numbered {}", pair[0].0);
    }
    let mut views = HashMap::new();
    files.into_iter().map(|(version, name, sql)| Migration::parse(version, name, sql, &mut views)).collect()
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
    run(std::slice::from_ref(server), None, database, u32::MAX, Directory::official()?).await
}

/// The same, with a deployment's own directory of authorities instead of
/// the shipped one.
pub async fn migrate_with(server: &Client, database: &str, directory: &Directory) -> Result<Vec<u32>> {
    run(std::slice::from_ref(server), None, database, u32::MAX, directory).await
}

/// The same, up to migration `last` (to test upgrades from an earlier schema).
pub async fn migrate_to(server: &Client, database: &str, last: u32) -> Result<Vec<u32>> {
    run(std::slice::from_ref(server), None, database, last, Directory::official()?).await
}

/// The same on a cluster: `nodes` are a client of every node of `cluster`
/// (the first one runs the data statements); see `cluster.rs` for where each
/// table's rows live.
pub async fn migrate_cluster(
    nodes: &[Client],
    cluster: &Cluster,
    database: &str,
    directory: &Directory,
) -> Result<Vec<u32>> {
    ensure!(!nodes.is_empty(), "a cluster of no nodes");
    run(nodes, Some(cluster), database, u32::MAX, directory).await
}

/// One server's database, ready to migrate, and what it has applied.
struct Node {
    db: Client,
    applied: Vec<Applied>,
}

impl Node {
    async fn prepare(server: &Client, database: &str, cluster: bool) -> Result<Node> {
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
        if cluster {
            // A backfill through the Distributed tables returns once every
            // shard has its rows.
            db = db.with_setting("insert_distributed_sync", "1");
        }
        db.query(
            "CREATE TABLE IF NOT EXISTS schema_migrations \
             (version UInt32, name String, checksum String, applied_at DateTime('UTC')) \
             ENGINE = MergeTree() ORDER BY version",
        )
        .execute()
        .await
        .context("creating schema_migrations")?;
        let applied = db
            .query("SELECT version, any(checksum) AS checksum FROM schema_migrations GROUP BY version")
            .fetch_all()
            .await
            .context("reading schema_migrations")?;
        Ok(Node { db, applied })
    }

    /// Whether `m` is applied here; an error if it was applied with other
    /// statements.
    fn has(&self, m: &Migration, database: &str) -> Result<bool> {
        let Some(a) = self.applied.iter().find(|a| a.version == m.version) else { return Ok(false) };
        ensure!(
            m.is_recorded_as(&a.checksum),
            "migration {:03}_{} runs other statements than when it was applied to {database}; put schema changes in a new file",
            m.version,
            m.name
        );
        Ok(true)
    }

    async fn execute(&self, database: &str, stmt: &str, m: &Migration) -> Result<()> {
        if let Some((table, column)) = added_column(stmt)
            && has_column(&self.db, database, table, column).await?
        {
            return Ok(()); // added by an earlier run of this file that stopped half-way
        }
        self.db.query(stmt).execute().await.with_context(|| format!("migration {:03}_{}: {stmt}", m.version, m.name))
    }
}

/// Applies the migrations up to `last` to every server: on one server, each
/// statement as written; on a cluster, each as `Cluster::statements` places
/// it, DDL on the nodes that lack the migration and data statements on the
/// first node if it lacks it (so a node added later gets the tables, not a
/// second backfill).
async fn run(
    servers: &[Client],
    cluster: Option<&Cluster>,
    database: &str,
    last: u32,
    directory: &Directory,
) -> Result<Vec<u32>> {
    ensure!(
        !database.is_empty() && database.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "database name {database:?}: use letters, digits and _"
    );
    let mut nodes = Vec::with_capacity(servers.len());
    for server in servers {
        nodes.push(Node::prepare(server, database, cluster.is_some()).await?);
    }
    let mut done = Vec::new();
    for m in migrations()?.into_iter().filter(|m| m.version <= last) {
        let mut lacking = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            if !node.has(&m, database)? {
                lacking.push(i);
            }
        }
        if lacking.is_empty() {
            continue;
        }
        for stmt in &m.statements {
            let placed = match cluster {
                None => vec![(stmt.clone(), Nodes::Every)],
                Some(cluster) => cluster.statements(database, stmt)?,
            };
            for (sql, on) in placed {
                for &i in &lacking {
                    if on == Nodes::Every || i == 0 {
                        nodes[i].execute(database, &sql, &m).await?;
                    }
                }
            }
        }
        for &i in &lacking {
            nodes[i]
                .db
                .query("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, now())")
                .bind(m.version)
                .bind(&m.name)
                .bind(m.checksum())
                .execute()
                .await
                .with_context(|| format!("recording migration {:03}_{}", m.version, m.name))?;
        }
        tracing::info!(version = m.version, name = %m.name, database, nodes = lacking.len(), "applied migration");
        done.push(m.version);
    }
    for node in &nodes {
        if last >= CALENDAR_SINCE {
            crate::calendar::load(&node.db).await?;
        }
        if last >= DIRECTORY_SINCE {
            crate::directory::load(&node.db, directory).await?;
        }
    }
    Ok(done)
}

/// The table and column of `ALTER TABLE t ADD COLUMN c …`. ClickHouse 18.16
/// has no `ADD COLUMN IF NOT EXISTS`; the migrate step skips such a
/// statement when the column exists, so a file that stopped half-way runs
/// again like the others.
fn added_column(statement: &str) -> Option<(&str, &str)> {
    let words: Vec<&str> = statement.split_whitespace().take(6).collect();
    match words.as_slice() {
        [alter, t, table, add, c, column] if [*alter, *t, *add, *c] == ["ALTER", "TABLE", "ADD", "COLUMN"] => {
            Some((table, column))
        }
        _ => None,
    }
}

async fn has_column(db: &Client, database: &str, table: &str, column: &str) -> Result<bool> {
    let found = db
        .query("SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?")
        .bind(database)
        .bind(table)
        .bind(column)
        .fetch_one::<u64>()
        .await
        .with_context(|| format!("looking up column {table}.{column}"))?;
    Ok(found > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_numbered_and_split() {
        let all = migrations().unwrap();
        assert_eq!(all[0].version, 1);
        let raw = &all[0];
        let stmts = &raw.statements;
        assert_eq!(stmts.len(), 3, "{stmts:#?}");
        assert!(stmts.iter().all(|s| s.starts_with("CREATE TABLE IF NOT EXISTS") && !s.ends_with(';')));
    }

    #[test]
    fn recorded_checksums_still_run_the_same_statements() {
        let all = migrations().unwrap();
        for &(version, text, statements) in TEXT_CHECKSUMS {
            let m = all.iter().find(|m| m.version == version).unwrap();
            assert_eq!(m.checksum(), statements, "{version:03}_{} no longer runs what it ran", m.name);
            assert!(m.is_recorded_as(text) && m.is_recorded_as(statements));
        }
        assert!(!all[1].is_recorded_as(TEXT_CHECKSUMS[0].1), "a text checksum names one version only");
    }

    fn parse(sql: &str) -> Result<Vec<String>> {
        let mut views = HashMap::new();
        let first = Migration::parse(
            8,
            "first",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS u_mv TO u AS\nSELECT id\nFROM raw;\n",
            &mut views,
        )?;
        assert_eq!(first.statements.len(), 1);
        Ok(Migration::parse(9, "t", sql, &mut views)?.statements)
    }

    #[test]
    fn a_backfill_directive_repeats_the_views_select_into_its_table() {
        let sql = "-- a comment\n-- migrate: backfill\nCREATE MATERIALIZED VIEW IF NOT EXISTS v_mv TO v AS\nSELECT\n    id,\n    maxState(x) AS x\nFROM raw\nGROUP BY id;\n\nCREATE TABLE IF NOT EXISTS w (id String) ENGINE = Memory;\n";
        assert_eq!(
            parse(sql).unwrap(),
            [
                "CREATE MATERIALIZED VIEW IF NOT EXISTS v_mv TO v AS\nSELECT\n    id,\n    maxState(x) AS x\nFROM raw\nGROUP BY id",
                "INSERT INTO v\nSELECT\n    id,\n    maxState(x) AS x\nFROM raw\nGROUP BY id",
                "CREATE TABLE IF NOT EXISTS w (id String) ENGINE = Memory",
            ]
        );
    }

    #[test]
    fn an_as_directive_takes_an_earlier_views_select() {
        let sql = "-- migrate: as u_mv\n-- migrate: backfill\nCREATE MATERIALIZED VIEW IF NOT EXISTS u2_mv TO u2;\n-- migrate: as u2_mv\nCREATE MATERIALIZED VIEW u3_mv TO u3;\n";
        assert_eq!(
            parse(sql).unwrap(),
            [
                "CREATE MATERIALIZED VIEW IF NOT EXISTS u2_mv TO u2 AS\nSELECT id\nFROM raw",
                "INSERT INTO u2\nSELECT id\nFROM raw",
                "CREATE MATERIALIZED VIEW u3_mv TO u3 AS\nSELECT id\nFROM raw",
            ]
        );
    }

    #[test]
    fn a_misplaced_or_unknown_directive_is_an_error_naming_the_file() {
        for (sql, reason) in [
            ("-- migrate: backfill\nCREATE TABLE t (id String) ENGINE = Memory;\n", "no CREATE MATERIALIZED VIEW"),
            ("-- migrate: backfill\nCREATE MATERIALIZED VIEW v_mv AS SELECT 1;\n", "no TO table"),
            ("-- migrate: backfill\nCREATE MATERIALIZED VIEW v_mv TO v SELECT 1;\n", "expected AS after TO v"),
            ("-- migrate: backfill\nCREATE MATERIALIZED VIEW TO v AS SELECT 1;\n", "no name"),
            ("CREATE TABLE t (id String)\n-- migrate: backfill\nENGINE = Memory;\n", "inside a statement"),
            ("CREATE TABLE t (id String) ENGINE = Memory;\n-- migrate: backfill\n", "at the end of the file"),
            ("-- migrate: as nowhere_mv\nCREATE MATERIALIZED VIEW v_mv TO v;\n", "no materialized view nowhere_mv"),
            ("-- migrate: as u_mv\nCREATE MATERIALIZED VIEW v_mv TO v AS SELECT 1;\n", "a SELECT of its own"),
            ("CREATE MATERIALIZED VIEW v_mv TO v;\n", "without a SELECT"),
            ("-- migrate: backfil\nCREATE TABLE t (id String) ENGINE = Memory;\n", "unknown directive"),
        ] {
            let err = format!("{:#}", parse(sql).unwrap_err());
            assert!(err.starts_with("009_t") && err.contains(reason), "{sql}: {err}");
        }
    }

    #[test]
    fn an_added_column_is_found_in_its_alter_statement() {
        let stmt = "ALTER TABLE dossier_events ADD COLUMN population_db_used Nullable(UInt8)";
        assert_eq!(added_column(stmt), Some(("dossier_events", "population_db_used")));
        assert_eq!(added_column("ALTER TABLE t DROP COLUMN c"), None);
        assert_eq!(added_column("CREATE TABLE IF NOT EXISTS t (x UInt8) ENGINE = Memory"), None);
        let alters: Vec<_> = migrations()
            .unwrap()
            .iter()
            .flat_map(|m| m.statements.clone())
            .filter(|s| s.starts_with("ALTER TABLE"))
            .collect();
        assert_eq!(alters.len(), 3, "006 adds three columns: {alters:?}");
        assert!(alters.iter().all(|s| added_column(s).is_some()), "every ALTER is one the migrate step can skip");
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
