//! PostgreSQL: `jsonb` documents, one round trip per write (a data-modifying CTE writes the
//! item and its change record in one statement), optimistic concurrency on `version` for
//! updates and deletes, and `LISTEN rthub_changes` as the wake-up between processes.

use super::{
    object, page_bounds, params_of, parse_operation, table_name, Change, Document, Item, ListQuery,
    Page, Precondition, Store, StoreError, Update,
};
use crate::collections::filter::SqlParam;
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;
use sqlx::postgres::{PgArguments, PgListener, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Row};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// How many times an update or delete retries when another writer changed the item between
/// its read and its write.
const CONFLICT_RETRIES: usize = 8;

pub struct PostgresStore {
    pool: PgPool,
    notifications: watch::Receiver<u64>,
}

fn bind<'q>(
    query: Query<'q, Postgres, PgArguments>,
    param: &'q SqlParam,
) -> Query<'q, Postgres, PgArguments> {
    match param {
        SqlParam::Text(text) => query.bind(text.as_str()),
        SqlParam::Integer(value) => query.bind(*value),
        SqlParam::Float(value) => query.bind(*value),
        SqlParam::Bool(value) => query.bind(*value),
        SqlParam::Json(value) => query.bind(Json(value)),
    }
}

fn item(row: &PgRow) -> Result<Item, StoreError> {
    let Json(data): Json<Value> = row.try_get("data")?;
    Ok(Item {
        id: row.try_get("id")?,
        data: object(data)?,
        created: row.try_get("created")?,
        changed: row.try_get("changed")?,
        version: row.try_get("version")?,
    })
}

fn change(row: &PgRow) -> Result<Change, StoreError> {
    let Json(data): Json<Value> = row.try_get("data")?;
    let before: Option<Json<Value>> = row.try_get("before")?;
    Ok(Change {
        seq: row.try_get("seq")?,
        collection: row.try_get("collection")?,
        operation: parse_operation(row.try_get("operation")?)?,
        id: row.try_get("item_id")?,
        data,
        before: before.map(|Json(v)| v),
        ts: row.try_get("ts")?,
    })
}

/// Now, at the precision the database keeps (so what we return equals what a read returns).
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The advisory lock that keeps collection tables from being created twice at once
/// (`rthub` in ASCII).
const PREPARE_LOCK: i64 = 0x0072_7468_7562;

impl PostgresStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let notifications = listen(&pool).await?;
        Ok(Self {
            pool,
            notifications,
        })
    }
}

