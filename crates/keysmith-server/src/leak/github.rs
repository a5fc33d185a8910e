//! GitHub's secret scanning partner program: GitHub finds a Keysmith key in a public
//! repository and POSTs a JSON array of matches here, signed with ECDSA P-256
//! (SHA-256) over the raw body: `Github-Public-Key-Signature` holds the base64 DER
//! signature, `Github-Public-Key-Identifier` names the key. The public keys come from
//! a file in the format GitHub publishes them
//! (`https://api.github.com/meta/public_keys/secret_scanning`), configured with
//! `github_secret_scanning_keys_file`.
//!
//! Each genuine key is revoked; the answer labels every match `true_positive` or
//! `false_positive`, naming it by the SHA-256 of the token (`token_hash`), so the
//! answer never repeats a secret.

use crate::auth::source::SourceAddr;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use base64::Engine;
use keysmith_app::leaks::{Finding, Report, revoke};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{DerSignature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

pub const IDENTIFIER_HEADER: &str = "github-public-key-identifier";
pub const SIGNATURE_HEADER: &str = "github-public-key-signature";
/// Matches in one report, at most.
const MAX_MATCHES: usize = 1000;

/// The public keys GitHub signs reports with.
#[derive(Clone, Debug, Default)]
pub struct GitHubKeys(Vec<(String, VerifyingKey)>);

#[derive(Deserialize)]
struct PublishedKeys {
    public_keys: Vec<PublishedKey>,
}

#[derive(Deserialize)]
struct PublishedKey {
    key_identifier: String,
    key: String,
}

impl GitHubKeys {
    /// Reads GitHub's published format: `{"public_keys": [{"key_identifier", "key"
    /// (PEM)}, …]}`.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let published: PublishedKeys =
            serde_json::from_str(text).map_err(|e| format!("not GitHub's public key format: {e}"))?;
        let mut keys = Vec::new();
        for k in published.public_keys {
            let key = VerifyingKey::from_public_key_pem(&k.key)
                .map_err(|e| format!("key {}: not a P-256 public key in PEM: {e}", k.key_identifier))?;
            keys.push((k.key_identifier, key));
        }
        if keys.is_empty() {
            return Err("no public keys in the file".into());
        }
        Ok(Self(keys))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks the signature of `body` by the key named `identifier`.
    pub fn verify(&self, identifier: &str, signature_b64: &str, body: &[u8]) -> Result<(), ApiError> {
        let key = self
            .0
            .iter()
            .find(|(id, _)| id == identifier)
            .map(|(_, k)| k)
            .ok_or(ApiError::SignatureInvalid("unknown Github-Public-Key-Identifier"))?;
        let der = base64::engine::general_purpose::STANDARD
            .decode(signature_b64.trim())
            .map_err(|_| ApiError::SignatureInvalid("the signature is not base64"))?;
        let signature =
            DerSignature::try_from(der.as_slice()).map_err(|_| ApiError::SignatureInvalid("not a DER signature"))?;
        key.verify(body, &signature)
            .map_err(|_| ApiError::SignatureInvalid("the signature does not match the body"))
    }
}

/// One match GitHub found.
#[derive(Deserialize, ToSchema)]
pub struct SecretMatch {
    token: String,
    #[serde(rename = "type")]
    token_type: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    source: Option<String>,
}

/// Feedback on one match.
#[derive(Serialize, ToSchema)]
pub struct MatchFeedback {
    /// Hex SHA-256 of the token.
    token_hash: String,
    token_type: String,
    /// `true_positive` (a key of this server; now revoked) or `false_positive`.
    label: &'static str,
}

fn sha256_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Receive GitHub secret scanning matches: verify the signature, revoke genuine keys,
/// label every match.
#[utoipa::path(post, path = "/api/v1/secret-scanning/github", tag = "leak-response",
    request_body(content = Vec<SecretMatch>, description = "Signed by GitHub (Github-Public-Key-Signature)"),
    params(
        ("Github-Public-Key-Identifier" = String, Header, description = "Which GitHub key signed the body"),
        ("Github-Public-Key-Signature" = String, Header, description = "Base64 DER ECDSA P-256 signature of the raw body"),
    ),
    responses(
        (status = 200, body = Vec<MatchFeedback>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody, description = "`signature_invalid`"),
        (status = 404, body = ErrorBody, description = "`secret_scanning_not_configured`"),
        (status = 413, body = ErrorBody, description = "`payload_too_large`: the body is over 64 KiB"),
        (status = 429, body = ErrorBody,
            description = "`rate_limited`: too many reports with a bad signature from this address \
                (`key_failures_per_minute`); retry after Retry-After",
            headers(("Retry-After" = u64, description = "Seconds until the address may report again"))),
    ))]
