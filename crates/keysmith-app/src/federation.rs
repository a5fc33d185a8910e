//! Identity federation (RFC 7523, the JWT bearer grant), as W&B offers it to the SDK:
//! an organization admin registers a JWT issuer by its URL; a workload presents a JWT
//! that issuer signed, and gets a short access token in exchange that works wherever
//! a key does (docs/FEDERATION.md).
//!
//! The rules live here: which issuer, which audience, which identity a subject names,
//! how long the access token lives. Fetching the issuer's discovery document and
//! JWKS is a door's business (an HTTP client): the server hands in an
//! [`IssuerFetcher`], and [`IssuerKeys`] caches what it brings.
//!
//! An access token is a v1 key row marked with its issuer (`federated_issuer`), so it
//! is verified from the same cache, expires by itself, is revoked when deleted or when
//! its owner is deactivated, and lists show it as a federated session, not a key.

use crate::access::admin_org;
use crate::audit::{Action, AuditContext};
use crate::error::{AppError, Missing, Result};
use crate::time::{HOUR_MS, MINUTE_MS, rfc3339};
use crate::verification::limit_key;
use crate::{Acting, App};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use keysmith_core::{KeyScope, generate_v1};
use keysmith_store::{JwtIssuer, KeyFormat, NewJwtIssuer, NewKey, Org, StoreError, User};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The longest an access token lives; never past its JWT's own expiry either.
pub const MAX_SESSION_MS: i64 = HOUR_MS;
/// What a JWT's `exp` and `nbf` are allowed to be off by: clocks drift.
pub const LEEWAY_MS: i64 = 60_000;
/// The longest JWT taken, in bytes.
pub const MAX_ASSERTION_BYTES: usize = 16 * 1024;
/// The longest issuer URL or audience, in characters.
pub const MAX_ISSUER_CHARS: usize = 512;
/// An issuer's keys are fetched again after this long.
pub const KEYS_FRESH_MS: i64 = 15 * MINUTE_MS;
/// A JWT naming a key the issuer did not have makes the keys be fetched again, but not
/// more often than this per issuer: strangers cannot make Keysmith hammer an issuer.
pub const REFETCH_AFTER_MS: i64 = 30_000;
/// The name lists show for a federated session.
pub const SESSION_NAME: &str = "federated session";

/// Brings an issuer's signing keys: its discovery document
/// (`{issuer}/.well-known/openid-configuration`) names `jwks_uri`, whose answer is
/// returned as JSON text. An error is a sentence for the admin who registers it.
#[async_trait::async_trait]
pub trait IssuerFetcher: Send + Sync {
    async fn jwks(&self, issuer: &str) -> std::result::Result<String, String>;
}

/// A fetcher for an application that never reaches out (the CLI, tests without
/// issuers): every fetch fails.
pub struct NoFetcher;

#[async_trait::async_trait]
impl IssuerFetcher for NoFetcher {
    async fn jwks(&self, _issuer: &str) -> std::result::Result<String, String> {
        Err("this process does not fetch issuer keys".into())
    }
}

/// The fetcher an application is built with.
#[derive(Clone)]
pub struct Fetcher(pub Arc<dyn IssuerFetcher>);

impl Default for Fetcher {
    fn default() -> Self {
        Self(Arc::new(NoFetcher))
    }
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fetcher")
    }
}

struct Cached {
    keys: Arc<JwkSet>,
    fetched_at: i64,
}

/// Each registered issuer's keys, fetched when first needed, again after
/// [`KEYS_FRESH_MS`], and on a key ID they lacked at most every [`REFETCH_AFTER_MS`].
pub struct IssuerKeys {
    fetcher: Fetcher,
    cached: Mutex<HashMap<String, Cached>>,
}