/// One connection per process, used only as a wake-up: the reader always reads the log after
/// its last seq, so a lost notification delays nothing past the next one, and a lost
/// connection is followed by a wake-up of its own once it is back.
async fn listen(pool: &PgPool) -> Result<watch::Receiver<u64>, StoreError> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen("rthub_changes").await?;
    let (tx, rx) = watch::channel(0u64);
    tokio::spawn(async move {
        let mut wakeups = 0u64;
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => {}
                // The connection was lost and will be re-established on the next call:
                // notifications in between are gone, so wake the reader to catch up.
                Ok(None) => tracing::warn!("the LISTEN connection was lost; reconnecting"),
                Err(error) => {
                    tracing::warn!(%error, "LISTEN failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            wakeups += 1;
            if tx.send(wakeups).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

#[async_trait]
impl Store for PostgresStore {
    async fn prepare(&self, collections: &[String]) -> Result<(), StoreError> {
        // Several processes starting at once on a new database (the nodes of a cluster) would
        // race in `CREATE TABLE IF NOT EXISTS`, which is not safe concurrently in PostgreSQL;
        // one at a time, under a transaction-scoped advisory lock.
        let mut transaction = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PREPARE_LOCK)
            .execute(&mut *transaction)
            .await?;
        for collection in collections {
            let table = table_name(collection)?;
            let index = |suffix: &str| format!("\"c_{collection}_{suffix}\"");
            let statements = [
                format!(
                    "CREATE TABLE IF NOT EXISTS {table} (
                        id uuid PRIMARY KEY,
                        data jsonb NOT NULL,
                        created timestamptz NOT NULL,
                        changed timestamptz NOT NULL,
                        version bigint NOT NULL
                     )"
                ),
                format!(
                    "CREATE INDEX IF NOT EXISTS {} ON {table} USING gin (data jsonb_path_ops)",
                    index("data")
                ),
                format!(
                    "CREATE INDEX IF NOT EXISTS {} ON {table} (created, id)",
                    index("created")
                ),
            ];
            for statement in &statements {
                sqlx::query(statement).execute(&mut *transaction).await?;
            }
        }
        transaction.commit().await?;
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
        let taken = params_of(filter).len() + params_of(order).len();
        let sql = format!(
            "SELECT id, data, created, changed, version FROM {table}{filtered} ORDER BY {ordered} LIMIT ${} OFFSET ${}",
            taken + 1,
            taken + 2
        );
        let (limit, offset) = page_bounds(query);
        let mut select = sqlx::query(&sql);
        for param in params_of(filter).iter().chain(params_of(order)) {
            select = bind(select, param);
        }
        let rows = select
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        let items = rows.iter().map(item).collect::<Result<_, _>>()?;
        let total = if query.count {
            let sql = format!("SELECT count(*) FROM {table}{filtered}");
            let mut count = sqlx::query(&sql);
            for param in params_of(filter) {
                count = bind(count, param);
            }
            Some(count.fetch_one(&self.pool).await?.try_get(0)?)
        } else {
            None
        };
        Ok(Page { items, total })
    }

    async fn get(&self, collection: &str, id: Uuid) -> Result<Option<Item>, StoreError> {
        let sql = format!(
            "SELECT id, data, created, changed, version FROM {} WHERE id = $1",
            table_name(collection)?
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(item).transpose()
    }

    async fn get_many(&self, collection: &str, ids: &[Uuid]) -> Result<Vec<Item>, StoreError> {
        let sql = format!(
            "SELECT id, data, created, changed, version FROM {} WHERE id = ANY($1)",
            table_name(collection)?
        );
        let rows = sqlx::query(&sql).bind(ids).fetch_all(&self.pool).await?;
        rows.iter().map(item).collect()
    }

    async fn create(&self, collection: &str, data: Document) -> Result<Item, StoreError> {
        let at = now();
        let created = Item {
            id: Uuid::new_v4(),
            data,
            created: at,
            changed: at,
            version: 1,
        };
        let sql = format!(
            "WITH item AS (
                INSERT INTO {} (id, data, created, changed, version) VALUES ($1, $2, $3, $3, 1)
             )
             INSERT INTO rthub_changes (collection, operation, item_id, data, ts)
             VALUES ($4, 'create', $1, $5, $3)",
            table_name(collection)?
        );
        sqlx::query(&sql)
            .bind(created.id)
            .bind(Json(&created.data))
            .bind(at)
            .bind(collection)
            .bind(Json(created.to_json()))
            .execute(&self.pool)
            .await?;
        Ok(created)
    }

    async fn update(
        &self,
        collection: &str,
        id: Uuid,
        update: Update<'_>,
    ) -> Result<Item, StoreError> {
        let sql = format!(
            "WITH item AS (
                UPDATE {} SET data = $3, changed = $4, version = version + 1
                WHERE id = $1 AND version = $2 RETURNING id
             )
             INSERT INTO rthub_changes (collection, operation, item_id, data, before, ts)
             SELECT $5, 'update', id, $6, $7, $4 FROM item",
            table_name(collection)?
        );
        for _ in 0..CONFLICT_RETRIES {
            let current = self
                .get(collection, id)
                .await?
                .ok_or(StoreError::NotFound)?;
            let data = update(&current).map_err(StoreError::Refused)?;
            let updated = Item {
                id,
                data,
                created: current.created,
                changed: now(),
                version: current.version + 1,
            };
            let written = sqlx::query(&sql)
                .bind(id)
                .bind(current.version)
                .bind(Json(&updated.data))
                .bind(updated.changed)
                .bind(collection)
                .bind(Json(updated.to_json()))
                .bind(Json(current.to_json()))
                .execute(&self.pool)
                .await?;
            if written.rows_affected() == 1 {
                return Ok(updated);
            }
            // Another writer got there first (or deleted it): read again.
        }
        Err(StoreError::Database(sqlx::Error::Protocol(
            "the item kept changing while being updated".into(),
        )))
    }

    async fn delete(
        &self,
        collection: &str,
        id: Uuid,
        precondition: Precondition<'_>,
    ) -> Result<Item, StoreError> {
        let sql = format!(
            "WITH item AS (DELETE FROM {} WHERE id = $1 AND version = $2 RETURNING id)
             INSERT INTO rthub_changes (collection, operation, item_id, data, ts)
             SELECT $3, 'delete', id, $4, $5 FROM item",
            table_name(collection)?
        );
        for _ in 0..CONFLICT_RETRIES {
            let current = self
                .get(collection, id)
                .await?
                .ok_or(StoreError::NotFound)?;
            precondition(&current).map_err(StoreError::Refused)?;
            let written = sqlx::query(&sql)
                .bind(id)
                .bind(current.version)
                .bind(collection)
                .bind(Json(current.to_json()))
                .bind(now())
                .execute(&self.pool)
                .await?;
            if written.rows_affected() == 1 {
                return Ok(current);
            }
        }
        Err(StoreError::Database(sqlx::Error::Protocol(
            "the item kept changing while being deleted".into(),
        )))
    }

    async fn sequence_changes(&self) -> Result<u64, StoreError> {
        let assigned: i64 = sqlx::query_scalar("SELECT rthub_sequence_changes(1000)")
            .fetch_one(&self.pool)
            .await?;
        Ok(assigned.max(0) as u64)
    }

    async fn changes_after(&self, seq: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, collection, operation, item_id, data, before, ts FROM rthub_changes
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(change).collect()
    }

    async fn last_seq(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT last_seq FROM rthub_change_counter")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn prune_changes(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        // Only numbered rows: an unnumbered one has not been delivered yet.
        let done = sqlx::query("DELETE FROM rthub_changes WHERE ts < $1 AND seq IS NOT NULL")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn change_notifications(&self) -> Option<watch::Receiver<u64>> {
        Some(self.notifications.clone())
    }
}
