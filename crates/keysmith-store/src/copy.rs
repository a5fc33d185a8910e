//! Copying a whole Keysmith database to another, SQLite to PostgreSQL or back
//! (`keysmith admin migrate`): every table, row for row, in one transaction on the
//! target, which must be empty; then each table's rows counted and digested on both
//! sides, and the copy committed only if they agree.
//!
//! The schema is the same on both sides (the same migrations), so each column's kind
//! (integer, text, bytes, boolean) is read from the source's own catalogue, and values
//! travel as those kinds. PostgreSQL's identity columns take the source's IDs
//! (`OVERRIDING SYSTEM VALUE`) and their sequences move past them.

use crate::{Result, StoreError, TABLES};
use sha2::{Digest, Sha256};
use sqlx::Row;

/// Tables of one row that the migrations themselves write; the copy replaces it.
const SINGLE_ROW_TABLES: [&str; 3] = ["webhook_outbox", "audit_chain", "schema_compat"];

/// A column's kind, as both backends store it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Text,
    Bytes,
    Bool,
}

/// A value in transit.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    Bool(bool),
}

impl Value {
    /// A canonical encoding for the table digest: the same value reads the same from
    /// either backend.
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Null => out.push(0),
            Self::Int(i) => {
                out.push(1);
                out.extend_from_slice(&i.to_be_bytes());
            }
            Self::Text(s) => {
                out.push(2);
                out.extend_from_slice(&(s.len() as u64).to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Self::Bytes(b) => {
                out.push(3);
                out.extend_from_slice(&(b.len() as u64).to_be_bytes());
                out.extend_from_slice(b);
            }
            Self::Bool(b) => out.extend_from_slice(&[4, u8::from(*b)]),
        }
    }
}

/// One table as copied: its name, rows, and the SHA-256 of its rows (each row's
/// canonical encoding, sorted, so neither side's order or collation matters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCopy {
    pub table: String,
    pub rows: u64,
    pub digest: String,
}

fn digest(rows: &[Vec<Value>]) -> String {
    let mut encoded: Vec<Vec<u8>> = rows
        .iter()
        .map(|row| {
            let mut out = Vec::new();
            for v in row {
                v.encode(&mut out);
            }
            out
        })
        .collect();
    encoded.sort_unstable();
    let mut hash = Sha256::new();
    for row in &encoded {
        hash.update((row.len() as u64).to_be_bytes());
        hash.update(row);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn kind_of(declared: &str) -> Result<Kind> {
    let t = declared.to_ascii_lowercase();
    Ok(match t.as_str() {
        "integer" | "bigint" | "int8" | "int4" | "smallint" => Kind::Int,
        "text" | "character varying" => Kind::Text,
        "blob" | "bytea" => Kind::Bytes,
        "boolean" | "bool" => Kind::Bool,
        other => return Err(StoreError::Corrupt(format!("a column of unknown type `{other}`"))),
    })
}

fn err(what: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |e| StoreError::Backend(format!("{what}: {e}"))
}

macro_rules! backend {
    ($module:ident, $db:ty, $columns_sql:expr, $overriding:expr) => {
        mod $module {
            use super::*;

            pub(super) type Pool = sqlx::Pool<$db>;

            /// The columns of `table` with their kinds, in their order.
            pub(super) async fn columns(pool: &Pool, table: &str) -> Result<Vec<(String, Kind)>> {
                let rows = sqlx::query($columns_sql)
                    .bind(table)
                    .fetch_all(pool)
                    .await
                    .map_err(err("read the schema"))?;
                rows.iter()
                    .map(|r| {
                        let name: String = r.try_get(0).map_err(err("read the schema"))?;
                        let declared: String = r.try_get(1).map_err(err("read the schema"))?;
                        Ok((name, kind_of(&declared)?))
                    })
                    .collect()
            }

            pub(super) async fn read<'c, E>(
                executor: E,
                table: &str,
                columns: &[(String, Kind)],
            ) -> Result<Vec<Vec<Value>>>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
                let sql = format!("SELECT {} FROM {table} ORDER BY 1", names.join(", "));
                let rows = sqlx::query(&sql).fetch_all(executor).await.map_err(err(table))?;
                rows.iter()
                    .map(|r| {
                        columns
                            .iter()
                            .enumerate()
                            .map(|(i, (_, kind))| {
                                let v = match kind {
                                    Kind::Int => r.try_get::<Option<i64>, _>(i).map(|v| v.map(Value::Int)),
                                    Kind::Text => r.try_get::<Option<String>, _>(i).map(|v| v.map(Value::Text)),
                                    Kind::Bytes => r.try_get::<Option<Vec<u8>>, _>(i).map(|v| v.map(Value::Bytes)),
                                    Kind::Bool => r.try_get::<Option<bool>, _>(i).map(|v| v.map(Value::Bool)),
                                };
                                Ok(v.map_err(err(table))?.unwrap_or(Value::Null))
                            })
                            .collect()
                    })
                    .collect()
            }

            pub(super) async fn write(
                tx: &mut sqlx::Transaction<'_, $db>,
                table: &str,
                columns: &[(String, Kind)],
                rows: &[Vec<Value>],
            ) -> Result<()> {
                let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
                let marks: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
                let sql = format!(
                    "INSERT INTO {table} ({}){} VALUES ({})",
                    names.join(", "),
                    $overriding,
                    marks.join(", ")
                );
                for row in rows {
                    let mut q = sqlx::query(&sql);
                    for (v, (_, kind)) in row.iter().zip(columns) {
                        q = match (v, kind) {
                            (Value::Null, Kind::Int) => q.bind(None::<i64>),
                            (Value::Null, Kind::Text) => q.bind(None::<String>),
                            (Value::Null, Kind::Bytes) => q.bind(None::<Vec<u8>>),
                            (Value::Null, Kind::Bool) => q.bind(None::<bool>),
                            (Value::Int(i), _) => q.bind(*i),
                            (Value::Text(s), _) => q.bind(s.clone()),
                            (Value::Bytes(b), _) => q.bind(b.clone()),
                            (Value::Bool(b), _) => q.bind(*b),
                        };
                    }
                    q.execute(&mut **tx).await.map_err(err(table))?;
                }
                Ok(())
            }
        }
    };
}

