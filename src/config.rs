//! Configuration: command line, then `RTHUB_*` environment, then the TOML file, then defaults
//! (flags win over the environment, which wins over the file).

use crate::auth::{ApiKey, AuthSettings, JwtKey, KeyRole, ServiceAccount};
use clap::{Args, Parser, ValueEnum};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A self-hosted realtime backend: channels over ASP.NET Core SignalR.
///
/// Every setting can also be given in the TOML file named by --config, or as an RTHUB_*
/// environment variable.
#[derive(Debug, Parser, Default)]
#[command(name = "rthub", version, about, long_about = None)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "RTHUB_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080]; port 0 picks a free port.
    #[arg(long, env = "RTHUB_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Database: `postgres://…`, or `sqlite://FILE` [default: sqlite://rthub.db].
    #[arg(long, env = "DATABASE_URL")]
    pub database: Option<String>,
    /// Schema file (collections, properties, access rules) [default: the example schema].
    #[arg(long, env = "RTHUB_SCHEMA")]
    pub schema: Option<PathBuf>,
    /// Seconds the change log keeps changes for StreamChanges' replay [default: 86400].
    #[arg(long, env = "RTHUB_CHANGE_RETENTION_SECS")]
    pub change_retention_secs: Option<u64>,
    /// Largest request body on writes, in bytes [default: 1048576].
    #[arg(long, env = "RTHUB_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Channel prefix: channel `room` is the group `<api-name>:room` [default: app].
    #[arg(long, env = "RTHUB_API_NAME")]
    pub api_name: Option<String>,
    /// Base URL handed to clients, when rthub is behind a proxy (e.g. https://rt.example.com)
    /// [default: from the request's Host].
    #[arg(long, env = "RTHUB_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Browser origins allowed to call rthub with credentials (comma-separated).
    #[arg(long, env = "RTHUB_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Option<Vec<String>>,
    /// HS256 secret for users' JWTs (at least 32 bytes).
    #[arg(long, env = "RTHUB_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// RS256 public key (PEM file) for users' JWTs, instead of a secret.
    #[arg(long, env = "RTHUB_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<PathBuf>,
    /// Required `iss` of users' JWTs.
    #[arg(long, env = "RTHUB_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` of users' JWTs.
    #[arg(long, env = "RTHUB_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// A server API key (more keys, client keys and service accounts: in the config file).
    #[arg(long, env = "RTHUB_SERVER_KEY", hide_env_values = true)]
    pub server_key: Option<String>,
    /// Log format [default: text]. The filter is RUST_LOG (default `info`).
    #[arg(long, env = "RTHUB_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Redis URL that joins this process to a cluster (`[cluster] redis`); none: alone.
    #[arg(long, env = "RTHUB_REDIS", hide_env_values = true)]
    pub redis: Option<String>,
    #[command(flatten)]
    pub signalr: SignalrArgs,
}

#[derive(Debug, Args, Default)]
pub struct SignalrArgs {
    /// Seconds between server pings [default: 15].
    #[arg(
        long = "signalr-keep-alive-secs",
        env = "RTHUB_SIGNALR_KEEP_ALIVE_SECS"
    )]
    pub keep_alive_secs: Option<u64>,
    /// Seconds of client silence (after its first ping) before it is closed [default: 30].
    #[arg(
        long = "signalr-client-timeout-secs",
        env = "RTHUB_SIGNALR_CLIENT_TIMEOUT_SECS"
    )]
    pub client_timeout_secs: Option<u64>,
    /// Seconds a client has to complete the handshake [default: 15].
    #[arg(
        long = "signalr-handshake-timeout-secs",
        env = "RTHUB_SIGNALR_HANDSHAKE_TIMEOUT_SECS"
    )]
    pub handshake_timeout_secs: Option<u64>,
    /// Largest inbound hub message in bytes [default: 32768].
    #[arg(
        long = "signalr-max-message-bytes",
        env = "RTHUB_SIGNALR_MAX_MESSAGE_BYTES"
    )]
    pub max_message_bytes: Option<usize>,
    /// Seconds a negotiated connection may stay unused [default: 15].
    #[arg(
        long = "signalr-disconnect-timeout-secs",
        env = "RTHUB_SIGNALR_DISCONNECT_TIMEOUT_SECS"
    )]
    pub disconnect_timeout_secs: Option<u64>,
    /// Seconds a long poll waits for data before answering empty [default: 90].
    #[arg(long = "signalr-long-poll-secs", env = "RTHUB_SIGNALR_LONG_POLL_SECS")]
    pub long_poll_secs: Option<u64>,
    /// Honour clients that ask for stateful reconnect [default: true].
    #[arg(
        long = "signalr-stateful-reconnect",
        env = "RTHUB_SIGNALR_STATEFUL_RECONNECT"
    )]
    pub stateful_reconnect: Option<bool>,
    /// Bytes that may wait for one slow connection before it is closed [default: 1048576].
    #[arg(
        long = "signalr-max-outbound-queue-bytes",
        env = "RTHUB_SIGNALR_MAX_OUTBOUND_QUEUE_BYTES"
    )]
    pub max_outbound_queue_bytes: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The TOML file. Unknown keys are errors, so a misspelt (or not yet supported) setting is
