"""The central store's PostgreSQL schema and the triggers that keep it append-only.

`BASE` is the schema as first released (tables, the chain check on every record, the head
that follows its records, records and signed heads frozen). `GUARDS` closes what it left open
(review 7b, R01): TRUNCATE of the signed heads, UPDATE, DELETE and TRUNCATE of the
installations (a registered key never changes) and of the logs (a log's head only moves
forward, to its newest record). Both are idempotent and run at every connection, so a store
created by an older smpdevice gets the guards at its next sync or verify (the migration).
They run only when `is_current` says the store is missing, older than SCHEMA_VERSION or lacks a
trigger: the setup needs the tables' owner, so the PCs' role (INSERT and SELECT, UPDATE on
smp_logs) syncs and verifies once the owner has set the store up (review 8b, R01).

A role that owns the tables can still drop or disable triggers: give the PCs' role only
INSERT and SELECT (docs/integration.md).
"""

from __future__ import annotations

import re
from typing import Any

from smpdevice.records.chain import GENESIS_HASH

BASE = """
CREATE TABLE IF NOT EXISTS smp_installations (
    key_fingerprint TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    registered_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS smp_logs (
    log_id TEXT PRIMARY KEY,
    key_fingerprint TEXT NOT NULL REFERENCES smp_installations,
    head_seq BIGINT NOT NULL DEFAULT 0,
    head_hash TEXT NOT NULL DEFAULT '{genesis}',
    head_signature TEXT,
    registered_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    synced_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS smp_records (
    log_id TEXT NOT NULL REFERENCES smp_logs,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    session_id TEXT NOT NULL,
    pass_id TEXT,
    written_at TEXT NOT NULL,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (log_id, seq));
CREATE TABLE IF NOT EXISTS smp_signed_heads (
    log_id TEXT NOT NULL REFERENCES smp_logs,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    reason TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (log_id, seq));

-- STABLE, as convert_to is (was IMMUTABLE: never inlined, ~5x slower per row in a query).
CREATE OR REPLACE FUNCTION smp_record_hash(r smp_records) RETURNS TEXT
LANGUAGE sql STABLE AS $$
  SELECT encode(sha256(convert_to(
      length(r.seq::text) || ':' || r.seq::text || ',' ||
      length(r.kind) || ':' || r.kind || ',' ||
      length(r.session_id) || ':' || r.session_id || ',' ||
      length(coalesce('+' || r.pass_id, '-')) || ':' || coalesce('+' || r.pass_id, '-') || ',' ||
      length(r.written_at) || ':' || r.written_at || ',' ||
      length(r.body) || ':' || r.body || ',' ||
      length(r.prev_hash) || ':' || r.prev_hash || ',', 'UTF8')), 'hex')
$$;

-- A record is accepted only if it continues its log's chain: the record before it is there
-- (or it is the first) and its prev_hash is that record's hash; its own hash is recomputed.
CREATE OR REPLACE FUNCTION smp_records_append() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE previous TEXT;
BEGIN
  IF NEW.seq = 1 THEN
    previous := '{genesis}';
  ELSE
    SELECT hash INTO previous FROM smp_records WHERE log_id = NEW.log_id AND seq = NEW.seq - 1;
  END IF;
  IF previous IS NULL OR NEW.prev_hash <> previous THEN
    RAISE EXCEPTION 'smp: record % of log % does not continue its chain', NEW.seq, NEW.log_id
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.hash <> smp_record_hash(NEW) THEN
    RAISE EXCEPTION 'smp: record % of log % does not match its hash', NEW.seq, NEW.log_id
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;

-- The head of each log follows its records, once per statement (not per row).
CREATE OR REPLACE FUNCTION smp_logs_advance() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE smp_logs l SET head_seq = r.seq, head_hash = r.hash, synced_at = now()
    FROM (SELECT DISTINCT ON (n.log_id) n.log_id, n.seq, n.hash FROM new_rows n
          ORDER BY n.log_id, n.seq DESC) r
    WHERE l.log_id = r.log_id AND r.seq > l.head_seq;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION smp_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'smp: % is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;

{base_triggers}""".replace("{genesis}", GENESIS_HASH)