impl IssuerKeys {
    pub fn new(fetcher: Fetcher) -> Self {
        Self {
            fetcher,
            cached: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) async fn fetch(&self, issuer: &str, now: i64) -> std::result::Result<Arc<JwkSet>, String> {
        let text = self.fetcher.0.jwks(issuer).await?;
        let keys: JwkSet =
            serde_json::from_str(&text).map_err(|e| format!("the JWKS is not a JSON Web Key Set: {e}"))?;
        let keys = Arc::new(keys);
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        cached.insert(
            issuer.to_owned(),
            Cached {
                keys: keys.clone(),
                fetched_at: now,
            },
        );
        Ok(keys)
    }

    /// The key `kid` names among `issuer`'s (the only key, when `kid` is absent and the
    /// issuer has one).
    async fn key(&self, issuer: &str, kid: Option<&str>, now: i64) -> std::result::Result<Option<Jwk>, String> {
        let find = |keys: &JwkSet| match kid {
            Some(kid) => keys.find(kid).cloned(),
            None if keys.keys.len() == 1 => keys.keys.first().cloned(),
            None => None,
        };
        let (known, fetched_at) = {
            let cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
            match cached.get(issuer) {
                Some(c) => (Some(c.keys.clone()), c.fetched_at),
                None => (None, i64::MIN),
            }
        };
        if let Some(keys) = &known {
            let fresh = now - fetched_at < KEYS_FRESH_MS;
            if let Some(key) = find(keys).filter(|_| fresh) {
                return Ok(Some(key));
            }
            if now - fetched_at < REFETCH_AFTER_MS || !self.claim_refetch(issuer, fetched_at, now) {
                return Ok(find(keys));
            }
        }
        match self.fetch(issuer, now).await {
            Ok(keys) => Ok(find(&keys)),
            // An issuer that is down for a moment does not end sessions it already
            // signed keys for: the keys known stay usable.
            Err(e) => match known.as_deref().and_then(find) {
                Some(key) => Ok(Some(key)),
                None => Err(e),
            },
        }
    }

    /// Takes the one refetch of `issuer`'s keys allowed now: the first of concurrent
    /// requests to see them stale moves their time on, so the others use the keys known
    /// rather than fetch as well.
    fn claim_refetch(&self, issuer: &str, seen_fetched_at: i64, now: i64) -> bool {
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        match cached.get_mut(issuer) {
            Some(c) if c.fetched_at == seen_fetched_at => {
                c.fetched_at = now;
                true
            }
            _ => false,
        }
    }

    /// Forgets an issuer's keys (it was removed).
    fn forget(&self, issuer: &str) {
        self.cached.lock().unwrap_or_else(|p| p.into_inner()).remove(issuer);
    }
}

/// An issuer to register.
#[derive(Debug, Clone)]
pub struct NewIssuerRequest {
    /// The issuer URL, as its JWTs name it in `iss`.
    pub issuer: String,
    /// The `aud` its JWTs must carry; `None`: the organization's name.
    pub audience: Option<String>,
}

/// Whether `url` names this machine: the only place plain http is taken for an
/// issuer or its keys.
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

pub(crate) fn parse_issuer(text: &str) -> Result<String> {
    let bad = |why: &str| AppError::invalid("issuer", format!("issuer: {why}"));
    if text.chars().count() > MAX_ISSUER_CHARS {
        return Err(bad(&format!("at most {MAX_ISSUER_CHARS} characters")));
    }
    let url = url::Url::parse(text).map_err(|e| bad(&format!("not a URL ({e})")))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        _ => return Err(bad("an https URL (http only on loopback)")),
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(bad("no query, fragment or credentials"));
    }
    // Stored as given: `iss` is compared as a string (RFC 7519 §4.1.1).
    Ok(text.to_owned())
}

fn parse_audience(text: Option<&str>) -> Result<Option<String>> {
    match text {
        None => Ok(None),
        Some(a) if !a.is_empty() && a.chars().count() <= MAX_ISSUER_CHARS && !a.chars().any(char::is_control) => {
            Ok(Some(a.to_owned()))
        }
        Some(_) => Err(AppError::invalid(
            "audience",
            format!("audience: 1 to {MAX_ISSUER_CHARS} characters, no control characters"),
        )),
    }
}

/// The issuers the organization trusts (org admins).
pub async fn list_issuers(app: &App, caller: &crate::Caller, org: &str) -> Result<Vec<JwtIssuer>> {
    let org = admin_org(app, caller, org).await?;
    Ok(app.store.list_jwt_issuers(org.id).await?)
}