backend!(
    sqlite,
    sqlx::Sqlite,
    "SELECT name, type FROM pragma_table_info($1) ORDER BY cid",
    ""
);
backend!(
    postgres,
    sqlx::Postgres,
    "SELECT column_name::text, data_type::text FROM information_schema.columns \
     WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    " OVERRIDING SYSTEM VALUE"
);

/// Either backend's pool.
pub(crate) enum Side {
    Sqlite(sqlite::Pool),
    Postgres(postgres::Pool),
}

impl Side {
    async fn columns(&self, table: &str) -> Result<Vec<(String, Kind)>> {
        match self {
            Self::Sqlite(p) => sqlite::columns(p, table).await,
            Self::Postgres(p) => postgres::columns(p, table).await,
        }
    }
}

/// Copies every table of `source` into `target` (both migrated to the same version),
/// in one transaction on the target, refusing a target that holds anything; returns
/// what each table held, checked on both sides before the commit.
pub(crate) async fn copy(source: &Side, target: &Side) -> Result<Vec<TableCopy>> {
    // The source is read in one transaction too, so the copy is of one moment.
    let mut tables = Vec::new();
    for table in TABLES {
        let columns = source.columns(table).await?;
        if columns.is_empty() {
            return Err(StoreError::Corrupt(format!("the source has no table {table}")));
        }
        tables.push((*table, columns));
    }
    let mut snapshot = Vec::new();
    match source {
        Side::Sqlite(p) => {
            let mut tx = p.begin().await.map_err(err("read the source"))?;
            for (table, columns) in &tables {
                snapshot.push(sqlite::read(&mut *tx, table, columns).await?);
            }
        }
        Side::Postgres(p) => {
            let mut tx = p.begin().await.map_err(err("read the source"))?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await
                .map_err(err("read the source"))?;
            for (table, columns) in &tables {
                snapshot.push(postgres::read(&mut *tx, table, columns).await?);
            }
        }
    }
    let report: Vec<TableCopy> = tables
        .iter()
        .zip(&snapshot)
        .map(|((table, _), rows)| TableCopy {
            table: (*table).to_owned(),
            rows: rows.len() as u64,
            digest: digest(rows),
        })
        .collect();

    macro_rules! fill {
        ($pool:expr, $module:ident, $tx:ident, $after:block) => {{
            let mut $tx = $pool.begin().await.map_err(err("write the target"))?;
            for (table, _) in &tables {
                let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
                    .fetch_one(&mut *$tx)
                    .await
                    .map_err(err(table))?;
                // The migrations' own rows: the webhook outbox's cursor, the chain's head, the
                // schema's oldest reader.
                let own = i64::from(SINGLE_ROW_TABLES.contains(table));
                if n > own {
                    return Err(StoreError::Open(format!(
                        "the target is not empty: table {table} has {n} rows; migrate only into a new, empty database"
                    )));
                }
            }
            for table in SINGLE_ROW_TABLES {
                sqlx::query(&format!("DELETE FROM {table}"))
                    .execute(&mut *$tx)
                    .await
                    .map_err(err(table))?;
            }
            for ((table, columns), rows) in tables.iter().zip(&snapshot) {
                $module::write(&mut $tx, table, columns, rows).await?;
            }
            $after
            for ((table, columns), expected) in tables.iter().zip(&report) {
                let copied = $module::read(&mut *$tx, table, columns).await?;
                if copied.len() as u64 != expected.rows || digest(&copied) != expected.digest {
                    return Err(StoreError::Corrupt(format!(
                        "table {table} differs after the copy ({} rows of {}); nothing was written",
                        copied.len(),
                        expected.rows
                    )));
                }
            }
            $tx.commit().await.map_err(err("commit the copy"))?;
        }};
    }
    match target {
        Side::Sqlite(p) => fill!(p, sqlite, tx, {}),
        Side::Postgres(p) => fill!(p, postgres, tx, {
            move_sequences(&mut tx).await?;
        }),
    }
    Ok(report)
}

/// Moves each identity column's sequence past the IDs copied in.
async fn move_sequences(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>) -> Result<()> {
    let identities: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND is_identity = 'YES'",
    )
    .fetch_all(&mut **tx)
    .await
    .map_err(err("read the identity columns"))?;
    for (table, column) in identities {
        sqlx::query(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), COALESCE(MAX({column}), 0) + 1, false) FROM {table}"
        ))
        .execute(&mut **tx)
        .await
        .map_err(err(&table))?;
    }
    Ok(())
}
