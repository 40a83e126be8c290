//! `select=a,b,customer.name`: which fields of an item a response shows. A plain name keeps that
//! field; a dotted path expands a lookup to the target item's named fields (one level).
//!
//! Expanding a lookup reads the target collection, so it needs the caller's GET right there:
//! without it the request is refused (401 without credentials, 403 with them) rather than
//! answered with the bare id, so that a client never mistakes a refused expansion for a lookup
//! that points nowhere. The same rule holds for lists and single items.

use super::schema::{Collection, Method};
use super::service::Collections;
use crate::api_error::ApiError;
use negotiate::Identity;
use serde_json::{Map, Value};
use std::collections::HashMap;
use uuid::Uuid;

/// A parsed `select`, checked against the collection and the caller's rights.
pub struct Selection<'a> {
    plain: Vec<&'a str>,
    /// Lookup property → (target collection, the target's fields), in the order asked.
    expanded: Vec<(&'a str, &'a str, Vec<&'a str>)>,
}

impl<'a> Selection<'a> {
    /// Parse `select` for `collection`; every lookup it expands must be readable by `caller`.
    pub fn parse(
        collections: &Collections,
        collection: &'a Collection,
        select: &'a str,
        caller: &Identity,
    ) -> Result<Self, ApiError> {
        let lookups: HashMap<&str, &str> = collection.lookups().collect();
        let mut selection = Selection {
            plain: Vec::new(),
            expanded: Vec::new(),
        };
        for field in select.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            let Some((lookup, inner)) = field.split_once('.') else {
                selection.plain.push(field);
                continue;
            };
            if inner.contains('.') {
                return Err(ApiError::bad_request(format!(
                    "select: '{field}' goes deeper than one lookup."
                )));
            }
            let Some((lookup, target)) = lookups.get_key_value(lookup) else {
                return Err(ApiError::bad_request(format!(
                    "select: '{lookup}' is not a lookup property of '{}'.",
                    collection.name
                )));
            };
            match selection.expanded.iter_mut().find(|(l, _, _)| l == lookup) {
                Some((_, _, fields)) => fields.push(inner),
                None => selection.expanded.push((lookup, target, vec![inner])),
            }
        }
        for (lookup, target, _) in &selection.expanded {
            let target = collections.collection(target)?;
            collections
                .authorize(target, Method::Get, caller)
                .map_err(|refused| ApiError {
                    message: format!(
                        "select: expanding '{lookup}' reads '{}': {}",
                        target.name, refused.message
                    ),
                    ..refused
                })?;
        }
        Ok(selection)
    }

    /// The selected view of each item: `id`, the plain fields, the expanded lookups (one query
    /// per lookup property for all the items).
    pub async fn apply(
        &self,
        collections: &Collections,
        items: Vec<Value>,
    ) -> Result<Vec<Value>, ApiError> {
        let mut targets: HashMap<&str, HashMap<Uuid, Value>> = HashMap::new();
        for (lookup, target, _) in &self.expanded {
            let ids: Vec<Uuid> = items
                .iter()
                .filter_map(|item| item.get(*lookup)?.as_str()?.parse().ok())
                .collect();
            let found = collections.store.get_many(target, &ids).await?;
            targets.insert(lookup, found.iter().map(|t| (t.id, t.to_json())).collect());
        }
        Ok(items
            .into_iter()
            .map(|item| self.view(&item, &targets))
            .collect())
    }

    fn view(&self, item: &Value, targets: &HashMap<&str, HashMap<Uuid, Value>>) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), item["id"].clone());
        for field in &self.plain {
            if let Some(value) = item.get(*field) {
                out.insert((*field).to_owned(), value.clone());
            }
        }
        for (lookup, _, fields) in &self.expanded {
            let target = item
                .get(*lookup)
                .and_then(Value::as_str)
                .and_then(|id| id.parse::<Uuid>().ok())
                .and_then(|id| targets.get(lookup)?.get(&id));
            let value = match target {
                // A lookup whose target is gone (or never was) stays what it holds.
                None => item.get(*lookup).cloned().unwrap_or(Value::Null),
                Some(target) => {
                    let mut picked = Map::new();
                    picked.insert("id".into(), target["id"].clone());
                    for field in fields {
                        if let Some(value) = target.get(*field) {
                            picked.insert((*field).to_owned(), value.clone());
                        }
                    }
                    Value::Object(picked)
                }
            };
            out.insert((*lookup).to_owned(), value);
        }
        Value::Object(out)
    }
}
