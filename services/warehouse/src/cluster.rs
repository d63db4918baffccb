//! The schema on a ClickHouse cluster: the same migration files, each table
//! placed by the rule below instead of as one node's table.
//!
//! - **By partition** (the raw tables, the catalogue and `ingest_progress`,
//!   which ingest writes with Kafka coordinates): `T_local`, a Replicated
//!   engine under the `{shard}` macro, and `T`, a Distributed table over it
//!   sharded by `kafka_partition`. Ingest's insert of one partition's batch
//!   carries one `kafka_partition`, so it lands whole on one shard, never
//!   split; its offset lookup reads `ingest_progress`, every shard, and
//!   fails while one is down.
//! - **By id** (the states, `touches`, `payment_dossiers`): the same pair,
//!   sharded by `cityHash64` of the id the table is ordered by. The
//!   materialized views fire on the Distributed raw table at the node that
//!   took the insert and write through the Distributed state tables, so every
//!   row of one dossier's state lands on one shard, whichever partitions its
//!   events came through.
//! - **Everywhere** (what dvc-rollup writes): one Replicated table with a
//!   replica on every node (`{replica}` must be unique in the cluster).
//! - **Per node** (the reference tables the migrate step loads from the files
//!   it carries): a plain table on every node, loaded on every node.
//!
//! Views keep their text (a view names `T`, the Distributed table) but for
//! one change: every `IN (SELECT …)` is made `GLOBAL` (`global_in`). DDL
//! runs on every node; data statements (a migration's backfill) run once,
//! through the Distributed tables, on the first node.

use anyhow::{Context, Result, bail, ensure};

/// Where a table's rows live on a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Sharded by `kafka_partition`.
    ByPartition,
    /// Sharded by `cityHash64` of this column.
    ById(&'static str),
    /// One Replicated table with a replica on every node.
    Everywhere,
    /// A plain table on every node, loaded on every node.
    PerNode,
}

/// Every table the migrations create (a unit test keeps the list complete).
const PLACEMENTS: &[(&str, Placement)] = &[
    ("dossier_events", Placement::ByPartition),
    ("payment_events", Placement::ByPartition),
    ("feedback_events", Placement::ByPartition),
    ("petition_events", Placement::ByPartition),
    ("catalog_entries", Placement::ByPartition),
    ("ingest_progress", Placement::ByPartition),
    ("dossier_state", Placement::ById("dossier_id")),
    ("payment_state", Placement::ById("payment_id")),
    ("rating_state", Placement::ById("event_id")),
    ("dossier_state_v2", Placement::ById("dossier_id")),
    ("payment_state_v2", Placement::ById("payment_id")),
    ("rating_state_v2", Placement::ById("event_id")),
    ("petition_state", Placement::ById("petition_id")),
    ("dossier_index_state", Placement::ById("dossier_id")),
    ("dossier_rating_state", Placement::ById("dossier_id")),
    ("touches", Placement::ById("id")),
    ("payment_dossiers", Placement::ById("dossier_id")),
    ("rate_rollup", Placement::Everywhere),
    ("rollup_chunk", Placement::Everywhere),
    ("index766_rollup", Placement::Everywhere),
    ("index766_progress", Placement::Everywhere),
    ("working_calendar", Placement::PerNode),
    ("authorities", Placement::PerNode),
];

pub fn placement(table: &str) -> Option<Placement> {
    PLACEMENTS.iter().find(|(t, _)| *t == table).map(|&(_, p)| p)
}

/// The suffix of a sharded table's storage; `T` is its Distributed table.
pub const LOCAL: &str = "_local";

/// Which nodes run a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nodes {
    Every,
    First,
}

/// A named cluster (`remote_servers` in the servers' configuration).
#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
}