/// never silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    database: Option<String>,
    schema: Option<PathBuf>,
    change_retention_secs: Option<u64>,
    max_body_bytes: Option<usize>,
    api_name: Option<String>,
    public_url: Option<String>,
    cors_origins: Option<Vec<String>>,
    log_format: Option<LogFormat>,
    metrics_token: Option<String>,
    #[serde(default)]
    auth: FileAuth,
    #[serde(default)]
    api_keys: Vec<ApiKey>,
    #[serde(default)]
    service_accounts: Vec<ServiceAccount>,
    #[serde(default)]
    signalr: FileSignalr,
    #[serde(default)]
    realtime: crate::realtime::config::FileRealtime,
    #[serde(default)]
    webpubsub: crate::webpubsub::config::FileWebPubSub,
    #[serde(default)]
    cluster: crate::cluster::config::FileCluster,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAuth {
    jwt_secret: Option<String>,
    jwt_public_key: Option<PathBuf>,
    jwt_issuer: Option<String>,
    jwt_audience: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSignalr {
    keep_alive_secs: Option<u64>,
    client_timeout_secs: Option<u64>,
    handshake_timeout_secs: Option<u64>,
    max_message_bytes: Option<usize>,
    disconnect_timeout_secs: Option<u64>,
    long_poll_secs: Option<u64>,
    stateful_reconnect: Option<bool>,
    max_outbound_queue_bytes: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid setting {setting}: {reason}")]
    Invalid {
        setting: &'static str,
        reason: String,
    },
}

/// A setting that must be at least 1 (counts, sizes, intervals).
pub(crate) fn positive(value: u64, setting: &'static str) -> Result<u64, ConfigError> {
    if value == 0 {
        Err(ConfigError::Invalid {
            setting,
            reason: "must be at least 1".into(),
        })
    } else {
        Ok(value)
    }
}

/// The settings in force.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub auth: AuthSettings,
    /// No credentials were configured: a development server key was made up (and printed).
    pub development_key: Option<String>,
    pub database: String,
    /// `None`: the development example schema.
    pub schema: Option<PathBuf>,
    pub change_retention: Duration,
    pub max_body_bytes: usize,
    pub api_name: String,
    pub public_url: Option<String>,
    pub cors_origins: Vec<String>,
    pub log_format: LogFormat,
    pub signalr: SignalrConfig,
    pub realtime: crate::realtime::RealtimeConfig,
    pub webpubsub: crate::webpubsub::WebPubSubConfig,
    /// `None`: this process runs alone.
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// A bearer token that may read `/metrics` on a non-loopback listener.
    pub metrics_token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SignalrConfig {
    pub keep_alive: Duration,
    pub client_timeout: Duration,
    pub handshake_timeout: Duration,
    pub max_message_bytes: usize,
    pub disconnect_timeout: Duration,
    pub long_poll: Duration,
    pub stateful_reconnect: bool,
    pub max_outbound_queue_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self::resolve(Cli::default(), FileConfig::default()).expect("the defaults are valid")
    }
}

