//! SQLite, the embedded default: a file in WAL mode, one writer connection (SQLite has one
//! writer at a time anyway; a single connection turns lock contention into an orderly queue)
//! and a few readers. Documents are JSON text; times are fixed-width RFC 3339 UTC text, so
//! text order is time order.

use super::{
    object, page_bounds, params_of, parse_operation, table_name, timestamp, Change, Document, Item,
    ListQuery, Operation, Page, Precondition, Store, StoreError, Update,
};
use crate::collections::filter::SqlParam;
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqlitePool};
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
}

fn bind<'q>(
    query: Query<'q, Sqlite, SqliteArguments<'q>>,
    param: &'q SqlParam,
) -> Query<'q, Sqlite, SqliteArguments<'q>> {
    match param {
        SqlParam::Text(text) => query.bind(text.as_str()),
        SqlParam::Integer(value) => query.bind(*value),
        SqlParam::Float(value) => query.bind(*value),
        SqlParam::Bool(value) => query.bind(i64::from(*value)),
        SqlParam::Json(value) => query.bind(value.to_string()),
    }
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad timestamp '{text}': {e}")))
}

fn parse_json(text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("bad JSON: {e}")))
}

fn parse_id(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("bad id '{text}': {e}")))
}

fn item(row: &SqliteRow) -> Result<Item, StoreError> {
    Ok(Item {
        id: parse_id(row.try_get("id")?)?,
        data: object(parse_json(row.try_get("data")?)?)?,
        created: parse_time(row.try_get("created")?)?,
        changed: parse_time(row.try_get("changed")?)?,
        version: row.try_get("version")?,
    })
}