impl Cluster {
    /// What one statement of a migration file runs on the cluster `database`
    /// lives on, and where.
    pub fn statements(&self, database: &str, statement: &str) -> Result<Vec<(String, Nodes)>> {
        let words: Vec<&str> = statement.split_ascii_whitespace().take(6).collect();
        let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
        let upper: Vec<&str> = upper.iter().map(String::as_str).collect();
        match upper.as_slice() {
            ["CREATE", "TABLE", "IF", "NOT", "EXISTS", ..] => self.create_table(database, statement),
            ["CREATE", "TABLE", ..] => bail!("a table is created without IF NOT EXISTS: {statement}"),
            ["ALTER", "TABLE", ..] => {
                let table = words[2];
                Ok(match sharded(table)? {
                    true => vec![
                        (replace_word(statement, 2, &format!("{table}{LOCAL}")), Nodes::Every),
                        (statement.to_owned(), Nodes::Every),
                    ],
                    false => vec![(statement.to_owned(), Nodes::Every)],
                })
            }
            ["DROP", "TABLE", "IF", "EXISTS", _] => {
                let name = words[4];
                let mut out = vec![(statement.to_owned(), Nodes::Every)];
                // A name without a placement is a view's.
                if placement(name).is_some() && sharded(name)? {
                    out.push((format!("DROP TABLE IF EXISTS {name}{LOCAL}"), Nodes::Every));
                }
                Ok(out)
            }
            ["INSERT", "INTO", ..] => {
                let table = words[2];
                let nodes = match placement(table) {
                    Some(Placement::PerNode) => Nodes::Every,
                    Some(_) => Nodes::First,
                    None => bail!("an insert into {table}, which has no placement on a cluster"),
                };
                Ok(vec![(statement.to_owned(), nodes)])
            }
            ["CREATE", "VIEW", ..] | ["CREATE", "MATERIALIZED", "VIEW", ..] => {
                Ok(vec![(global_in(statement), Nodes::Every)])
            }
            _ => bail!("no cluster form for: {statement}"),
        }
    }

    fn create_table(&self, database: &str, statement: &str) -> Result<Vec<(String, Nodes)>> {
        let table = created_table(statement).context("a table without a name")?;
        let placement =
            placement(table).with_context(|| format!("table {table} has no placement on a cluster (cluster.rs)"))?;
        let (path, key) = match placement {
            Placement::PerNode => return Ok(vec![(statement.to_owned(), Nodes::Every)]),
            Placement::Everywhere => (format!("/clickhouse/tables/all/{database}/{table}"), None),
            Placement::ByPartition => {
                (format!("/clickhouse/tables/{{shard}}/{database}/{table}"), Some("kafka_partition".to_owned()))
            }
            Placement::ById(column) => {
                (format!("/clickhouse/tables/{{shard}}/{database}/{table}"), Some(format!("cityHash64({column})")))
            }
        };
        let replicated = replicated_engine(statement, &path)?;
        Ok(match key {
            None => vec![(replicated, Nodes::Every)],
            Some(key) => {
                let local = format!("{table}{LOCAL}");
                let start = statement.find(table).context("table name")?;
                let storage = format!("{}{local}{}", &replicated[..start], &replicated[start + table.len()..]);
                let distributed = format!(
                    "CREATE TABLE IF NOT EXISTS {table} AS {local} ENGINE = Distributed({}, {database}, {local}, {key})",
                    self.name
                );
                vec![(storage, Nodes::Every), (distributed, Nodes::Every)]
            }
        })
    }
}

/// The table a `CREATE TABLE IF NOT EXISTS name …` statement creates.
fn created_table(statement: &str) -> Option<&str> {
    let name = statement.split_ascii_whitespace().nth(5)?;
    name.split('(').next()
}