pub async fn report(
    State(state): State<AppState>,
    SourceAddr(source): SourceAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Vec<MatchFeedback>>, ApiError> {
    if state.github_keys.is_empty() {
        return Err(ApiError::SecretScanningNotConfigured);
    }
    let body = body.map_err(crate::json::body_error)?;
    // Checking a signature costs an ECDSA verification. Reports that fail it count
    // against the address like failed key verifications, and past the limit the
    // address is refused before any is checked. GitHub's own reports never fail.
    let limited = crate::auth::verify::limit_key(&source);
    let limiter = &state.app.verifier.failures;
    limiter
        .check(&limited, state.now())
        .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::SignatureInvalid("the GitHub signature headers are missing"))
    };
    let verified = header(IDENTIFIER_HEADER)
        .and_then(|identifier| state.github_keys.verify(identifier, header(SIGNATURE_HEADER)?, &body));
    if let Err(e) = verified {
        limiter.record_failure(&limited, state.now());
        return Err(e);
    }
    let matches: Vec<SecretMatch> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::MalformedJson(format!("expected a JSON array of matches: {e}")))?;
    if matches.len() > MAX_MATCHES {
        return Err(ApiError::InvalidValue(format!(
            "at most {MAX_MATCHES} matches per report"
        )));
    }
    let mut feedback = Vec::with_capacity(matches.len());
    for m in matches {
        let report = Report::GitHub {
            url: m.url.clone(),
            source: m.source.clone(),
        };
        let finding = revoke(&state.app, &m.token, &report, &source).await?;
        feedback.push(MatchFeedback {
            token_hash: sha256_hex(&m.token),
            token_type: m.token_type,
            label: if finding == Finding::NotOurs {
                "false_positive"
            } else {
                "true_positive"
            },
        });
    }
    let revoked = feedback.iter().filter(|f| f.label == "true_positive").count();
    tracing::info!(
        matches = feedback.len(),
        true_positives = revoked,
        "GitHub secret scanning report"
    );
    Ok(Json(feedback))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::{Signature, SigningKey};
    use p256::pkcs8::{EncodePublicKey, LineEnding};

    fn keys(signing: &SigningKey) -> GitHubKeys {
        let pem = signing.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
        let json = serde_json::json!({"public_keys": [{"key_identifier": "k1", "key": pem, "is_current": true}]});
        GitHubKeys::from_json(&json.to_string()).unwrap()
    }

    fn sign(signing: &SigningKey, body: &[u8]) -> String {
        let sig: Signature = signing.sign(body);
        base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes())
    }

    #[test]
    fn a_signature_verifies_only_for_its_body_and_key() {
        let signing = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let other = SigningKey::from_slice(&[9u8; 32]).unwrap();
        let keys = keys(&signing);
        let body = br#"[{"token":"x","type":"keysmith_api_key"}]"#;
        keys.verify("k1", &sign(&signing, body), body).unwrap();
        assert!(keys.verify("k1", &sign(&signing, body), b"[]").is_err(), "another body");
        assert!(keys.verify("k1", &sign(&other, body), body).is_err(), "another key");
        assert!(
            keys.verify("k2", &sign(&signing, body), body).is_err(),
            "unknown identifier"
        );
        assert!(keys.verify("k1", "not base64!", body).is_err());
        assert!(keys.verify("k1", "AAAA", body).is_err(), "not DER");
    }

    #[test]
    fn bad_key_files_are_explained() {
        assert!(GitHubKeys::from_json("{}").unwrap_err().contains("format"));
        let bad = r#"{"public_keys":[{"key_identifier":"a","key":"nope"}]}"#;
        assert!(GitHubKeys::from_json(bad).unwrap_err().contains("key a"));
        assert!(GitHubKeys::from_json(r#"{"public_keys":[]}"#).is_err());
    }

    #[test]
    fn tokens_are_named_by_their_hash() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
