"""Records: what was done to a person's skin, kept so that it stands up in an audit.

- `model`: the record values (sessions, passes, outcomes, per-pass figures). Pure.
- `chain`: the hash chain over records and its verification. Pure.
- `audit`: the full check (chain, head, signed heads, anchors, receipts). Pure.
- `keys`, `signing`: the installation key, signed heads, receipts, the anchors file.
- `store`: the storage interface a backend implements.
- `sqlite` (with `sqlite_file`, `sqlite_read`, `sqlite_schema`, `sqlite_signing`, `readonly`,
  `files`): the pass log in one SQLite file, private, readable from read-only media.
- `central`: a clinic chain's central PostgreSQL store (`smp sessions sync`).
- `export`: JSONL and CSV exports (pseudonymous, spreadsheet-safe), and their JSON Schema.

`smpdevice.passlog` re-exports the public names, for code written before this package.
"""