/// Reads an issuer's keys now, when it is registered (for federation or single sign-on),
/// so that a mistyped or unreachable issuer is refused at once, naming `issuer`.
pub(crate) async fn read_issuer_keys(app: &App, issuer: &str, now: i64) -> Result<()> {
    let keys = app
        .issuer_keys
        .fetch(issuer, now)
        .await
        .map_err(|why| AppError::invalid("issuer", format!("issuer: its keys could not be read: {why}")))?;
    if keys.keys.is_empty() {
        return Err(AppError::invalid("issuer", "issuer: its JWKS holds no key"));
    }
    Ok(())
}

/// Trusts an issuer for the organization (org admins). Its discovery document and keys
/// are read now, so a mistyped URL is refused here rather than at the first JWT.
pub async fn add_issuer(app: &App, acting: &Acting<'_>, org: &str, request: NewIssuerRequest) -> Result<JwtIssuer> {
    acting.administrator()?;
    let org = admin_org(app, acting.caller, org).await?;
    let issuer = parse_issuer(&request.issuer)?;
    let audience = parse_audience(request.audience.as_deref())?;
    read_issuer_keys(app, &issuer, acting.now).await?;
    let audit = AuditContext::of(acting).entry(
        org.id,
        Action::JwtIssuerAdded,
        &issuer,
        Some(serde_json::json!({ "audience": audience.as_deref().unwrap_or(&org.name) })),
    );
    let added = app
        .store
        .create_jwt_issuer(
            NewJwtIssuer {
                org: org.id,
                issuer,
                audience,
                created_at: acting.now,
                created_by: Some(acting.caller.id()),
            },
            &audit,
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => AppError::AlreadyExists("this issuer"),
            e => e.into(),
        })?;
    tracing::info!(org.id = org.id.0, issuer = %added.issuer, "JWT issuer added");
    Ok(added)
}

/// Stops trusting an issuer. Sessions it already gave end at their own expiry (at most
/// [`MAX_SESSION_MS`]); delete them from the owner's list to end them now.
pub async fn remove_issuer(app: &App, acting: &Acting<'_>, org: &str, id: i64) -> Result<JwtIssuer> {
    acting.administrator()?;
    let org = admin_org(app, acting.caller, org).await?;
    let Some(known) = app
        .store
        .list_jwt_issuers(org.id)
        .await?
        .into_iter()
        .find(|i| i.id == id)
    else {
        return Err(AppError::NotFound(Missing::JwtIssuer));
    };
    let audit = AuditContext::of(acting).entry(org.id, Action::JwtIssuerRemoved, &known.issuer, None);
    let removed = app
        .store
        .delete_jwt_issuer(org.id, id, &audit)
        .await?
        .ok_or(AppError::NotFound(Missing::JwtIssuer))?;
    if app.store.jwt_issuers_named(&removed.issuer).await?.is_empty() {
        app.issuer_keys.forget(&removed.issuer);
    }
    tracing::info!(org.id = org.id.0, issuer = %removed.issuer, "JWT issuer removed");
    Ok(removed)
}

/// Why a grant was refused, in RFC 6749 §5.2's vocabulary. A stranger is never told
/// which check failed: every refusal of a JWT is `InvalidGrant`, and the log says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantError {
    /// Not `urn:ietf:params:oauth:grant-type:jwt-bearer`.
    UnsupportedGrantType,
    /// No assertion, or one too long.
    InvalidRequest(&'static str),
    InvalidGrant,
    /// Too many refusals from this address; retry after this many seconds.
    SlowDown {
        retry_after_secs: u64,
    },
    Internal(String),
}

impl From<StoreError> for GrantError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.to_string())
    }
}

/// The grant type of RFC 7523 §2.1.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// An access token, shown once.
pub struct Grant {
    pub access_token: keysmith_core::PlainKey,
    pub key_id: keysmith_core::KeyId,
    pub expires_at: i64,
    /// Whole seconds until `expires_at`, as the answer's `expires_in`.
    pub expires_in: i64,
    pub owner: User,
}

