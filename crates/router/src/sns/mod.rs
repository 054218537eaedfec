//! AWS SNS ingestion over HTTP: `POST /sns/<source>` on the router's listener.
//!
//! Each `[[sources.sns]]` entry is one endpoint an SNS topic subscribes to.
//! Every message is checked before anything is done with it: the JSON shape
//! ([`message`]), the `SigningCertURL` host and the signature ([`verify`]), the
//! topic allow-list and the timestamp's age. Then a `SubscriptionConfirmation`
//! is confirmed (when the source says so) or logged, an
//! `UnsubscribeConfirmation` is logged, and a `Notification` goes to the
//! source's adapter plugin and through the same store transaction as every
//! other signal ([`endpoint`]). A rejected message gets a 4xx JSON error
//! naming the rule and is counted in `/metrics` by that rule.

pub mod config;
pub(crate) mod endpoint;
pub(crate) mod message;
pub(crate) mod verify;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use config::SnsSource;

use crate::config::{ConfigError, RouterConfig};
use verify::{CertCache, SigningCert};

/// The rule a rejected SNS message broke; its name is the `field` of the
/// error reply and the `reason` label of `signalbox_sns_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// No SNS source of that name (404).
    Source,
    /// The body is not an SNS JSON message.
    Body,
    /// `Type` is missing or unknown.
    Type,
    /// `MessageId` is missing.
    MessageId,
    /// `SignatureVersion` is not 1 or 2.
    SignatureVersion,
    /// `SigningCertURL` is not an https SNS host, or its certificate is unusable.
    SigningCertUrl,
    /// `TopicArn` is not in the source's allow-list.
    TopicArn,
    /// `Timestamp` is unparsable, older than `max_age` or in the future.
    Timestamp,
    /// The signature does not verify.
    Signature,
    /// `SubscribeURL` is missing or not an https SNS host.
    SubscribeUrl,
    /// A raw delivery to a source without `raw_delivery = true`.
    RawDelivery,
    /// The adapter rejected the notification.
    Adapter,
}

impl Rule {
    /// Every rule, in the order of the metrics rows.
    pub const ALL: [Rule; 12] = [
        Rule::Source,
        Rule::Body,
        Rule::Type,
        Rule::MessageId,
        Rule::SignatureVersion,
        Rule::SigningCertUrl,
        Rule::TopicArn,
        Rule::Timestamp,
        Rule::Signature,
        Rule::SubscribeUrl,
        Rule::RawDelivery,
        Rule::Adapter,
    ];

    /// The name used in replies and metrics (the SNS key where there is one).
    pub fn name(self) -> &'static str {
        match self {
            Rule::Source => "source",
            Rule::Body => "body",
            Rule::Type => "Type",
            Rule::MessageId => "MessageId",
            Rule::SignatureVersion => "SignatureVersion",
            Rule::SigningCertUrl => "SigningCertURL",
            Rule::TopicArn => "TopicArn",
            Rule::Timestamp => "Timestamp",
            Rule::Signature => "Signature",
            Rule::SubscribeUrl => "SubscribeURL",
            Rule::RawDelivery => "x-amz-sns-rawdelivery",
            Rule::Adapter => "adapter",
        }
    }

    fn index(self) -> usize {
        Rule::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// Rejected SNS messages by rule, for `/metrics`.
#[derive(Debug, Default)]
pub struct RejectCounters([AtomicU64; Rule::ALL.len()]);

impl RejectCounters {
    /// Counts one rejection.
    pub fn count(&self, rule: Rule) {
        self.0[rule.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The count for one rule.
    pub fn get(&self, rule: Rule) -> u64 {
        self.0[rule.index()].load(Ordering::Relaxed)
    }

    /// `(reason="<rule>", count)` rows for the Prometheus text.
    pub fn rows(&self) -> Vec<(String, u64)> {
        Rule::ALL
            .iter()
            .map(|r| (format!("reason=\"{}\"", r.name()), self.get(*r)))
            .collect()
    }
}

/// One configured source, ready to serve.
#[derive(Debug)]
pub(crate) struct SourceState {
    /// Its configuration.
    pub config: SnsSource,
    /// `topic_arns` as a set.
    pub topics: HashSet<String>,
    /// Pinned certificates by `SigningCertURL`.
    pub pinned: HashMap<String, Arc<SigningCert>>,
    /// The parsed `endpoint_url`.
    pub endpoint: Option<reqwest::Url>,
}

/// What the SNS endpoints share: the sources, the certificate cache and the
/// HTTPS client.
#[derive(Debug)]
pub(crate) struct SnsState {
    sources: HashMap<String, Arc<SourceState>>,
    /// Certificates fetched so far.
    pub certs: CertCache,
    /// For certificates and SubscribeURL (rustls, no redirects, 10 s timeout).
    pub client: reqwest::Client,
}

impl SnsState {
    /// Builds the state from the configuration: reads the pinned certificates.
    pub(crate) fn new(config: &RouterConfig) -> Result<SnsState, ConfigError> {
        let mut sources = HashMap::new();
        for s in &config.sources.sns {
            let invalid = |f: &str, rule: String| ConfigError::Invalid {
                field: format!("sources.sns[{}].{f}", s.name),
                rule,
            };
            let mut pinned = HashMap::new();
            for (url, path) in &s.pinned_certs {
                let pem = std::fs::read(path).map_err(|e| {
                    invalid(
                        "pinned_certs",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                let cert = SigningCert::from_pem(&pem)
                    .map_err(|e| invalid("pinned_certs", format!("{}: {e}", path.display())))?;
                pinned.insert(url.clone(), Arc::new(cert));
            }
            let endpoint = match &s.endpoint_url {
                None => None,
                Some(text) => Some(
                    reqwest::Url::parse(text)
                        .map_err(|e| invalid("endpoint_url", format!("{text:?}: {e}")))?,
                ),
            };
            sources.insert(
                s.name.clone(),
                Arc::new(SourceState {
                    config: s.clone(),
                    topics: s.topic_arns.iter().cloned().collect(),
                    pinned,
                    endpoint,
                }),
            );
        }
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(verify::FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("signalbox/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::Invalid {
                field: "sources.sns".into(),
                rule: format!("cannot build the HTTPS client: {e}"),
            })?;
        Ok(SnsState {
            sources,
            certs: CertCache::default(),
            client,
        })
    }

    /// The source named `name`.
    pub(crate) fn source(&self, name: &str) -> Option<Arc<SourceState>> {
        self.sources.get(name).cloned()
    }

    /// The SNS source an adapter serves, if any: such an adapter is not
    /// offered as a webhook route (it would take unsigned messages there).
    pub(crate) fn source_of_adapter(&self, adapter: &str) -> Option<&str> {
        self.sources
            .values()
            .find(|s| s.config.adapter == adapter)
            .map(|s| s.config.name.as_str())
    }

    /// The configured source names, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.sources.keys().cloned().collect();
        names.sort();
        names
    }
}
