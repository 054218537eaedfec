//! Signature verification of SNS messages: which certificate URLs are trusted,
//! where certificates come from (pinned files, the in-memory cache, an HTTPS
//! fetch), and the RSA check itself.
//!
//! A `SigningCertURL` (and a `SubscribeURL`) is trusted only over `https`, on
//! the default port, without user info, on a host `sns.<region>.amazonaws.com`
//! or `sns.<region>.amazonaws.com.cn`; a certificate URL must also end in
//! `.pem`. The certificate is fetched from there (or from the source's
//! `endpoint_url` with the same path, for LocalStack and tests) over HTTPS with
//! the Mozilla root store, so the TLS connection to the AWS host is what
//! vouches for it — the same trust the AWS SDKs' message validators use. Its
//! validity period is checked at every use; its RSA key verifies
//! `SignatureVersion` 1 (SHA1withRSA, PKCS#1 v1.5) or 2 (SHA256withRSA).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use rsa::pkcs8::DecodePublicKey as _;
use rsa::{Pkcs1v15Sign, PublicKey};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};
use x509_cert::Certificate;
use x509_cert::der::{DecodePem as _, Encode as _};

pub(crate) use crate::config::sns_url::{check_cert_url, check_subscribe_url};

/// Largest certificate body fetched.
const MAX_CERT_BYTES: usize = 64 * 1024;

/// Most fetched certificates kept; the cache is cleared when it is full.
const MAX_CACHED: usize = 64;

/// Timeout of one certificate or SubscribeURL fetch.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A signing certificate's key and validity period.
#[derive(Debug, Clone)]
pub(crate) struct SigningCert {
    key: PublicKey,
    not_before: SystemTime,
    not_after: SystemTime,
}

impl SigningCert {
    /// Reads a PEM certificate holding an RSA key.
    pub(crate) fn from_pem(pem: &[u8]) -> Result<SigningCert, String> {
        let cert = Certificate::from_pem(pem).map_err(|e| format!("not a PEM certificate: {e}"))?;
        let tbs = cert.tbs_certificate();
        let spki = tbs
            .subject_public_key_info()
            .to_der()
            .map_err(|e| format!("cannot encode the public key: {e}"))?;
        let key = PublicKey::from_public_key_der(&spki)
            .map_err(|e| format!("the certificate's key is not an RSA key: {e}"))?;
        Ok(SigningCert {
            key,
            not_before: tbs.validity().not_before.to_system_time(),
            not_after: tbs.validity().not_after.to_system_time(),
        })
    }

    /// Verifies `signature` (Base64) over `text` with signature version 1 or 2.
    pub(crate) fn verify(
        &self,
        version: &str,
        text: &[u8],
        signature: &str,
        now: SystemTime,
    ) -> Result<(), String> {
        if now < self.not_before || now > self.not_after {
            return Err("the signing certificate is outside its validity period".into());
        }
        let sig = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|e| format!("Signature is not Base64: {e}"))?;
        let result = match version {
            "1" => self
                .key
                .verify(Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(text), &sig),
            "2" => self
                .key
                .verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(text), &sig),
            other => return Err(format!("unsupported SignatureVersion {other:?}")),
        };
        result.map_err(|_| {
            "the signature does not match the message (SHA".to_string()
                + if version == "1" { "1" } else { "256" }
                + "withRSA over the canonical string)"
        })
    }
}

/// Where a checked URL is fetched from: itself, or the same path and query
/// on `endpoint` (the source's `endpoint_url`).
pub(crate) fn fetch_url(url: &reqwest::Url, endpoint: Option<&reqwest::Url>) -> reqwest::Url {
    match endpoint {
        None => url.clone(),
        Some(endpoint) => {
            let mut target = endpoint.clone();
            target.set_path(url.path());
            target.set_query(url.query());
            target
        }
    }
}

/// Why a certificate could not be had.
#[derive(Debug)]
pub(crate) enum CertError {
    /// The fetch failed (network, status): worth a retry.
    Fetch(String),
    /// The certificate is unusable.
    Bad(String),
}

/// Fetched certificates by the URL they were fetched from.
#[derive(Debug, Default)]
pub(crate) struct CertCache {
    fetched: Mutex<HashMap<String, Arc<SigningCert>>>,
}

