//! Items and their change log in a relational database, behind one trait: PostgreSQL for
//! production, SQLite as the embedded default.
//!
//! Table layout: one table per collection (`c_<name>`), created from the schema at start-up,
//! with the system fields as real columns (`id`, `created`, `changed`, `version`) and the
//! document in `data` (`jsonb` on PostgreSQL, with a `jsonb_path_ops` GIN index). A table per
//! collection keeps each collection's rows, statistics and indexes to itself: an equality
//! filter becomes `data @> '{"field": value}'`, answered by that collection's GIN index without
//! touching other collections, and paging by `created` walks a per-collection b-tree. Every
//! write and its change record commit in one transaction (see the migrations for how `seq`
//! is given in commit order).

mod postgres;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use crate::collections::filter::{Predicate, SqlParam};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use std::sync::Arc;
use uuid::Uuid;

pub type Document = Map<String, Value>;

/// A stored item: its document and system fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: Uuid,
    pub data: Document,
    pub created: DateTime<Utc>,
    pub changed: DateTime<Utc>,
    pub version: i64,
}

pub fn timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl Item {
    /// The item as clients see it: the document plus `id`, `_created`, `_changed`, `_version`.
    pub fn to_json(&self) -> Value {
        let mut out = Map::with_capacity(self.data.len() + 4);
        out.insert("id".into(), Value::String(self.id.to_string()));
        out.extend(self.data.iter().map(|(k, v)| (k.clone(), v.clone())));
        out.insert("_created".into(), Value::String(timestamp(&self.created)));
        out.insert("_changed".into(), Value::String(timestamp(&self.changed)));
        out.insert("_version".into(), Value::from(self.version));
        Value::Object(out)
    }
}

/// What a change did; the router's type, which every protocol's encoder reads.
pub use router::Operation;

/// An operation as the change log stores it.
pub(super) fn parse_operation(text: &str) -> Result<Operation, StoreError> {
    match text {
        "create" => Ok(Operation::Create),
        "update" => Ok(Operation::Update),
        "delete" => Ok(Operation::Delete),
        other => Err(StoreError::Corrupt(format!("unknown operation '{other}'"))),
    }
}

/// One committed write, as the change log holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub seq: i64,
    pub collection: String,
    pub operation: Operation,
    pub id: Uuid,
    /// The item after the write; its last state on delete.
    pub data: Value,
    /// The item before an update (lookup filters match before or after the write).
    pub before: Option<Value>,
    pub ts: DateTime<Utc>,
}

/// A list request, compiled: the filter and order as SQL with bound parameters.
#[derive(Debug, Default)]
pub struct ListQuery {
    pub filter: Option<Predicate>,
    pub order: Option<Predicate>,
    /// 1-based.
    pub page_no: u32,
    pub page_size: u32,
    pub count: bool,
}

#[derive(Debug)]
pub struct Page {
    pub items: Vec<Item>,
    /// Items matching the filter on all pages, when asked for.
    pub total: Option<i64>,
}

/// A write refused by the caller's check of the current item (validation, If-Match).
#[derive(Debug, Clone, PartialEq)]
pub enum Refused {
    Invalid(Vec<crate::collections::schema::FieldError>),
    VersionMismatch { current: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("the write was refused")]
    Refused(Refused),
    #[error("collection name '{0}' is too long for the database")]
    NameTooLong(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Decides the new document from the current item inside the write's transaction (merge for
/// PATCH, validation, If-Match).
pub type Update<'a> = &'a (dyn Fn(&Item) -> Result<Document, Refused> + Send + Sync);

/// Checks the current item before a delete (If-Match).
pub type Precondition<'a> = &'a (dyn Fn(&Item) -> Result<(), Refused> + Send + Sync);

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Create what the schema's collections need (idempotent).
    async fn prepare(&self, collections: &[String]) -> Result<(), StoreError>;
    async fn list(&self, collection: &str, query: &ListQuery) -> Result<Page, StoreError>;
    async fn get(&self, collection: &str, id: Uuid) -> Result<Option<Item>, StoreError>;
    async fn get_many(&self, collection: &str, ids: &[Uuid]) -> Result<Vec<Item>, StoreError>;
    async fn create(&self, collection: &str, data: Document) -> Result<Item, StoreError>;
    async fn update(
        &self,
        collection: &str,
        id: Uuid,
        update: Update<'_>,
    ) -> Result<Item, StoreError>;
    async fn delete(
        &self,
        collection: &str,
        id: Uuid,
        precondition: Precondition<'_>,
    ) -> Result<Item, StoreError>;
    /// Give committed changes their `seq` (PostgreSQL); a no-op where commit order is the
    /// insert order (SQLite).
    async fn sequence_changes(&self) -> Result<u64, StoreError>;
    /// Numbered changes after `seq`, oldest first.
    async fn changes_after(&self, seq: i64, limit: i64) -> Result<Vec<Change>, StoreError>;
    /// The highest numbered seq (0 when none).
    async fn last_seq(&self) -> Result<i64, StoreError>;
    /// Delete changes older than `before` (retention).
    async fn prune_changes(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Whether the database answers (`/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Resolves after a write may have produced new changes in this database from another
    /// process (PostgreSQL LISTEN); never resolves where there are no other processes.
    fn change_notifications(&self) -> Option<tokio::sync::watch::Receiver<u64>>;
}

pub type SharedStore = Arc<dyn Store>;

/// Open the store for a database URL: `postgres://…` or `sqlite://…` (a file, created if
/// missing).
pub async fn open(url: &str) -> Result<SharedStore, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        Ok(Arc::new(SqliteStore::open(url).await?))
    }
}

/// The table of a collection. Names are checked by the schema (letters, digits, `-`, `_`), so
/// quoting is enough; PostgreSQL truncates identifiers past 63 bytes, which would merge tables.
fn table_name(collection: &str) -> Result<String, StoreError> {
    if collection.len() > 60
        || !collection
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(StoreError::NameTooLong(collection.to_owned()));
    }
    Ok(format!("\"c_{collection}\""))
}

fn params_of(predicate: Option<&Predicate>) -> &[SqlParam] {
    predicate.map_or(&[], |p| p.params.as_slice())
}

fn page_bounds(query: &ListQuery) -> (i64, i64) {
    let size = i64::from(query.page_size.max(1));
    let offset = i64::from(query.page_no.max(1) - 1) * size;
    (size, offset)
}

fn object(value: Value) -> Result<Document, StoreError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(StoreError::Corrupt(format!(
            "a document is not an object: {other}"
        ))),
    }
}
