//! Abuse protection (CloudEvents webhook spec, section 4): before sending the handler any
//! event, ask it with `OPTIONS` and `WebHook-Request-Origin: <our host>` whether it takes
//! deliveries from us; it must answer 2xx with `WebHook-Allowed-Origin: *` or our host. As the
//! service does: the first event waits for the answer, an allowed handler is asked again each
//! minute in the background (events go on meanwhile), and a handler that refused or could not
//! be reached is asked again, before the next event, after 1 s doubling to a minute.

use super::cloudevent::AWPS_VERSION;
use super::warnings::{Kind, Warnings};
use parking_lot::Mutex;
use reqwest::{Method, StatusCode, Url};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RECHECK_ALLOWED: Duration = Duration::from_secs(60);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);
/// The service's validation timeout; a handler slower than this to say yes is taken as no.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy)]
struct Known {
    allowed: bool,
    recheck_at: Instant,
    /// The wait after a failure, doubled by each further one.
    retry: Duration,
}

pub struct Validator {
    url: Url,
    origin: String,
    known: Mutex<Option<Known>>,
    /// Held while a check blocks events, so that concurrent first events send one `OPTIONS`.
    checking: tokio::sync::Mutex<()>,
    refreshing: AtomicBool,
}

impl Validator {
    pub fn new(url: Url, origin: String) -> Self {
        Self {
            url,
            origin,
            known: Mutex::new(None),
            checking: tokio::sync::Mutex::new(()),
            refreshing: AtomicBool::new(false),
        }
    }

    /// Whether events may go to the handler now.
    pub async fn allowed(
        self: &Arc<Self>,
        client: &reqwest::Client,
        warnings: &Arc<Warnings>,
    ) -> bool {
        let now = Instant::now();
        match *self.known.lock() {
            Some(known) if now < known.recheck_at => return known.allowed,
            Some(known) if known.allowed => {
                // Stale yes: keep delivering while one background check runs.
                if !self.refreshing.swap(true, Ordering::AcqRel) {
                    let this = self.clone();
                    let client = client.clone();
                    let warnings = warnings.clone();
                    tokio::spawn(async move {
                        this.check(&client, &warnings).await;
                        this.refreshing.store(false, Ordering::Release);
                    });
                }
                return true;
            }
            _ => {}
        }
        let _one = self.checking.lock().await;
        // Someone else may have just checked while this one waited.
        if let Some(known) = *self.known.lock() {
            if Instant::now() < known.recheck_at {
                return known.allowed;
            }
        }
        self.check(client, warnings).await
    }

    async fn check(&self, client: &reqwest::Client, warnings: &Warnings) -> bool {
        let verdict = match self.ask(client, Method::OPTIONS).await {
            // A handler that only knows GET (the service tries it after a 404 too).
            Ok((StatusCode::NOT_FOUND, _)) => self.ask(client, Method::GET).await,
            other => other,
        };
        let allowed = match verdict {
            Ok((_, true)) => true,
            Ok((status, false)) => {
                warnings.warn(
                    Kind::NotAllowed,
                    None,
                    &format!(
                        "the event handler {} does not allow deliveries from '{}' (it answered \
                         the abuse-protection OPTIONS with {status} and no matching \
                         WebHook-Allowed-Origin); no events are sent to it",
                        super::shown_url(&self.url),
                        self.origin
                    ),
                );
                false
            }
            Err(error) => {
                let error = super::describe(error);
                warnings.warn(
                    Kind::Unreachable,
                    None,
                    &format!(
                        "the event handler {} could not be validated (abuse-protection \
                         OPTIONS): {error}; no events are sent to it until it answers",
                        super::shown_url(&self.url)
                    ),
                );
                false
            }
        };
        let mut known = self.known.lock();
        let retry = match *known {
            Some(previous) if !previous.allowed => (previous.retry * 2).min(MAX_RETRY),
            _ => FIRST_RETRY,
        };
        if allowed {
            warnings.allowed_again();
            warnings.answered();
        }
        if allowed && !known.is_some_and(|k| k.allowed) {
            tracing::info!(url = %super::shown_url(&self.url), origin = %self.origin, "the event handler allows our deliveries");
        }
        *known = Some(Known {
            allowed,
            recheck_at: Instant::now() + if allowed { RECHECK_ALLOWED } else { retry },
            retry,
        });
        allowed
    }

    /// One validation request: its status and whether it allows our origin.
    async fn ask(
        &self,
        client: &reqwest::Client,
        method: Method,
    ) -> Result<(StatusCode, bool), reqwest::Error> {
        let response = client
            .request(method, self.url.clone())
            .header("WebHook-Request-Origin", &self.origin)
            .header("ce-awpsversion", AWPS_VERSION)
            .timeout(VALIDATION_TIMEOUT)
            .send()
            .await?;
        let status = response.status();
        let allowed = status.is_success()
            && response
                .headers()
                .get_all("webhook-allowed-origin")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .any(|v| v == "*" || v.eq_ignore_ascii_case(&self.origin));
        Ok((status, allowed))
    }
}
