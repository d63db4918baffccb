//! The contract's closed value sets are typed a second time in the
//! ClickHouse schema, as `Enum8` columns (names and codes); ingest writes
//! the codes of `dvc_events`' enums. Every such column of every migration
//! must carry exactly its contract enum's names and codes. Needs no stack.

use std::collections::BTreeSet;

use dvc_events::{
    ApplicantType, Channel, ContractEnum, PaymentMethod, PaymentStatus, PetitionClassification, PetitionStatus, Rating,
    ServiceLevel,
};

type Labels = BTreeSet<(String, u8)>;

fn labels<E: ContractEnum>(code: fn(E) -> u8) -> Labels {
    E::VARIANTS.iter().map(|(name, e)| ((*name).to_owned(), code(*e))).collect()
}

/// Each `Enum8(...)` of `sql` with the table (the latest `CREATE TABLE`
/// before it) and the column it types: the line's first word, or in a
/// view's `CAST(… AS Enum8(…)) AS name` line the name after the last `AS`.
fn enum_columns(sql: &str) -> Vec<(String, String, Labels)> {
    let mut out = Vec::new();
    let mut table = String::new();
    for line in sql.lines() {
        if let Some(name) = line.strip_prefix("CREATE TABLE IF NOT EXISTS ") {
            table = name.split_whitespace().next().unwrap_or_default().to_owned();
        }
        let column = match line.rsplit_once(" AS ") {
            Some((_, name)) if line.trim_start().starts_with("if(") || line.trim_start().starts_with("CAST(") => {
                name.trim().trim_end_matches(',')
            }
            _ => match line.split_whitespace().next() {
                Some(word) => word,
                None => continue,
            },
        };
        let mut rest = line;
        while let Some(start) = rest.find("Enum8(") {
            let body = &rest[start + "Enum8(".len()..];
            let end = body.find(')').unwrap_or_else(|| panic!("an Enum8 ends on its line: {line}"));
            let parsed = body[..end]
                .split(',')
                .map(|pair| {
                    let (name, code) = pair.split_once('=').unwrap_or_else(|| panic!("'name' = code: {pair}"));
                    let name = name.trim().trim_matches('\'').to_owned();
                    (name, code.trim().parse::<u8>().unwrap_or_else(|e| panic!("code of {pair}: {e}")))
                })
                .collect();
            out.push((table.clone(), column.to_owned(), parsed));
            rest = &body[end..];
        }
    }
    out
}

#[test]
fn every_enum_column_carries_its_contract_enums_names_and_codes() {
    let contract: [(&str, Labels); 8] = [
        ("service_level", labels(ServiceLevel::code)),
        ("online_level", labels(ServiceLevel::code)),
        ("classification", labels(PetitionClassification::code)),
        ("channel", labels(Channel::code)),
        ("applicant_type", labels(ApplicantType::code)),
        // payment_events.status; a dossier's status is a UInt8 step number.
        ("status", labels(PaymentStatus::code)),
        ("method", labels(PaymentMethod::code)),
        ("rating", labels(Rating::code)),
    ];
    // Columns whose name alone does not tell the enum: a petition's status
    // (the payments' column name) and its state.
    let by_table: [(&str, &str, Labels); 2] = [
        ("petition_events", "status", labels(PetitionStatus::code)),
        ("petition_state", "last_status", labels(PetitionStatus::code)),
    ];
    // The rollups' `kind` (rate_rollup's dvc_rollup::rows::RowKind,
    // index766_rollup's dvc_rollup::index::Kind) and index766_rollup's
    // `period_kind` are their own, not the contract's; the rollup and index
    // tests read every one back.
    let own = ["kind", "period_kind"];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/clickhouse");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    let mut seen = BTreeSet::new();
    for file in &files {
        for (table, column, found) in enum_columns(&std::fs::read_to_string(file).unwrap()) {
            if own.contains(&column.as_str()) {
                continue;
            }
            if let Some((_, _, want)) = by_table.iter().find(|(t, c, _)| (*t, *c) == (table.as_str(), column.as_str()))
            {
                assert_eq!(&found, want, "{}: {table}.{column}", file.display());
                seen.insert(format!("{table}.{column}"));
                continue;
            }
            let (_, want) = contract
                .iter()
                .find(|(name, _)| *name == column)
                .unwrap_or_else(|| panic!("{}: Enum8 column {column} has no contract enum here", file.display()));
            assert_eq!(&found, want, "{}: {column}", file.display());
            seen.insert(column);
        }
    }
    let all: BTreeSet<String> = contract
        .iter()
        .map(|(c, _)| (*c).to_owned())
        .chain(by_table.iter().map(|(t, c, _)| format!("{t}.{c}")))
        .collect();
    assert_eq!(seen, all, "every contract enum is typed in the schema at least once");
}

#[test]
fn the_parser_reads_names_codes_and_columns() {
    let sql = "CREATE TABLE IF NOT EXISTS dossier_state\n(\n\
               channel AggregateFunction(argMin, Enum8('in_person' = 1, 'online' = 2), DateTime('UTC')),\n\
               applicant_type Nullable(Enum8('citizen' = 1)),";
    let parsed = enum_columns(sql);
    assert_eq!(parsed.len(), 2);
    assert_eq!((parsed[0].0.as_str(), parsed[0].1.as_str()), ("dossier_state", "channel"));
    assert_eq!(parsed[0].2, [("in_person".to_owned(), 1), ("online".to_owned(), 2)].into_iter().collect());
    let citizen = [("citizen".to_owned(), 1)].into_iter().collect();
    assert_eq!(parsed[1], ("dossier_state".to_owned(), "applicant_type".to_owned(), citizen));
    let view = "    if(c = 0, NULL, CAST(greatest(c, 1) AS Enum8('other' = 3))) AS classification,";
    assert_eq!(enum_columns(view)[0].1, "classification");
}
