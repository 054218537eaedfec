//! What the SNS endpoints hold while they serve: each configured source with
//! its topic allow-list, pinned certificates and endpoint override, the
//! certificate cache and HTTPS client they share, and the rejection counters.
//! Built once at start from the config (a bad pinned certificate is a
//! configuration error then).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::rule::Rule;
use super::verify::{self, CertCache, SigningCert};
use crate::config::{ConfigError, RouterConfig, SnsSource};
use crate::metrics::Labels;
use crate::shared::Shared;

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

    /// The configured source names, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.sources.keys().cloned().collect();
        names.sort();
        names
    }
}

/// The state of the `/sns/{source}` routes: the router's shared state, the
/// SNS sources with their certificate cache, and the rejections by rule.
pub(crate) struct Endpoints {
    /// What every task shares.
    pub shared: Arc<Shared>,
    /// The configured sources.
    pub sns: SnsState,
    pub(super) rejected: Family<Labels, Counter>,
}

impl Endpoints {
    /// Counts one rejection in `signalbox_sns_rejected_total{reason}`.
    pub(crate) fn count_rejected(&self, rule: Rule) {
        self.rejected
            .get_or_create(&vec![("reason", rule.name().to_string())])
            .inc();
    }
}