impl CertCache {
    /// The certificate at `url` (already checked), from the cache or fetched.
    pub(crate) async fn get(
        &self,
        client: &reqwest::Client,
        url: &reqwest::Url,
    ) -> Result<Arc<SigningCert>, CertError> {
        let key = url.as_str().to_string();
        if let Some(cert) = self.lock().get(&key) {
            return Ok(cert.clone());
        }
        let pem = fetch_limited(client, url, MAX_CERT_BYTES)
            .await
            .map_err(CertError::Fetch)?;
        let cert = Arc::new(
            SigningCert::from_pem(&pem).map_err(|e| CertError::Bad(format!("{url}: {e}")))?,
        );
        tracing::info!(url = %url, "SNS signing certificate fetched");
        let mut cache = self.lock();
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(key, cert.clone());
        Ok(cert)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<SigningCert>>> {
        self.fetched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// GETs `url` and returns at most `limit` bytes of a 2xx body.
pub(crate) async fn fetch_limited(
    client: &reqwest::Client,
    url: &reqwest::Url,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let mut resp = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| format!("GET {url} failed: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("GET {url} answered {}", resp.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("GET {url} failed: {e}"))?
    {
        if body.len() + chunk.len() > limit {
            return Err(format!("GET {url}: the body is over {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_sns_hosts_are_trusted() {
        for ok in [
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
            "https://SNS.eu-west-3.amazonaws.com/x.pem",
        ] {
            assert!(check_cert_url(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("http://sns.us-east-1.amazonaws.com/x.pem", "https"),
            (
                "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
                "host",
            ),
            (
                "https://evil.example/sns.us-east-1.amazonaws.com/x.pem",
                "host",
            ),
            ("https://sqs.us-east-1.amazonaws.com/x.pem", "host"),
            ("https://sns..amazonaws.com/x.pem", "host"),
            ("https://sns.us_east.amazonaws.com/x.pem", "host"),
            ("https://sns.us-east-1.amazonaws.com:8443/x.pem", "port"),
            ("https://u:p@sns.us-east-1.amazonaws.com/x.pem", "user info"),
            ("https://sns.us-east-1.amazonaws.com/x.txt", ".pem"),
            ("not a url", "URL"),
        ] {
            let err = check_cert_url(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(
            check_subscribe_url("https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription")
                .is_ok()
        );
    }

    #[test]
    fn endpoint_override_keeps_path_and_query() {
        let url = check_subscribe_url(
            "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=abc",
        )
        .expect("valid");
        let endpoint = reqwest::Url::parse("http://127.0.0.1:4566").expect("url");
        assert_eq!(
            fetch_url(&url, Some(&endpoint)).as_str(),
            "http://127.0.0.1:4566/?Action=ConfirmSubscription&Token=abc"
        );
        assert_eq!(fetch_url(&url, None), url);
    }

    /// The test-only key and certificate of `tests/fixtures/sns/`.
    const KEY_PEM: &str = include_str!("../../../../../tests/fixtures/sns/signing-key.pem");
    const CERT_PEM: &str = include_str!("../../../../../tests/fixtures/sns/signing-cert.pem");

    fn sign(version: &str, text: &[u8]) -> String {
        use rsa::pkcs8::DecodePrivateKey as _;
        let der: String = KEY_PEM
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(der)
            .expect("base64 key");
        let key = rsa::PrivateKey::from_pkcs8_der(&der).expect("PKCS#8 key");
        let sig = match version {
            "1" => key.sign(Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(text)),
            _ => key.sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(text)),
        }
        .expect("signs");
        base64::engine::general_purpose::STANDARD.encode(sig)
    }

    #[test]
    fn verifies_sha1_and_sha256_signatures() {
        let cert = SigningCert::from_pem(CERT_PEM.as_bytes()).expect("fixture certificate");
        let now = SystemTime::now();
        let text = b"Message\nHello world!\nMessageId\n1\nTimestamp\n2026-01-01T00:00:00.000Z\nTopicArn\narn:aws:sns:us-east-1:1:t\nType\nNotification\n";
        for version in ["1", "2"] {
            let sig = sign(version, text);
            assert_eq!(cert.verify(version, text, &sig, now), Ok(()), "v{version}");
            let tampered = text.replace_ascii("Hello", "Howdy");
            let err = cert
                .verify(version, &tampered, &sig, now)
                .expect_err("tampered");
            assert!(err.contains("does not match"), "{err}");
        }
        // A v1 signature does not pass as v2, nor garbage as either.
        let v1 = sign("1", text);
        assert!(cert.verify("2", text, &v1, now).is_err());
        assert!(cert.verify("1", text, "%%%", now).is_err());
        // Outside the validity period.
        let later = now + Duration::from_secs(200 * 365 * 24 * 3600);
        let err = cert.verify("1", text, &v1, later).expect_err("expired");
        assert!(err.contains("validity"), "{err}");
    }

    trait ReplaceAscii {
        fn replace_ascii(&self, from: &str, to: &str) -> Vec<u8>;
    }

    impl ReplaceAscii for [u8] {
        fn replace_ascii(&self, from: &str, to: &str) -> Vec<u8> {
            String::from_utf8_lossy(self).replace(from, to).into_bytes()
        }
    }

    #[test]
    fn rejects_garbage_certificates() {
        assert!(
            SigningCert::from_pem(
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
            )
            .is_err()
        );
        assert!(SigningCert::from_pem(b"").is_err());
    }
}