/// What is read of a JWT before its signature is checked: whose keys check it.
#[derive(serde::Deserialize)]
struct Issuer {
    iss: String,
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
    aud: Audience,
    exp: i64,
    nbf: Option<i64>,
}

/// `aud`: one audience, or several (RFC 7519 §4.1.3).
#[derive(serde::Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub(crate) fn has(&self, audience: &str) -> bool {
        match self {
            Self::One(one) => one == audience,
            Self::Many(many) => many.iter().any(|a| a == audience),
        }
    }
}

/// The signature algorithms taken: public-key ones only (no secret is shared with an
/// issuer, so HS256 and friends can never verify).
const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Why a JWT was refused, for the log only.
struct Refusal(String);

/// Exchanges a JWT for an access token (`POST /oidc/token`). `source` is the client's
/// address: refusals count against its failure limit, as wrong keys do.
pub async fn exchange(
    app: &App,
    grant_type: Option<&str>,
    assertion: Option<&str>,
    source: &str,
    now: i64,
) -> std::result::Result<Grant, GrantError> {
    let limit = limit_key(source);
    if let Err(retry_after_secs) = app.verifier.failures.check(&limit, now) {
        return Err(GrantError::SlowDown { retry_after_secs });
    }
    if grant_type != Some(JWT_BEARER) {
        return Err(GrantError::UnsupportedGrantType);
    }
    let assertion = match assertion {
        None | Some("") => return Err(GrantError::InvalidRequest("assertion is required")),
        Some(a) if a.len() > MAX_ASSERTION_BYTES => {
            return Err(GrantError::InvalidRequest("the assertion is too long"));
        }
        Some(a) => a,
    };
    match accept(app, assertion, source, now).await {
        Ok(grant) => Ok(grant),
        Err(Ok(Refusal(why))) => {
            app.verifier.failures.record_failure(&limit, now);
            tracing::info!(source.address = source, reason = %why, "JWT bearer grant refused");
            Err(GrantError::InvalidGrant)
        }
        Err(Err(e)) => Err(e),
    }
}

type Accepted = std::result::Result<Grant, std::result::Result<Refusal, GrantError>>;

fn refuse<T>(why: impl Into<String>) -> std::result::Result<T, std::result::Result<Refusal, GrantError>> {
    Err(Ok(Refusal(why.into())))
}

/// The `iss` a JWT names, read before its signature is checked, only to know whose
/// keys check it; nothing else from unverified claims is used.
pub(crate) fn peek_issuer(token: &str) -> Option<String> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let mut peek = Validation::new(header.alg);
    peek.insecure_disable_signature_validation();
    peek.validate_exp = false;
    peek.validate_aud = false;
    peek.required_spec_claims.clear();
    let unverified = jsonwebtoken::decode::<Issuer>(token, &DecodingKey::from_secret(&[]), &peek).ok()?;
    Some(unverified.claims.iss)
}

/// Verifies a JWT signed with one of `issuer`'s keys (fetched and cached by
/// [`IssuerKeys`]): a public-key algorithm, the key its `kid` names used with that key's
/// own algorithm when it names one, the signature, `iss`, and that `exp`, `iss`, `aud`
/// and `sub` are there. Time and audience are the caller's to judge. For identity
/// federation's JWTs and single sign-on's ID tokens alike; an error says why, for the log.
pub(crate) async fn verify_signed<C: serde::de::DeserializeOwned>(
    app: &App,
    token: &str,
    issuer: &str,
    now: i64,
) -> std::result::Result<C, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| "not a JWT".to_owned())?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(format!("algorithm {:?} is not taken", header.alg));
    }
    let jwk = match app.issuer_keys.key(issuer, header.kid.as_deref(), now).await {
        Ok(Some(jwk)) => jwk,
        Ok(None) => return Err("the issuer has no such key".into()),
        Err(why) => return Err(format!("the issuer's keys could not be read: {why}")),
    };
    // A key that names its algorithm is used with that one alone (RFC 7517 §4.4).
    if let Some(alg) = jwk.common.key_algorithm
        && alg.to_string().parse::<Algorithm>().ok() != Some(header.alg)
    {
        return Err(format!("the key is for {alg:?}, the JWT says {:?}", header.alg));
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| "the issuer's key is not usable".to_owned())?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.validate_aud = false;
    // Time is the application's clock, checked by the caller.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    jsonwebtoken::decode::<C>(token, &key, &validation)
        .map(|verified| verified.claims)
        .map_err(|_| "the signature did not verify, or iss, sub, aud or exp is missing".to_owned())
}

