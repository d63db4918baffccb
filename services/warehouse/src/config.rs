//! Connection flags shared by every service that talks to ClickHouse.

use clickhouse::Client;

/// Where ClickHouse is. Defaults are the local stack of `make up`.
#[derive(clap::Args, Debug, Clone)]
pub struct ClickHouseArgs {
    /// ClickHouse HTTP endpoint.
    #[arg(long = "clickhouse-url", env = "DVC_CLICKHOUSE_URL", default_value = "http://127.0.0.1:8123")]
    pub url: String,
    /// ClickHouse user.
    #[arg(long = "clickhouse-user", env = "DVC_CLICKHOUSE_USER", default_value = "default")]
    pub user: String,
    /// ClickHouse password (prefer the environment variable over the flag).
    #[arg(
        long = "clickhouse-password",
        env = "DVC_CLICKHOUSE_PASSWORD",
        default_value = "",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub password: String,
    /// Database holding the DVC Pulse tables.
    #[arg(long = "clickhouse-database", env = "DVC_CLICKHOUSE_DATABASE", default_value = "dvc")]
    pub database: String,
}

impl ClickHouseArgs {
    /// A client for the DVC Pulse database. Validation is off: it relies on
    /// `RowBinaryWithNamesAndTypes`, which ClickHouse 18.16 lacks; the row
    /// types are checked against the real schema by the end-to-end tests.
    /// Predicate push-down is on: a `WHERE day …` on the daily views reaches
    /// the rollup's index only with it (18.16's default is off; current
    /// versions have it on).
    pub fn client(&self) -> Client {
        self.server_client().with_database(&self.database).with_setting("enable_optimize_predicate_expression", "1")
    }

    /// A client with no database selected (to create it).
    pub fn server_client(&self) -> Client {
        Client::default().with_url(&self.url).with_user(&self.user).with_password(&self.password).with_validation(false)
    }

    /// The same server with another database (tests use one each).
    pub fn with_database(&self, database: impl Into<String>) -> ClickHouseArgs {
        ClickHouseArgs { database: database.into(), ..self.clone() }
    }
}

impl Default for ClickHouseArgs {
    fn default() -> Self {
        flag_defaults()
    }
}

/// A group of flags (`clap::Args`) as given by their defaults and
/// environment variables alone, as a service started with no flags has them.
/// An environment variable with a bad value ends the process with clap's
/// message, as it would at start.
pub fn flag_defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let matches = T::augment_args(clap::Command::new("defaults")).get_matches_from(["defaults"]);
    T::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}
