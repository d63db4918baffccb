#!/usr/bin/env python3
"""Indexes the record headers of a tansu 0.6 SQLite store (idempotent).

tansu 0.6 creates its `header` table without an index, and reads a record's
headers by (topition, offset_id): every record it serves scans every header
of the store, and every record it deletes does as well (the foreign key's
cascade). Each dead-lettered message adds four headers (CONTRACT.md §1),
so the broker slowed with every malformed event it had ever stored. On a
store holding 14,000 headers, the simulator's end-to-end test had 54,000 of
its 224,000 events stored after 120 s; with this index the whole test took
76 s.

Run it once the broker has created its tables (it has when it listens),
before clients connect: `tansu-store-index.py STORE.db`.
"""

import sqlite3
import sys


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} STORE.db")
    with sqlite3.connect(sys.argv[1], timeout=30) as store:
        if store.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'header'").fetchone() is None:
            sys.exit(f"{sys.argv[1]}: no header table; is it a tansu 0.6 SQLite store?")
        store.execute("CREATE INDEX IF NOT EXISTS header_record ON header (topition, offset_id)")


if __name__ == "__main__":
    main()
