//! Collections: the schema, the filter language, the store, the change feed, and the REST and
//! hub surfaces over them.

pub mod feed;
pub mod filter;
pub mod hub_methods;
pub mod listen;
pub mod permit;
pub mod rest;
pub mod schema;
pub mod select;
pub mod service;
pub mod store;
pub mod stream;