impl Config {
    pub fn load(cli: Cli) -> Result<Self, ConfigError> {
        let file = match &cli.config {
            None => FileConfig::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse {
                    path: path.clone(),
                    source,
                })?
            }
        };
        Self::resolve(cli, file)
    }

    /// The config file's text read as `load` reads it, with no flags: the fuzz target's way in,
    /// so it needs no file on disk.
    #[doc(hidden)]
    pub fn from_file_text(text: &str) -> Result<Self, ConfigError> {
        let file = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: PathBuf::new(),
            source,
        })?;
        Self::resolve(Cli::default(), file)
    }

    fn resolve(cli: Cli, file: FileConfig) -> Result<Self, ConfigError> {
        let secs = |flag: Option<u64>, file: Option<u64>, default: u64, setting| {
            let value = flag.or(file).unwrap_or(default);
            if value == 0 {
                return Err(ConfigError::Invalid {
                    setting,
                    reason: "must be at least 1 second".into(),
                });
            }
            Ok(Duration::from_secs(value))
        };
        let (s, f) = (cli.signalr, file.signalr);
        let signalr = SignalrConfig {
            keep_alive: secs(
                s.keep_alive_secs,
                f.keep_alive_secs,
                15,
                "signalr.keep_alive_secs",
            )?,
            client_timeout: secs(
                s.client_timeout_secs,
                f.client_timeout_secs,
                30,
                "signalr.client_timeout_secs",
            )?,
            handshake_timeout: secs(
                s.handshake_timeout_secs,
                f.handshake_timeout_secs,
                15,
                "signalr.handshake_timeout_secs",
            )?,
            disconnect_timeout: secs(
                s.disconnect_timeout_secs,
                f.disconnect_timeout_secs,
                15,
                "signalr.disconnect_timeout_secs",
            )?,
            long_poll: secs(
                s.long_poll_secs,
                f.long_poll_secs,
                90,
                "signalr.long_poll_secs",
            )?,
            stateful_reconnect: s
                .stateful_reconnect
                .or(f.stateful_reconnect)
                .unwrap_or(true),
            max_message_bytes: s
                .max_message_bytes
                .or(f.max_message_bytes)
                .unwrap_or(32 * 1024),
            max_outbound_queue_bytes: s
                .max_outbound_queue_bytes
                .or(f.max_outbound_queue_bytes)
                .unwrap_or(1024 * 1024),
        };
        if signalr.max_message_bytes < 64 {
            return Err(ConfigError::Invalid {
                setting: "signalr.max_message_bytes",
                reason: "must be at least 64 bytes".into(),
            });
        }
        let api_name = cli
            .api_name
            .or(file.api_name)
            .unwrap_or_else(|| "app".into());
        let valid_api_name = !api_name.is_empty()
            && api_name.len() <= 64
            && api_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid_api_name {
            return Err(ConfigError::Invalid {
                setting: "api_name",
                reason: "1-64 letters, digits, '-', '_' or '.'".into(),
            });
        }
        let jwt = match (
            cli.jwt_secret.or(file.auth.jwt_secret),
            cli.jwt_public_key.or(file.auth.jwt_public_key),
        ) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    setting: "auth",
                    reason: "set jwt_secret or jwt_public_key, not both".into(),
                })
            }
            (Some(secret), None) => Some(JwtKey::Hs256(secret.into_bytes())),
            (None, Some(path)) => Some(JwtKey::Rs256(
                std::fs::read(&path).map_err(|source| ConfigError::Read { path, source })?,
            )),
            (None, None) => None,
        };
        let mut api_keys = file.api_keys;
        if let Some(key) = cli.server_key {
            api_keys.push(ApiKey {
                key,
                role: KeyRole::Server,
                realtime: vec!["*".into()],
            });
        }
        // A server with no way to authenticate anyone gets a development key, so private
        // channels and server-only collections can be tried at once.
        let development_key =
            (jwt.is_none() && api_keys.is_empty() && file.service_accounts.is_empty()).then(|| {
                let key = format!("dev-{}", negotiate::RandomId::generate().as_str());
                api_keys.push(ApiKey {
                    key: key.clone(),
                    role: KeyRole::Server,
                    realtime: vec!["*".into()],
                });
                key
            });
        for key in &api_keys {
            if key.key.len() < 16 {
                return Err(ConfigError::Invalid {
                    setting: "api_keys",
                    reason: "every key must be at least 16 characters".into(),
                });
            }
        }
        let server_key = api_keys
            .iter()
            .find(|k| k.role == KeyRole::Server)
            .map(|k| k.key.clone());
        let auth = AuthSettings {
            jwt,
            issuer: cli.jwt_issuer.or(file.auth.jwt_issuer),
            audience: cli.jwt_audience.or(file.auth.jwt_audience),
            api_keys,
            service_accounts: file.service_accounts,
        };
        let change_retention = secs(
            cli.change_retention_secs,
            file.change_retention_secs,
            86_400,
            "change_retention_secs",
        )?;
        Ok(Self {
            auth,
            development_key,
            database: cli
                .database
                .or(file.database)
                .unwrap_or_else(|| "sqlite://rthub.db".into()),
            schema: cli.schema.or(file.schema),
            change_retention,
            max_body_bytes: cli
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(1024 * 1024),
            listen: cli
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            api_name,
            public_url: cli
                .public_url
                .or(file.public_url)
                .map(|url| url.trim_end_matches('/').to_owned()),
            cors_origins: cli.cors_origins.or(file.cors_origins).unwrap_or_default(),
            log_format: cli.log_format.or(file.log_format).unwrap_or_default(),
            signalr,
            realtime: crate::realtime::RealtimeConfig::resolve(file.realtime)?,
            webpubsub: crate::webpubsub::WebPubSubConfig::resolve(file.webpubsub)?
                .with_default_key(server_key.as_deref()),
            metrics_token: file.metrics_token.filter(|t| !t.is_empty()),
            cluster: crate::cluster::ClusterConfig::resolve(file.cluster, cli.redis)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> FileConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn defaults_mirror_asp_net_core() {
        let config = Config::default();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.api_name, "app");
        assert_eq!(config.database, "sqlite://rthub.db");
        assert_eq!(config.schema, None);
        assert_eq!(config.signalr.keep_alive, Duration::from_secs(15));
        assert_eq!(config.signalr.client_timeout, Duration::from_secs(30));
        assert_eq!(config.signalr.handshake_timeout, Duration::from_secs(15));
        assert_eq!(config.signalr.max_message_bytes, 32768);
        assert_eq!(config.signalr.disconnect_timeout, Duration::from_secs(15));
        assert_eq!(config.signalr.long_poll, Duration::from_secs(90));
        assert!(config.signalr.stateful_reconnect);
    }

    #[test]
    fn flags_win_over_the_file() {
        let cli = Cli::parse_from([
            "rthub",
            "--listen",
            "127.0.0.1:9000",
            "--signalr-keep-alive-secs",
            "5",
        ]);
        let config = Config::resolve(
            cli,
            file("listen = \"127.0.0.1:7000\"\napi_name = \"shop\"\n[signalr]\nkeep_alive_secs = 10\nclient_timeout_secs = 20\n"),
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.api_name, "shop");
        assert_eq!(config.signalr.keep_alive, Duration::from_secs(5));
        assert_eq!(config.signalr.client_timeout, Duration::from_secs(20));
    }

    #[test]
    fn keys_and_accounts_come_from_the_file_and_a_dev_key_only_without_them() {
        let config = Config::resolve(
            Cli::default(),
            file("[[api_keys]]\nkey = \"0123456789abcdef-server\"\nrole = \"server\"\n[[service_accounts]]\nclient_id = \"backend\"\nclient_secret = \"s3cret\"\n[auth]\njwt_secret = \"0123456789abcdef0123456789abcdef\"\njwt_issuer = \"iss\"\n"),
        )
        .unwrap();
        assert_eq!(config.auth.api_keys.len(), 1);
        assert_eq!(config.auth.service_accounts.len(), 1);
        assert_eq!(config.auth.issuer.as_deref(), Some("iss"));
        assert!(config.development_key.is_none());
        let bare = Config::default();
        assert!(bare
            .development_key
            .as_deref()
            .is_some_and(|k| k.starts_with("dev-")));
        assert_eq!(bare.auth.api_keys.len(), 1);
        assert!(
            toml::from_str::<FileConfig>("[[api_keys]]\nkey = \"k\"\nrole = \"admin\"").is_err()
        );
        let short = file("[[api_keys]]\nkey = \"short\"\nrole = \"client\"");
        assert!(Config::resolve(Cli::default(), short).is_err());
    }

    /// The README's configuration example is a file this server accepts, as written.
    #[test]
    fn the_readme_configuration_example_is_accepted() {
        let readme = include_str!("../README.md");
        let blocks: Vec<&str> = readme
            .split("```toml\n")
            .skip(1)
            .filter_map(|rest| rest.split_once("```").map(|(block, _)| block))
            .collect();
        assert!(!blocks.is_empty(), "the README shows a configuration");
        for block in blocks {
            let parsed: FileConfig = toml::from_str(block).unwrap();
            Config::resolve(Cli::default(), parsed).unwrap();
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(toml::from_str::<FileConfig>("listn = \"x\"").is_err());
        assert!(toml::from_str::<FileConfig>("[signalr]\nkeepalive = 1").is_err());
        let zero = Cli::parse_from(["rthub", "--signalr-keep-alive-secs", "0"]);
        assert!(matches!(
            Config::resolve(zero, FileConfig::default()),
            Err(ConfigError::Invalid {
                setting: "signalr.keep_alive_secs",
                ..
            })
        ));
        let bad_name = Cli::parse_from(["rthub", "--api-name", "a:b"]);
        assert!(Config::resolve(bad_name, FileConfig::default()).is_err());
    }
}
