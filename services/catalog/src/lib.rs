//! Reading a procedure catalogue file (JSON Lines, one entry per line, as
//! the national procedure database exports it): every line checked with the
//! contract's decoder before anything is published, so a broken export is
//! fixed and loaded whole, never half-loaded.

use dvc_events::CatalogEntry;

/// One entry of the file, ready to publish: its message key
/// (`authority_code/procedure_code`) and the line as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub number: usize,
    pub key: String,
    pub value: Vec<u8>,
}

/// The entries of `text`, or every invalid line as `line N: reason` (the
/// decoder's reason, which names the field). Blank lines are skipped; a
/// line's trailing `\r` (a file written on Windows) is not part of it.
pub fn read(text: &str) -> Result<Vec<Line>, Vec<String>> {
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        match CatalogEntry::decode(line.as_bytes()) {
            Ok(entry) => lines.push(Line { number: i + 1, key: entry.key(), value: line.as_bytes().to_vec() }),
            Err(e) => errors.push(format!("line {}: {e}", i + 1)),
        }
    }
    if errors.is_empty() { Ok(lines) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRY: &str = r#"{"schema_version": 1, "authority_code": "H29", "procedure_code": "1.001234", "updated_at": "2024-06-20T10:00:00+07:00"}"#;

    #[test]
    fn entries_are_keyed_by_authority_and_procedure_and_kept_as_written() {
        let other = ENTRY.replace("H29", "G05");
        let text = format!("{ENTRY}\r\n\n   \n{other}\n");
        let lines = read(&text).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[0].number, lines[0].key.as_str()), (1, "H29/1.001234"));
        assert_eq!(lines[0].value, ENTRY.as_bytes(), "the line as written, without its \\r");
        assert_eq!((lines[1].number, lines[1].key.as_str()), (4, "G05/1.001234"));
        assert_eq!(lines[1].value, other.as_bytes());
    }

    #[test]
    fn every_invalid_line_is_named_with_its_reason() {
        let bad_date = ENTRY.replace(r#""updated_at""#, r#""published_on": "2024-02-30", "updated_at""#);
        let text = format!("{ENTRY}\nnot json\n{bad_date}\n{}\n", ENTRY.replace("1.001234", "1.1"));
        let errors = read(&text).unwrap_err();
        assert_eq!(
            errors,
            [
                "line 2: invalid JSON: expected ident at line 1 column 2",
                "line 3: published_on: \"2024-02-30\" is not a date YYYY-MM-DD (e.g. 2024-07-01)",
                "line 4: procedure_code: \"1.1\" does not match ^\\d\\.\\d{6}$",
            ]
        );
        assert_eq!(read("").unwrap(), []);
    }
}