fn change(row: &SqliteRow) -> Result<Change, StoreError> {
    let before: Option<&str> = row.try_get("before")?;
    Ok(Change {
        seq: row.try_get("seq")?,
        collection: row.try_get("collection")?,
        operation: parse_operation(row.try_get("operation")?)?,
        id: parse_id(row.try_get("item_id")?)?,
        data: parse_json(row.try_get("data")?)?,
        before: before.map(parse_json).transpose()?,
        ts: parse_time(row.try_get("ts")?)?,
    })
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

impl SqliteStore {
    /// `sqlite://path.db`, `sqlite:path.db`, a bare path, or `sqlite::memory:`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let url = if url.starts_with("sqlite:") {
            url.to_owned()
        } else {
            format!("sqlite://{url}")
        };
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let in_memory = url.contains(":memory:");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        // An in-memory database exists once per connection: share the writer.
        let readers = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options.read_only(true))
                .await?
        };
        Ok(Self { writer, readers })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn prepare(&self, collections: &[String]) -> Result<(), StoreError> {
        for collection in collections {
            let table = table_name(collection)?;
            sqlx::raw_sql(&format!(
                "CREATE TABLE IF NOT EXISTS {table} (
                    id TEXT PRIMARY KEY,
                    data TEXT NOT NULL,
                    created TEXT NOT NULL,
                    changed TEXT NOT NULL,
                    version INTEGER NOT NULL
                 );
                 CREATE INDEX IF NOT EXISTS \"c_{collection}_created\" ON {table} (created, id);"
            ))
            .execute(&self.writer)
            .await?;
        }
        Ok(())
    }

    async fn list(&self, collection: &str, query: &ListQuery) -> Result<Page, StoreError> {
        let table = table_name(collection)?;
        let filter = query.filter.as_ref();
        let order = query.order.as_ref();
        let filtered = filter
            .map(|f| format!(" WHERE {}", f.sql))
            .unwrap_or_default();
        let ordered = order.map_or_else(|| "created, id".to_owned(), |o| o.sql.clone());
        let sql = format!(
            "SELECT id, data, created, changed, version FROM {table}{filtered} ORDER BY {ordered} LIMIT ? OFFSET ?"
        );
        let (limit, offset) = page_bounds(query);
        let mut select = sqlx::query(&sql);
        for param in params_of(filter).iter().chain(params_of(order)) {
            select = bind(select, param);
        }
        let rows = select
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.readers)
            .await?;
        let items = rows.iter().map(item).collect::<Result<_, _>>()?;
        let total = if query.count {
            let sql = format!("SELECT count(*) FROM {table}{filtered}");
            let mut count = sqlx::query(&sql);
            for param in params_of(filter) {
                count = bind(count, param);
            }
            Some(count.fetch_one(&self.readers).await?.try_get(0)?)
        } else {
            None
        };
        Ok(Page { items, total })
    }

    async fn get(&self, collection: &str, id: Uuid) -> Result<Option<Item>, StoreError> {
        let sql = format!(
            "SELECT id, data, created, changed, version FROM {} WHERE id = ?",
            table_name(collection)?
        );
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(item).transpose()
    }

    async fn get_many(&self, collection: &str, ids: &[Uuid]) -> Result<Vec<Item>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let sql = format!(
            "SELECT id, data, created, changed, version FROM {} WHERE id IN (SELECT value FROM json_each(?))",
            table_name(collection)?
        );
        let rows = sqlx::query(&sql)
            .bind(serde_json::to_string(&ids).unwrap_or_default())
            .fetch_all(&self.readers)
            .await?;
        rows.iter().map(item).collect()
    }

    async fn create(&self, collection: &str, data: Document) -> Result<Item, StoreError> {
        let table = table_name(collection)?;
        let at = now();
        let created = Item {
            id: Uuid::new_v4(),
            data,
            created: at,
            changed: at,
            version: 1,
        };
        let mut tx = self.writer.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO {table} (id, data, created, changed, version) VALUES (?, ?, ?, ?, 1)"
        ))
        .bind(created.id.to_string())
        .bind(Value::Object(created.data.clone()).to_string())
        .bind(timestamp(&at))
        .bind(timestamp(&at))
        .execute(&mut *tx)
        .await?;
        record(&mut tx, collection, Operation::Create, &created, None).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn update(
        &self,
        collection: &str,
        id: Uuid,
        update: Update<'_>,
    ) -> Result<Item, StoreError> {
        let table = table_name(collection)?;
        // The single writer connection serialises this read-modify-write.
        let mut tx = self.writer.begin().await?;
        let current = current_item(&mut tx, &table, id).await?;
        let data = update(&current).map_err(StoreError::Refused)?;
        let updated = Item {
            id,
            data,
            created: current.created,
            changed: now(),
            version: current.version + 1,
        };
        sqlx::query(&format!(
            "UPDATE {table} SET data = ?, changed = ?, version = ? WHERE id = ?"
        ))
        .bind(Value::Object(updated.data.clone()).to_string())
        .bind(timestamp(&updated.changed))
        .bind(updated.version)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            collection,
            Operation::Update,
            &updated,
            Some(&current),
        )
        .await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn delete(
        &self,
        collection: &str,
        id: Uuid,
        precondition: Precondition<'_>,
    ) -> Result<Item, StoreError> {
        let table = table_name(collection)?;
        let mut tx = self.writer.begin().await?;
        let current = current_item(&mut tx, &table, id).await?;
        precondition(&current).map_err(StoreError::Refused)?;
        sqlx::query(&format!("DELETE FROM {table} WHERE id = ?"))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        record(&mut tx, collection, Operation::Delete, &current, None).await?;
        tx.commit().await?;
        Ok(current)
    }

    async fn sequence_changes(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn changes_after(&self, seq: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, collection, operation, item_id, data, before, ts FROM rthub_changes
             WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(seq)
        .bind(limit)
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(change).collect()
    }

    async fn last_seq(&self) -> Result<i64, StoreError> {
        // The autoincrement counter, not MAX(seq): retention may have deleted the newest rows.
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'rthub_changes'")
                .fetch_optional(&self.readers)
                .await?;
        Ok(seq.unwrap_or(0))
    }

    async fn prune_changes(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM rthub_changes WHERE ts < ?")
            .bind(timestamp(&before))
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.readers).await?;
        Ok(())
    }

    fn change_notifications(&self) -> Option<watch::Receiver<u64>> {
        // One process owns the file: its own writes wake its dispatcher.
        None
    }
}

/// The item as the write's transaction sees it.
async fn current_item(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    table: &str,
    id: Uuid,
) -> Result<Item, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT id, data, created, changed, version FROM {table} WHERE id = ?"
    ))
    .bind(id.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref()
        .map(item)
        .transpose()?
        .ok_or(StoreError::NotFound)
}

async fn record(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    collection: &str,
    operation: Operation,
    item: &Item,
    before: Option<&Item>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO rthub_changes (collection, operation, item_id, data, before, ts) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(collection)
    .bind(operation.as_str())
    .bind(item.id.to_string())
    .bind(item.to_json().to_string())
    .bind(before.map(|b| b.to_json().to_string()))
    .bind(timestamp(&now()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
