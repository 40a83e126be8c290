//! rthub: a self-hosted realtime backend. Clients talk to each other through channels over
//! ASP.NET Core SignalR; the `hub` and `negotiate` crates carry the protocol.

pub mod api_error;
pub mod app;
pub mod auth;
pub mod channels;
pub mod cluster;
pub mod collections;
pub mod config;
pub mod console;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod openapi;
pub mod realtime;
pub mod server;
pub mod webpubsub;

pub use config::{Cli, Config};
pub use server::{RunningServer, ServerError};