async fn accept(app: &App, assertion: &str, source: &str, now: i64) -> Accepted {
    let Some(iss) = peek_issuer(assertion) else {
        return refuse("not a JWT, or its claims name no issuer");
    };
    let registrations = app.store.jwt_issuers_named(&iss).await.map_err(|e| Err(e.into()))?;
    if registrations.is_empty() {
        return refuse("the issuer is not registered");
    }
    // The signature and the issuer are checked once; then the first registration of that
    // issuer whose audience the JWT carries says which organization it is for.
    let claims: Claims = match verify_signed(app, assertion, &iss, now).await {
        Ok(claims) => claims,
        Err(why) => return refuse(why),
    };
    let mut matched: Option<(JwtIssuer, Org)> = None;
    for registration in registrations {
        let Some(org) = app.store.get_org(registration.org).await.map_err(|e| Err(e.into()))? else {
            continue;
        };
        if claims.aud.has(registration.audience.as_deref().unwrap_or(&org.name)) {
            matched = Some((registration, org));
            break;
        }
    }
    let Some((registration, org)) = matched else {
        return refuse("the audience is not one the issuer is registered for");
    };
    let exp_ms = claims.exp.saturating_mul(1000);
    if exp_ms + LEEWAY_MS <= now {
        return refuse("the JWT has expired");
    }
    if claims.nbf.is_some_and(|nbf| nbf.saturating_mul(1000) - LEEWAY_MS > now) {
        return refuse("the JWT is not valid yet");
    }
    let identity = app
        .store
        .find_federated_identity(org.id, &claims.sub)
        .await
        .map_err(|e| Err(e.into()))?;
    let Some(owner) = identity else {
        return refuse("the subject names no user or service account of the organization");
    };
    if !owner.active {
        return refuse("the subject's user or service account is deactivated");
    }
    let expires_at = (now + MAX_SESSION_MS).min(exp_ms.max(now + 1000));
    let generated = generate_v1(&app.key_prefix).map_err(|e| Err(GrantError::Internal(e.to_string())))?;
    let owner_ref = keysmith_store::UserRef {
        id: owner.id,
        kind: owner.kind,
        username: owner.username.clone(),
    };
    let audit = AuditContext::by(owner_ref, source, now).entry(
        org.id,
        Action::FederatedSessionCreated,
        generated.key_id.as_str(),
        Some(serde_json::json!({
            "issuer": registration.issuer,
            "subject": claims.sub,
            "expires_at": rfc3339(expires_at),
        })),
    );
    app.store
        .insert_key(
            NewKey {
                key_id: generated.key_id.clone(),
                digest: generated.digest,
                format: KeyFormat::V1,
                display: generated.display.clone(),
                name: SESSION_NAME.to_owned(),
                owner: owner.id,
                created_by: None,
                created_at: now,
                expires_at: Some(expires_at),
                rotated_from: None,
                federated_issuer: Some(registration.issuer.clone()),
                scope: KeyScope::Admin,
                allowed_networks: None,
                requests_per_minute: None,
            },
            &audit,
        )
        .await
        .map_err(|e| Err(e.into()))?;
    // The address's failures are not forgiven by a success, as with keys: otherwise a
    // holder of one good JWT could reset the budget for guessing keys between guesses.
    tracing::info!(
        key.id = %generated.key_id,
        user.id = owner.id.0,
        org.id = org.id.0,
        issuer = %registration.issuer,
        "federated session created"
    );
    Ok(Grant {
        access_token: generated.plaintext,
        key_id: generated.key_id,
        expires_at,
        expires_in: (expires_at - now) / 1000,
        owner,
    })
}
