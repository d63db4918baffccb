//! What the reference tables (`schemas/reference/`, loaded by the migrate
//! step) share: how a date is stored, how a date is read from a file, and
//! how a table is replaced whole.

use anyhow::{Context, Result};
use clickhouse::{Client, RowOwned, RowRead, RowWrite};
use time::macros::{date, format_description};
use time::{Date, Duration};

const EPOCH: Date = date!(1970 - 01 - 01);

/// A `Date` column's value: days since 1970-01-01.
pub fn day_number(date: Date) -> Result<u16> {
    u16::try_from((date - EPOCH).whole_days()).with_context(|| format!("{date} is outside ClickHouse's Date"))
}

/// The date of a `Date` column's value.
pub fn from_day_number(days: u16) -> Date {
    EPOCH + Duration::days(i64::from(days))
}

/// A `YYYY-MM-DD` date of a reference file.
pub fn parse_date(text: &str) -> Result<Date> {
    Date::parse(text, format_description!("[year]-[month]-[day]"))
        .with_context(|| format!("{text:?} is not a YYYY-MM-DD date"))
}

/// Makes `table` hold exactly `rows` (`what` they are, for the log):
/// nothing to do when it does (read in `order_by` order, compared row by
/// row); otherwise the rows go into a table of their own, swapped in with
/// one RENAME, so a reader sees the old contents or the new, never part.
/// Returns whether it loaded.
pub(crate) async fn replace<R>(db: &Client, table: &str, order_by: &str, rows: &[R], what: &str) -> Result<bool>
where
    R: RowOwned + RowRead + RowWrite + PartialEq,
{
    let stored: Vec<R> = db
        .query(&format!("SELECT ?fields FROM {table} ORDER BY {order_by}"))
        .fetch_all()
        .await
        .with_context(|| format!("reading {table}"))?;
    if stored == rows {
        return Ok(false);
    }
    let (old, load) = (format!("{table}_old"), format!("{table}_load"));
    for sql in [
        format!("DROP TABLE IF EXISTS {old}"),
        format!("DROP TABLE IF EXISTS {load}"),
        format!("CREATE TABLE {load} AS {table}"),
    ] {
        db.query(&sql).execute().await.with_context(|| sql.clone())?;
    }
    let mut insert = db.insert::<R>(&load).await?;
    for row in rows {
        insert.write(row).await?;
    }
    insert.end().await.with_context(|| format!("writing {load}"))?;
    for sql in [format!("RENAME TABLE {table} TO {old}, {load} TO {table}"), format!("DROP TABLE {old}")] {
        db.query(&sql).execute().await.with_context(|| sql.clone())?;
    }
    tracing::info!(table, rows = rows.len(), "loaded {what}");
    Ok(true)
}