/// `statement` with every `IN (SELECT …)` and `NOT IN (SELECT …)` made
/// `GLOBAL`: the node that was asked runs the subquery once, on its own
/// replicas, and sends the result to every shard. A subquery over a
/// Distributed table runs so anyway (`distributed_product_mode = global`);
/// one over a table replicated everywhere (`rollup_chunk`, the progress in
/// `rate_rollup`) would otherwise run on each shard against that node's
/// replica, which may not yet have what dvc-rollup just wrote through
/// another node.
fn global_in(statement: &str) -> String {
    let mut out = String::with_capacity(statement.len() + 64);
    let mut rest = statement;
    while let Some(at) = rest.find("IN (") {
        let (before, after) = rest.split_at(at);
        let opens_select = after["IN (".len()..].trim_start().starts_with("SELECT");
        let word_start = before.is_empty() || before.ends_with(|c: char| c.is_ascii_whitespace() || c == '(');
        match before.strip_suffix("NOT ") {
            _ if !(opens_select && word_start) => out.push_str(before),
            Some(prefix) => out.extend([prefix, "GLOBAL NOT "]),
            None => out.extend([before, "GLOBAL "]),
        }
        out.push_str("IN (");
        rest = &after["IN (".len()..];
    }
    out.push_str(rest);
    out
}

/// Whether `table` is stored as `T_local` behind a Distributed `T`.
fn sharded(table: &str) -> Result<bool> {
    match placement(table) {
        Some(Placement::ByPartition | Placement::ById(_)) => Ok(true),
        Some(Placement::Everywhere | Placement::PerNode) => Ok(false),
        None => bail!("table {table} has no placement on a cluster (cluster.rs)"),
    }
}

/// `statement` with its `n`th word (whitespace-separated) replaced.
fn replace_word(statement: &str, n: usize, by: &str) -> String {
    let word = statement.split_ascii_whitespace().nth(n).unwrap_or_default();
    let at = word.as_ptr() as usize - statement.as_ptr() as usize;
    format!("{}{by}{}", &statement[..at], &statement[at + word.len()..])
}

