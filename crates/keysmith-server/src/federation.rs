//! Fetching a JWT issuer's keys over HTTP for identity federation
//! (`keysmith_app::federation`): the discovery document
//! `{issuer}/.well-known/openid-configuration` names `jwks_uri`, and that answer is the
//! key set. No redirects, a short timeout and a size bound, so a registered issuer
//! that misbehaves cannot stall or flood the server.

use keysmith_app::federation::IssuerFetcher;
use std::time::Duration;

/// How long one fetch may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest discovery document or key set read.
const MAX_BYTES: usize = 256 * 1024;

pub struct HttpIssuerFetcher {
    client: Option<reqwest::Client>,
}

impl HttpIssuerFetcher {
    pub fn new() -> Self {
        let client = crate::webhooks::outbound_client(TIMEOUT, concat!("Keysmith/", env!("CARGO_PKG_VERSION")));
        if let Err(e) = &client {
            tracing::error!(error = %e, "no HTTP client for JWT issuers; federation will refuse every JWT");
        }
        Self { client: client.ok() }
    }

    async fn get_json(&self, url: &str) -> Result<serde_json::Value, String> {
        let client = self.client.as_ref().ok_or("no HTTP client")?;
        let mut response = client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {}", describe(&e)))?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {}", describe(&e)))? {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(format!("{url}: the answer is larger than {MAX_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON ({e})"))
    }
}

impl Default for HttpIssuerFetcher {
    fn default() -> Self {
        Self::new()
    }
}

/// A reqwest error in a few words (its Display names the URL already given).
fn describe(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer could not be read"
    } else {
        "the request failed"
    }
}

impl HttpIssuerFetcher {
    /// The issuer's discovery document, checked to name the issuer it is for.
    pub async fn discovery(&self, issuer: &str) -> Result<serde_json::Value, String> {
        let discovery_url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let discovery = self.get_json(&discovery_url).await?;
        // OpenID Connect Discovery §4.3: the document names the issuer it is for, exactly.
        let named = discovery.get("issuer").and_then(|v| v.as_str());
        if named != Some(issuer) {
            return Err(format!(
                "the discovery document names the issuer {:?}, not {issuer:?}",
                named.unwrap_or("")
            ));
        }
        Ok(discovery)
    }

    /// The URL the discovery document names under `field`, if it is https (or plain
    /// http on loopback, as for the issuer itself): keys and tokens are what sign-ins
    /// are trusted by.
    pub fn endpoint(discovery: &serde_json::Value, field: &str) -> Result<String, String> {
        let url = discovery
            .get(field)
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("the discovery document names no {field}"))?;
        let parsed = url::Url::parse(url).map_err(|_| format!("the {field} is not a URL"))?;
        match parsed.scheme() {
            "https" => Ok(url.to_owned()),
            "http" if keysmith_app::federation::is_loopback(&parsed) => Ok(url.to_owned()),
            _ => Err(format!("the {field} {url} is not an https URL")),
        }
    }

    /// Posts a form with HTTP Basic client authentication (RFC 6749 §2.3.1: the ID and
    /// secret form-encoded first) and reads the JSON answer, success or OAuth error.
    pub async fn post_form(
        &self,
        url: &str,
        client_id: &str,
        secret: &keysmith_core::SecretString,
        form: &[(&str, &str)],
    ) -> Result<(u16, serde_json::Value), String> {
        let client = self.client.as_ref().ok_or("no HTTP client")?;
        let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let response = client
            .post(url)
            .basic_auth(encode(client_id), Some(encode(secret.expose())))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| format!("{url}: {}", describe(&e)))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| format!("{url}: {}", describe(&e)))?;
        if body.len() > MAX_BYTES {
            return Err(format!("{url}: the answer is larger than {MAX_BYTES} bytes"));
        }
        let json = serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON ({e})"))?;
        Ok((status, json))
    }
}

#[async_trait::async_trait]
impl IssuerFetcher for HttpIssuerFetcher {
    async fn jwks(&self, issuer: &str) -> Result<String, String> {
        let discovery = self.discovery(issuer).await?;
        let jwks_uri = Self::endpoint(&discovery, "jwks_uri")?;
        let keys = self.get_json(&jwks_uri).await?;
        Ok(keys.to_string())
    }
}
