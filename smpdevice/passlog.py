"""The pass log (compatibility module): the records now live in `smpdevice.records`.

`PassLog` is the SQLite backend (`smpdevice.records.sqlite`); the record values are in
`smpdevice.records.model` and the hash chain in `smpdevice.records.chain`. Import from here or
from there: the names are the same objects.
"""

from smpdevice.records.chain import GENESIS_HASH, BrokenLink, ChainRecord, record_hash, verify_chain
from smpdevice.records.export import EXPORT_FORMATS
from smpdevice.records.model import (
    COUNTER_MODULUS,
    EXPORT_FIELDS,
    PASS_FIELDS,
    SESSION_FIELDS,
    PassLogError,
    PassOutcome,
    PassRecord,
    PassStats,
    SessionRecord,
)
from smpdevice.records.sqlite import PassLog
from smpdevice.records.sqlite_schema import MIGRATIONS, SCHEMA_VERSION
from smpdevice.records.store import RecordStore

__all__ = [
    "COUNTER_MODULUS", "EXPORT_FIELDS", "EXPORT_FORMATS", "GENESIS_HASH", "MIGRATIONS",
    "PASS_FIELDS", "SCHEMA_VERSION", "SESSION_FIELDS", "BrokenLink", "ChainRecord", "PassLog",
    "PassLogError", "PassOutcome", "PassRecord", "PassStats", "RecordStore", "SessionRecord",
    "record_hash", "verify_chain",
]