/// `ENGINE = XMergeTree(args)` as `ENGINE = ReplicatedXMergeTree('path',
/// '{replica}', args)`.
fn replicated_engine(statement: &str, path: &str) -> Result<String> {
    let engine_at = statement.find("ENGINE = ").context("a table without ENGINE = ")? + "ENGINE = ".len();
    let rest = &statement[engine_at..];
    let open = rest.find('(').context("an engine without (")?;
    let engine = &rest[..open];
    ensure!(engine.ends_with("MergeTree"), "engine {engine} has no Replicated form");
    let mut depth = 0;
    let close = rest
        .char_indices()
        .skip(open)
        .find(|&(_, c)| {
            depth += match c {
                '(' => 1,
                ')' => -1,
                _ => 0,
            };
            depth == 0
        })
        .map(|(i, _)| i)
        .context("unbalanced engine arguments")?;
    let args = rest[open + 1..close].trim();
    let args = if args.is_empty() { String::new() } else { format!(", {args}") };
    Ok(format!("{}Replicated{engine}('{path}', '{{replica}}'{args}){}", &statement[..engine_at], &rest[close + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations;

    fn cluster() -> Cluster {
        Cluster { name: "dvc".into() }
    }

    #[test]
    fn every_table_the_migrations_create_has_a_placement() {
        let mut created = Vec::new();
        for m in migrations().unwrap() {
            for s in &m.statements {
                if s.starts_with("CREATE TABLE") {
                    created.push(created_table(s).unwrap().to_owned());
                }
                cluster().statements("db", s).unwrap_or_else(|e| panic!("{:03}: {e:#}", m.version));
            }
        }
        for (table, _) in PLACEMENTS {
            assert!(created.iter().any(|c| c == table), "{table} is placed but never created");
        }
    }

    #[test]
    fn a_raw_table_is_sharded_by_partition() {
        let s = "CREATE TABLE IF NOT EXISTS dossier_events\n(\n    kafka_partition UInt32\n)\nENGINE = ReplacingMergeTree()\nORDER BY (kafka_partition)";
        let out = cluster().statements("dvc", s).unwrap();
        assert_eq!(
            out,
            [
                (
                    "CREATE TABLE IF NOT EXISTS dossier_events_local\n(\n    kafka_partition UInt32\n)\nENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/dvc/dossier_events', '{replica}')\nORDER BY (kafka_partition)".to_owned(),
                    Nodes::Every
                ),
                (
                    "CREATE TABLE IF NOT EXISTS dossier_events AS dossier_events_local ENGINE = Distributed(dvc, dvc, dossier_events_local, kafka_partition)".to_owned(),
                    Nodes::Every
                ),
            ]
        );
    }

    #[test]
    fn engine_arguments_follow_the_path_and_replica() {
        let s =
            "CREATE TABLE IF NOT EXISTS rate_rollup (a Int64, b Int64) ENGINE = SummingMergeTree((a, b)) ORDER BY a";
        let out = cluster().statements("x", s).unwrap();
        assert_eq!(
            out,
            [(
                "CREATE TABLE IF NOT EXISTS rate_rollup (a Int64, b Int64) ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/all/x/rate_rollup', '{replica}', (a, b)) ORDER BY a".to_owned(),
                Nodes::Every
            )]
        );
        let copy = "CREATE TABLE IF NOT EXISTS dossier_state_v2 AS dossier_state\nENGINE = AggregatingMergeTree() ORDER BY dossier_id";
        let out = cluster().statements("x", copy).unwrap();
        assert!(out[0].0.starts_with("CREATE TABLE IF NOT EXISTS dossier_state_v2_local AS dossier_state\nENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/x/dossier_state_v2', '{replica}') ORDER BY"));
        assert!(out[1].0.ends_with("Distributed(dvc, x, dossier_state_v2_local, cityHash64(dossier_id))"));
    }

    #[test]
    fn subqueries_in_views_run_on_the_node_asked() {
        let view = "CREATE VIEW IF NOT EXISTS v AS SELECT a FROM t WHERE kind IN ('x', 'y') AND id IN (SELECT id FROM rollup_chunk)\n    AND b NOT IN (\n SELECT b FROM u) AND JOIN_IN (SELECT 1)";
        assert_eq!(
            cluster().statements("x", view).unwrap()[0].0,
            "CREATE VIEW IF NOT EXISTS v AS SELECT a FROM t WHERE kind IN ('x', 'y') AND id GLOBAL IN (SELECT id FROM rollup_chunk)\n    AND b GLOBAL NOT IN (\n SELECT b FROM u) AND JOIN_IN (SELECT 1)"
        );
        let insert = "INSERT INTO touches SELECT id FROM t WHERE id IN (SELECT id FROM rollup_chunk)";
        assert_eq!(cluster().statements("x", insert).unwrap()[0].0, insert, "only views are rewritten");
    }

    #[test]
    fn alters_reach_both_tables_and_backfills_run_once() {
        let alter = "ALTER TABLE dossier_events ADD COLUMN c Nullable(UInt8)";
        let out = cluster().statements("x", alter).unwrap();
        assert_eq!(out[0].0, "ALTER TABLE dossier_events_local ADD COLUMN c Nullable(UInt8)");
        assert_eq!(out[1].0, alter);
        let insert = "INSERT INTO touches SELECT now(), 1, dossier_id FROM dossier_state_v2";
        assert_eq!(cluster().statements("x", insert).unwrap(), [(insert.to_owned(), Nodes::First)]);
        let view = "CREATE VIEW IF NOT EXISTS v AS SELECT 1";
        assert_eq!(cluster().statements("x", view).unwrap(), [(view.to_owned(), Nodes::Every)]);
        let unplaced = "CREATE TABLE IF NOT EXISTS newcomer (a UInt8) ENGINE = MergeTree() ORDER BY a";
        assert!(format!("{:#}", cluster().statements("x", unplaced).unwrap_err()).contains("no placement"));
    }
}
