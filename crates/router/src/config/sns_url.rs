//! The URLs SNS asks signalbox to fetch (`SigningCertURL`, `SubscribeURL`)
//! are trusted only over https, on the default port, without user info, on an
//! SNS host (`sns.<region>.amazonaws.com` or `.amazonaws.com.cn`). The rule
//! lives here, below both the config check of `pinned_certs` and the SNS
//! endpoint that verifies messages.

/// Is `host` an SNS endpoint host (`sns.<region>.amazonaws.com[.cn]`)?
pub(crate) fn is_sns_host(host: &str) -> bool {
    let Some(rest) = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))
    else {
        return false;
    };
    let Some(region) = rest.strip_prefix("sns.") else {
        return false;
    };
    !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Checks a URL SNS asks us to fetch: https, default port, no user info, an
/// SNS host.
fn check_sns_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
    if url.scheme() != "https" {
        return Err(format!(
            "must use https, not {:?} (only https://sns.<region>.amazonaws.com is trusted)",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() || url.port().is_some() {
        return Err("must not carry user info or a port".into());
    }
    match url.host_str() {
        Some(host) if is_sns_host(host) => Ok(url),
        Some(host) => Err(format!(
            "host {host:?} is not an SNS host (sns.<region>.amazonaws.com or .amazonaws.com.cn)"
        )),
        None => Err("has no host".into()),
    }
}

/// Checks a `SigningCertURL`; the error is the rule broken.
pub fn check_cert_url(text: &str) -> Result<reqwest::Url, String> {
    let url = check_sns_url(text)?;
    if !url.path().ends_with(".pem") {
        return Err("must name a .pem file".into());
    }
    Ok(url)
}

/// Checks a `SubscribeURL`; the error is the rule broken.
pub fn check_subscribe_url(text: &str) -> Result<reqwest::Url, String> {
    check_sns_url(text)
}
