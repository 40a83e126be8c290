//! The store with every call timed into `rthub_db_query_duration_seconds{operation}`.

use crate::collections::store::{
    Change, Document, Item, ListQuery, Page, Precondition, SharedStore, Store, StoreError, Update,
};
use chrono::{DateTime, Utc};
use prometheus::HistogramVec;
use std::future::Future;
use uuid::Uuid;

pub struct TimedStore {
    inner: SharedStore,
    duration: HistogramVec,
}

impl TimedStore {
    pub fn wrap(inner: SharedStore, duration: HistogramVec) -> SharedStore {
        std::sync::Arc::new(Self { inner, duration })
    }

    async fn timed<T>(&self, operation: &str, call: impl Future<Output = T>) -> T {
        let timer = self.duration.with_label_values(&[operation]).start_timer();
        let result = call.await;
        timer.observe_duration();
        result
    }
}

#[async_trait::async_trait]
impl Store for TimedStore {
    async fn prepare(&self, collections: &[String]) -> Result<(), StoreError> {
        self.timed("prepare", self.inner.prepare(collections)).await
    }
    async fn list(&self, collection: &str, query: &ListQuery) -> Result<Page, StoreError> {
        self.timed("list", self.inner.list(collection, query)).await
    }
    async fn get(&self, collection: &str, id: Uuid) -> Result<Option<Item>, StoreError> {
        self.timed("get", self.inner.get(collection, id)).await
    }
    async fn get_many(&self, collection: &str, ids: &[Uuid]) -> Result<Vec<Item>, StoreError> {
        self.timed("get_many", self.inner.get_many(collection, ids))
            .await
    }
    async fn create(&self, collection: &str, data: Document) -> Result<Item, StoreError> {
        self.timed("create", self.inner.create(collection, data))
            .await
    }
    async fn update(
        &self,
        collection: &str,
        id: Uuid,
        update: Update<'_>,
    ) -> Result<Item, StoreError> {
        self.timed("update", self.inner.update(collection, id, update))
            .await
    }
    async fn delete(
        &self,
        collection: &str,
        id: Uuid,
        precondition: Precondition<'_>,
    ) -> Result<Item, StoreError> {
        self.timed("delete", self.inner.delete(collection, id, precondition))
            .await
    }
    async fn sequence_changes(&self) -> Result<u64, StoreError> {
        self.timed("sequence_changes", self.inner.sequence_changes())
            .await
    }
    async fn changes_after(&self, seq: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        self.timed("changes_after", self.inner.changes_after(seq, limit))
            .await
    }
    async fn last_seq(&self) -> Result<i64, StoreError> {
        self.timed("last_seq", self.inner.last_seq()).await
    }
    async fn prune_changes(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.timed("prune_changes", self.inner.prune_changes(before))
            .await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.timed("ping", self.inner.ping()).await
    }
    fn change_notifications(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.inner.change_notifications()
    }
}