# Each trigger is looked up on its own table (a second store in another schema of the
# database gets its own), created when missing and enabled when disabled (review 16).
_BASE_TRIGGERS = {
    "smp_records_append": "BEFORE INSERT ON smp_records FOR EACH ROW "
                          "EXECUTE FUNCTION smp_records_append()",
    "smp_logs_advance": "AFTER INSERT ON smp_records REFERENCING NEW TABLE AS new_rows "
                        "FOR EACH STATEMENT EXECUTE FUNCTION smp_logs_advance()",
    "smp_records_frozen": "BEFORE UPDATE OR DELETE ON smp_records FOR EACH ROW "
                          "EXECUTE FUNCTION smp_append_only()",
    "smp_records_no_truncate": "BEFORE TRUNCATE ON smp_records FOR EACH STATEMENT "
                               "EXECUTE FUNCTION smp_append_only()",
    "smp_heads_frozen": "BEFORE UPDATE OR DELETE ON smp_signed_heads FOR EACH ROW "
                        "EXECUTE FUNCTION smp_append_only()",
}
_GUARD_TRIGGERS = {
    "smp_heads_no_truncate": "BEFORE TRUNCATE ON smp_signed_heads FOR EACH STATEMENT "
                             "EXECUTE FUNCTION smp_append_only()",
    "smp_installations_frozen": "BEFORE UPDATE OR DELETE ON smp_installations FOR EACH ROW "
                                "EXECUTE FUNCTION smp_append_only()",
    "smp_installations_no_truncate": "BEFORE TRUNCATE ON smp_installations FOR EACH STATEMENT "
                                     "EXECUTE FUNCTION smp_append_only()",
    "smp_logs_forward_only": "BEFORE UPDATE OR DELETE ON smp_logs FOR EACH ROW "
                             "EXECUTE FUNCTION smp_logs_forward_only()",
    "smp_logs_no_truncate": "BEFORE TRUNCATE ON smp_logs FOR EACH STATEMENT "
                            "EXECUTE FUNCTION smp_append_only()",
}

def _table(spec: str) -> str:
    return spec.split(" ON ", 1)[1].split()[0]


def _runs(spec: str) -> str:
    return spec.rsplit("EXECUTE FUNCTION ", 1)[1]


def _ensure(triggers: dict[str, str]) -> str:
    """A DO block creating each trigger missing from its table, enabling each disabled one,
    and creating again each that runs another function than its own."""
    found = ("SELECT CASE WHEN tgfoid = '{runs}'::regprocedure THEN tgenabled ELSE 'X' END "
             "FROM pg_trigger WHERE tgrelid = '{table}'::regclass AND tgname = '{name}'")
    return "DO $$ DECLARE state \"char\"; BEGIN\n" + "".join(
        f"  state := ({found.format(table=_table(spec), name=name, runs=_runs(spec))});\n"
        f"  IF state = 'X' THEN\n    DROP TRIGGER {name} ON {_table(spec)};\n  END IF;\n"
        f"  IF state IS NULL OR state = 'X' THEN\n    CREATE TRIGGER {name} {spec};\n"
        f"  ELSIF state <> 'O' THEN\n    ALTER TABLE {_table(spec)} ENABLE TRIGGER {name};\n"
        "  END IF;\n" for name, spec in triggers.items()) + "END $$;\n"


BASE = BASE.replace("{base_triggers}", _ensure(_BASE_TRIGGERS))

GUARDS = """
-- A log row is never deleted; its identity and owner never change; its head only moves to
-- its newest record (as smp_logs_advance does); head_signature (not checkable in SQL: no
-- Ed25519) is checked against the registered key by `smp sessions verify --against`.
CREATE OR REPLACE FUNCTION smp_logs_forward_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'smp: smp_logs is append-only: DELETE refused'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NEW.log_id <> OLD.log_id OR NEW.key_fingerprint <> OLD.key_fingerprint
     OR NEW.registered_at <> OLD.registered_at THEN
    RAISE EXCEPTION 'smp: smp_logs is append-only: a log''s id, key and registration never change'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF (NEW.head_seq, NEW.head_hash) IS DISTINCT FROM (OLD.head_seq, OLD.head_hash) AND (
       NEW.head_seq < OLD.head_seq
       OR NEW.head_seq IS DISTINCT FROM
          (SELECT max(seq) FROM smp_records WHERE log_id = NEW.log_id)
       OR NOT EXISTS (SELECT 1 FROM smp_records WHERE log_id = NEW.log_id
                      AND seq = NEW.head_seq AND hash = NEW.head_hash)) THEN
    RAISE EXCEPTION 'smp: smp_logs is append-only: the head of log % only moves to its '
                    'newest record', OLD.log_id
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;

""" + _ensure(_GUARD_TRIGGERS) + """
-- The trigger functions read tables and call functions by name: pinned to the store's own
-- schema, never to what a session's search_path (or a temporary table) puts first.
DO $$ DECLARE here TEXT := quote_ident(current_schema()); BEGIN
""" + "".join(
    f"  EXECUTE 'ALTER FUNCTION {fn}() SET search_path = ' || here || ', pg_temp';\n"
    for fn in ("smp_records_append", "smp_logs_advance", "smp_logs_forward_only")) + """END $$;
"""

