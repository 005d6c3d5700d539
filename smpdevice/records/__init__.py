"""Records: what was done to a person's skin, kept so that it stands up in an audit.

- `model`: the record values (sessions, passes, outcomes, per-pass figures). Pure.
- `chain`: the hash chain over records and its verification. Pure.
- `store`: the storage interface a backend implements.
- `sqlite` (with `sqlite_file`, `sqlite_schema`, `readonly`): the pass log in one SQLite file.
- `export`: JSONL and CSV exports.

`smpdevice.passlog` re-exports the public names, for code written before this package.
"""
