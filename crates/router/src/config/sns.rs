//! The `[[sources.sns]]` table of the router's configuration.
//!
//! One entry per SNS subscription endpoint: its name (the route
//! `POST /sns/<name>`), the adapter plugin that turns notifications into
//! signals, the topics it accepts, and how strictly messages are checked. The
//! checks here are the ones serde cannot do; every error names the field as
//! `sources.sns[<name>].<field>`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::ConfigError;

/// How old (by its `Timestamp`) a message may be by default.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);

/// How far in the future a message's `Timestamp` may lie (clock skew).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// One SNS source: an HTTP endpoint that takes an SNS subscription's deliveries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnsSource {
    /// The source's name: the endpoint is `POST /sns/<name>`.
    pub name: String,
    /// The source adapter plugin (a `[[plugins.adapters]]` name) that turns a
    /// verified notification into signals.
    pub adapter: String,
    /// The topics accepted (allow-list of full ARNs); any other `TopicArn` is
    /// rejected. Must not be empty.
    pub topic_arns: Vec<String>,
    /// Confirm a `SubscriptionConfirmation` by fetching its `SubscribeURL`;
    /// when false (the default) the URL is only logged, at info.
    #[serde(default)]
    pub confirm_subscriptions: bool,
    /// Messages whose `Timestamp` is older than this are rejected (default `1h`).
    #[serde(default = "default_max_age", with = "super::duration::text")]
    pub max_age: Duration,
    /// Certificates by `SigningCertURL`: a PEM file used instead of fetching
    /// the URL (offline use, tests). Looked up before the in-memory cache.
    #[serde(default)]
    pub pinned_certs: BTreeMap<String, PathBuf>,
    /// Accept SNS raw message delivery (`x-amz-sns-rawdelivery: true`). Raw
    /// deliveries are NOT signed: only the topic allow-list is checked, so the
    /// path must then be protected otherwise (network policy, a proxy that
    /// authenticates). Default false: raw deliveries are rejected.
    #[serde(default)]
    pub raw_delivery: bool,
    /// Replaces the scheme, host and port of `SubscribeURL` and certificate
    /// URLs when fetching them (like the AWS SDK's endpoint override), for
    /// LocalStack and tests, e.g. `http://127.0.0.1:4566`. The URLs are still
    /// checked as they appear in the message.
    #[serde(default)]
    pub endpoint_url: Option<String>,
}

fn default_max_age() -> Duration {
    DEFAULT_MAX_AGE
}

impl SnsSource {
    /// A source with the defaults: `name` served by `adapter` for `topic_arns`.
    pub fn new(name: &str, adapter: &str, topic_arns: &[&str]) -> SnsSource {
        SnsSource {
            name: name.into(),
            adapter: adapter.into(),
            topic_arns: topic_arns.iter().map(|s| s.to_string()).collect(),
            confirm_subscriptions: false,
            max_age: DEFAULT_MAX_AGE,
            pinned_certs: BTreeMap::new(),
            raw_delivery: false,
            endpoint_url: None,
        }
    }

    /// Checks this entry; `adapters` are the configured adapter names.
    pub fn validate(&self, adapters: &[&str]) -> Result<(), ConfigError> {
        let field = |f: &str| format!("sources.sns[{}].{f}", self.name);
        let invalid = |f: &str, rule: String| ConfigError::Invalid {
            field: field(f),
            rule,
        };
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(ConfigError::Invalid {
                field: format!("sources.sns[{:?}].name", self.name),
                rule: "must be a non-empty name of letters, digits, '-', '_' or '.' (it is a URL path segment)".into(),
            });
        }
        if !adapters.contains(&self.adapter.as_str()) {
            return Err(invalid(
                "adapter",
                format!(
                    "no adapter {:?} under plugins.adapters; configured: {adapters:?}",
                    self.adapter
                ),
            ));
        }
        if self.topic_arns.is_empty() {
            return Err(invalid(
                "topic_arns",
                "must list at least one topic ARN".into(),
            ));
        }
        for arn in &self.topic_arns {
            if !valid_topic_arn(arn) {
                return Err(invalid(
                    "topic_arns",
                    format!(
                        "{arn:?} is not a topic ARN like arn:aws:sns:us-east-1:123456789012:MyTopic"
                    ),
                ));
            }
        }
        if self.max_age.is_zero() {
            return Err(invalid("max_age", "must be longer than zero".into()));
        }
        for url in self.pinned_certs.keys() {
            if let Err(rule) = super::sns_url::check_cert_url(url) {
                return Err(invalid("pinned_certs", format!("{url:?}: {rule}")));
            }
        }
        if let Some(endpoint) = &self.endpoint_url {
            match reqwest::Url::parse(endpoint) {
                Ok(u)
                    if matches!(u.scheme(), "http" | "https")
                        && u.host_str().is_some()
                        && u.path() == "/"
                        && u.query().is_none() => {}
                _ => {
                    return Err(invalid(
                        "endpoint_url",
                        format!(
                            "{endpoint:?} is not a URL like http://127.0.0.1:4566 (scheme and host only)"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `arn:<partition>:sns:<region>:<account>:<topic>` with non-empty parts.
fn valid_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "sns"
        && parts[3..].iter().all(|p| !p.is_empty())
}

/// Checks every SNS source and that their names are distinct.
pub fn validate_all(sources: &[SnsSource], adapters: &[&str]) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for s in sources {
        s.validate(adapters)?;
        if !seen.insert(s.name.as_str()) {
            return Err(ConfigError::Invalid {
                field: format!("sources.sns[{}].name", s.name),
                rule: "two SNS sources have this name".into(),
            });
        }
    }
    Ok(())
}