# The version the store is set up to, kept as the comment of smp_logs (readable by every
# role, unlike the setup, which needs the tables' owner): 2 = BASE + GUARDS; 3 = each trigger
# on its own table and enabled, the trigger functions pinned to the store's schema.
SCHEMA_VERSION = 3
_MARK = "smpdevice central schema "
MARK = f"COMMENT ON TABLE smp_logs IS '{_MARK}{SCHEMA_VERSION}';\n"

SCHEMA = BASE + GUARDS + MARK
GUARD_TRIGGERS = tuple(_GUARD_TRIGGERS)
TRIGGERS = (*_BASE_TRIGGERS, *GUARD_TRIGGERS)
_ON_TABLE = [(name, _table(spec)) for name, spec in {**_BASE_TRIGGERS, **_GUARD_TRIGGERS}.items()]
TABLES = ("smp_installations", "smp_logs", "smp_records", "smp_signed_heads")

# Each function the schema writes: (name, argument types, language, body as written), and the
# function each trigger runs. A store where one differs (the hash function replaced by the
# tables' owner with `SELECT r.hash`, review 16b; a trigger pointed at another function) is
# not current: the owner's next sync or verify writes it back, a PC's role is refused (exit 2).
_FUNCTIONS = [(name, " ".join(args.split()[1:]), lang, body) for name, args, lang, body
              in re.findall(r"CREATE OR REPLACE FUNCTION (\w+)\(([^)]*)\).*?LANGUAGE (\w+)"
                            r".*?AS \$\$(.*?)\$\$", SCHEMA, re.S)]
_RUNS = {name: _runs(spec) for name, spec in {**_BASE_TRIGGERS, **_GUARD_TRIGGERS}.items()}

# One row: the version mark (NULL: no store yet, or one set up before the mark), how many
# of TRIGGERS are on their own table (as the session's search_path names it), enabled and
# running their own function, and how many of _FUNCTIONS are as written. Only catalog reads:
# the PCs' INSERT/SELECT role may run it.
CURRENT_QUERY = ("SELECT obj_description(to_regclass('smp_logs'), 'pg_class'), "
                 "(SELECT count(*) FROM unnest(%s::text[], %s::text[], %s::text[]) w(name, tab, "
                 "fn) JOIN pg_trigger t ON t.tgrelid = to_regclass(w.tab) AND t.tgname = w.name "
                 "WHERE t.tgenabled = 'O' AND t.tgfoid = to_regprocedure(w.fn)), "
                 "(SELECT count(*) FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) "
                 "f(name, args, lang, src) JOIN pg_proc p ON p.proname = f.name "
                 "AND oidvectortypes(p.proargtypes) = f.args AND pg_function_is_visible(p.oid) "
                 "JOIN pg_language l ON l.oid = p.prolang "
                 "WHERE l.lanname = f.lang AND p.prosrc = f.src)")

# Each smp table that exists (as the search_path names it): its schema, whether the setup
# would create there (current_schema), and whether this role owns it (or is in its owner).
_TABLES_QUERY = ("SELECT w.tab, n.nspname, n.nspname = current_schema(), "
                 "pg_has_role(c.relowner, 'USAGE') FROM unnest(%s::text[]) w(tab) "
                 "JOIN pg_class c ON c.oid = to_regclass(w.tab) "
                 "JOIN pg_namespace n ON n.oid = c.relnamespace ORDER BY w.tab")


def is_current(conn: Any) -> bool:
    """Whether the store at `conn` is set up to SCHEMA_VERSION (or newer: never downgraded)
    with every trigger on its table and enabled; else the setup (or migration) must run, as
    the owner."""
    names, tables = [n for n, _ in _ON_TABLE], [t for _, t in _ON_TABLE]
    mark, triggers, functions = conn.execute(CURRENT_QUERY, (
        names, tables, [_RUNS[n] for n in names], *map(list, zip(*_FUNCTIONS, strict=True))
    )).fetchone()
    if not isinstance(mark, str) or not mark.startswith(_MARK):
        return False
    version = mark.removeprefix(_MARK)
    return (version.isdigit() and int(version) >= SCHEMA_VERSION
            and triggers == len(TRIGGERS) and functions == len(_FUNCTIONS))


def setup_refusal(conn: Any) -> tuple[str, bool] | None:
    """Why this connection must not set the store up (None: it may), and whether the reason
    is the rights (the tables' owner must): a table of the store this role does not own, or
    one in another schema than the one the setup would create the missing ones in (never a
    second, guardless store beside the first)."""
    for table, schema, here, owned in conn.execute(_TABLES_QUERY, (list(TABLES),)).fetchall():
        if not owned:
            return f"this role does not own {schema}.{table}", True
        if not here:
            return (f"{schema}.{table} is not in the schema new tables go to (the first of the "
                    "search_path); give a search_path that names the store's schema first",
                    False)
    return None
