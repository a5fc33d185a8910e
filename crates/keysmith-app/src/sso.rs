//! Single sign-on for the web interface with OpenID Connect (the authorization code
//! flow with PKCE, state and nonce): an organization admin registers the
//! organization's provider; people sign in through it, matched by their verified email;
//! the provider's groups decide their organization role and teams at each sign-in.
//!
//! The rules live here: which providers, what an ID token must hold (its signature by
//! the provider's keys, `iss`, `aud`, `exp`, `nonce`, a verified email), who it names,
//! whether a new person gets an account, and what their groups make them. The HTTP of
//! the flow (the redirect, the token request) is the door's: the server hands in the ID
//! token it received. The provider's keys are fetched and cached by the same
//! [`crate::federation::IssuerKeys`] as identity federation's issuers, and ID tokens are
//! checked by the same code ([`crate::federation::verify_signed`]).
//!
//! The flow's state (state, nonce, PKCE verifier) lives in a cookie sealed with the
//! server's secret ([`LoginState`]), so nothing is stored and any replica can finish a
//! sign-in another one began.

use crate::access::admin_org;
use crate::audit::{Action, AuditContext};
use crate::error::{AppError, Missing, Result};
use crate::federation::{Audience, LEEWAY_MS, verify_signed};
use crate::webhooks::ServerSecret;
use crate::{Acting, App, users};
use base64::Engine;
use hmac::{Hmac, Mac};
use keysmith_core::SecretString;
use keysmith_core::role::{OrgRole, PrincipalKind, TeamRole};
use keysmith_store::{NewSsoProvider, NewUser, Org, SsoProvider, StoreError, User, UserRef};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How long a sign-in may take between leaving for the provider and coming back.
pub const LOGIN_TTL_MS: i64 = 10 * crate::time::MINUTE_MS;
/// The scopes asked for when the admin names none.
pub const DEFAULT_SCOPES: &str = "openid email profile";
/// The claim holding groups when the admin names none.
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";
/// The claim holding the email people are matched by when the admin names none.
pub const DEFAULT_EMAIL_CLAIM: &str = "email";
/// The longest client secret file read.
const MAX_SECRET_BYTES: u64 = 4096;

/// A rule from the provider's groups to a role: people in `group` get `org_role` in the
/// organization, and membership of `team` with `team_role` (member when not named).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRule {
    pub group: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_role: Option<String>,
}

/// A provider to register.
#[derive(Debug, Clone, Default)]
pub struct NewProviderRequest {
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    /// The name of the file holding the client secret, in the server's
    /// `sso_secrets_dir` (set by the operator): a name, never a path.
    pub client_secret_file: String,
    pub scopes: Option<String>,
    pub groups_claim: Option<String>,
    /// The claim holding the email people are matched by (default `email`, which must
    /// be verified); another, such as Entra ID's `preferred_username`, is trusted as the
    /// provider's own account name.
    pub email_claim: Option<String>,
    /// Whether a verified email no user has creates a member.
    pub jit: bool,
    pub group_rules: Vec<GroupRule>,
}

/// The rules of a provider, read back.
pub fn group_rules(provider: &SsoProvider) -> Vec<GroupRule> {
    serde_json::from_str(&provider.group_rules).unwrap_or_default()
}

fn text_field(field: &'static str, value: &str, max: usize) -> Result<String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(AppError::invalid(
            field,
            format!("{field}: 1 to {max} characters, no control characters"),
        ));
    }
    Ok(value.to_owned())
}

/// The organization's providers (org admins).
pub async fn list_providers(app: &App, caller: &crate::Caller, org: &str) -> Result<Vec<SsoProvider>> {
    let org = admin_org(app, caller, org).await?;
    Ok(app.store.list_sso_providers(Some(org.id)).await?)
}

/// What the sign-in page offers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignInChoices {
    /// Every provider: (ID, name).
    pub providers: Vec<(i64, String)>,
    /// An organization with a provider requires single sign-on: the buttons come first
    /// and the password form is for its admins.
    pub sso_first: bool,
}

/// Every provider, for the sign-in page's buttons.
pub async fn sign_in_choices(app: &App) -> Result<SignInChoices> {
    let providers = app.store.list_sso_providers(None).await?;
    let mut orgs: Vec<_> = providers.iter().map(|p| p.org).collect();
    orgs.dedup();
    let mut sso_first = false;
    for org in orgs {
        sso_first |= app.store.get_org(org).await?.is_some_and(|o| o.sso_required);
    }
    Ok(SignInChoices {
        providers: providers.into_iter().map(|p| (p.id, p.name)).collect(),
        sso_first,
    })
}

/// Registers a provider (org admins). Its keys are read now and its client secret file
/// must be readable, so a mistake is refused here rather than at the first sign-in.
pub async fn add_provider(
    app: &App,
    acting: &Acting<'_>,
    org: &str,
    request: NewProviderRequest,
) -> Result<SsoProvider> {
    acting.administrator()?;
    let org = admin_org(app, acting.caller, org).await?;
    let new = checked(app, &org, request, Some(acting.caller.id()), acting.now).await?;
    crate::federation::read_issuer_keys(app, &new.issuer, acting.now).await?;
    let audit = AuditContext::of(acting).entry(org.id, Action::SsoProviderAdded, &new.name, Some(added_detail(&new)));
    let added = create(app, new, &audit).await?;
    tracing::info!(org.id = org.id.0, provider.id = added.id, issuer = %added.issuer, "single sign-on provider added");
    Ok(added)
}

fn added_detail(new: &NewSsoProvider) -> serde_json::Value {
    serde_json::json!({ "issuer": new.issuer, "client_id": new.client_id, "jit": new.jit })
}

async fn create(app: &App, new: NewSsoProvider, audit: &[keysmith_store::NewAuditEntry]) -> Result<SsoProvider> {
    app.store.create_sso_provider(new, audit).await.map_err(|e| match e {
        StoreError::Conflict(_) => AppError::AlreadyExists("a single sign-on provider with this name"),
        e => e.into(),
    })
}

/// A provider to store, every field checked (its keys are the caller's to read).
async fn checked(
    app: &App,
    org: &Org,
    request: NewProviderRequest,
    created_by: Option<keysmith_core::UserId>,
    now: i64,
) -> Result<NewSsoProvider> {
    let name = text_field("name", &request.name, 64)?;
    let issuer = crate::federation::parse_issuer(&request.issuer)?;
    let client_id = text_field("client_id", &request.client_id, 255)?;
    let secret_file = text_field("client_secret_file", &request.client_secret_file, 255)?;
    read_secret(app, &secret_file).map_err(|why| AppError::invalid("client_secret_file", why))?;
    let scopes = text_field("scopes", request.scopes.as_deref().unwrap_or(DEFAULT_SCOPES), 512)?;
    let scopes = scopes.split_whitespace().collect::<Vec<_>>().join(" ");
    if !scopes.split(' ').any(|s| s == "openid") {
        return Err(AppError::invalid("scopes", "scopes: must include openid"));
    }
    let groups_claim = text_field(
        "groups_claim",
        request.groups_claim.as_deref().unwrap_or(DEFAULT_GROUPS_CLAIM),
        128,
    )?;
    let email_claim = text_field(
        "email_claim",
        request.email_claim.as_deref().unwrap_or(DEFAULT_EMAIL_CLAIM),
        128,
    )?;
    for rule in &request.group_rules {
        check_rule(app, org, rule).await?;
    }
    Ok(NewSsoProvider {
        email_claim,
        org: org.id,
        name,
        issuer,
        client_id,
        client_secret_file: secret_file,
        scopes,
        groups_claim,
        jit: request.jit,
        group_rules: serde_json::to_string(&request.group_rules).map_err(|e| AppError::Internal(e.to_string()))?,
        created_at: now,
        created_by,
    })
}

/// A provider the operator's configuration file declares (`[[sso_providers]]`).
#[derive(Debug, Clone)]
pub struct ConfiguredProvider {
    /// The organization's name.
    pub org: String,
    pub request: NewProviderRequest,
}

/// Makes the configuration file's providers exist as declared, at start: each is
/// added, or replaced when the file changed it (matched by organization and name);
/// providers added through the API or web are left alone. Audited as the operator's.
/// A provider whose keys cannot be read now is kept, with a warning: the provider may
/// be down while Keysmith starts. Returns how many were added or replaced.
pub async fn apply_configured(app: &App, providers: &[ConfiguredProvider], now: i64) -> Result<usize> {
    let mut changed = 0;
    for configured in providers {
        let org = app.store.find_org(&configured.org).await?.ok_or_else(|| {
            AppError::invalid(
                "sso_providers",
                format!("sso_providers: no organization named {}", configured.org),
            )
        })?;
        let new = checked(app, &org, configured.request.clone(), None, now).await?;
        let existing = app
            .store
            .list_sso_providers(Some(org.id))
            .await?
            .into_iter()
            .find(|p| p.name.eq_ignore_ascii_case(&new.name));
        let same = |p: &SsoProvider| {
            (
                &p.name,
                &p.issuer,
                &p.client_id,
                &p.client_secret_file,
                &p.scopes,
                &p.groups_claim,
                p.jit,
                &p.group_rules,
            ) == (
                &new.name,
                &new.issuer,
                &new.client_id,
                &new.client_secret_file,
                &new.scopes,
                &new.groups_claim,
                new.jit,
                &new.group_rules,
            )
        };
        let audit = AuditContext::operator(now);
        match existing {
            Some(p) if same(&p) => continue,
            Some(p) => {
                let entry = audit.entry(
                    org.id,
                    Action::SsoProviderRemoved,
                    &p.name,
                    Some(serde_json::json!({ "via": "config" })),
                );
                app.store.delete_sso_provider(org.id, p.id, &entry).await?;
            }
            None => {}
        }
        if let Err(e) = crate::federation::read_issuer_keys(app, &new.issuer, now).await {
            tracing::warn!(issuer = %new.issuer, error = %e, "a configured single sign-on provider's keys cannot be read now");
        }
        let mut detail = added_detail(&new);
        detail["via"] = "config".into();
        let entry = audit.entry(org.id, Action::SsoProviderAdded, &new.name, Some(detail));
        let added = create(app, new, &entry).await?;
        tracing::info!(
            org.id = org.id.0,
            provider.id = added.id,
            "single sign-on provider configured"
        );
        changed += 1;
    }
    Ok(changed)
}

async fn check_rule(app: &App, org: &Org, rule: &GroupRule) -> Result<()> {
    text_field("group_rules", &rule.group, 255)?;
    if let Some(role) = &rule.org_role {
        crate::input::org_role(role)?;
    }
    if let Some(role) = &rule.team_role {
        crate::input::team_role(role)?;
        if rule.team.is_none() {
            return Err(AppError::invalid("group_rules", "group_rules: team_role needs a team"));
        }
    }
    if let Some(team) = &rule.team
        && app.store.find_team(org.id, team).await?.is_none()
    {
        return Err(AppError::invalid(
            "group_rules",
            format!("group_rules: no team named {team} in the organization"),
        ));
    }
    if rule.org_role.is_none() && rule.team.is_none() {
        return Err(AppError::invalid(
            "group_rules",
            "group_rules: a rule names an org_role or a team",
        ));
    }
    Ok(())
}

/// Removes a provider (org admins). Sessions begun through it go on until they end.
pub async fn remove_provider(app: &App, acting: &Acting<'_>, org: &str, id: i64) -> Result<SsoProvider> {
    acting.administrator()?;
    let org = admin_org(app, acting.caller, org).await?;
    let known = app
        .store
        .list_sso_providers(Some(org.id))
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or(AppError::NotFound(Missing::SsoProvider))?;
    let audit = AuditContext::of(acting).entry(org.id, Action::SsoProviderRemoved, &known.name, None);
    let removed = app
        .store
        .delete_sso_provider(org.id, id, &audit)
        .await?
        .ok_or(AppError::NotFound(Missing::SsoProvider))?;
    tracing::info!(
        org.id = org.id.0,
        provider.id = removed.id,
        "single sign-on provider removed"
    );
    Ok(removed)
}

/// The client secret, read from its file in the secrets directory (at each sign-in, so
/// a rotated secret is picked up); the error is a sentence without the secret. Only a
/// plain file name is taken: an organization admin must not make the server read (and
/// send to a token endpoint of their choosing) any other file.
pub fn read_secret(app: &App, name: &str) -> std::result::Result<SecretString, String> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !plain {
        return Err(format!(
            "client_secret_file: {name:?} is not a file name (letters, digits, `.`, `_`, `-`) in the server's sso_secrets_dir"
        ));
    }
    let path = app.sso_secrets_dir.join(name);
    let shown = path.display();
    let meta = std::fs::metadata(&path).map_err(|e| format!("client_secret_file: cannot read {shown}: {e}"))?;
    if !meta.is_file() || meta.len() > MAX_SECRET_BYTES {
        return Err(format!(
            "client_secret_file: {shown} is not a file of at most {MAX_SECRET_BYTES} bytes"
        ));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("client_secret_file: cannot read {shown}: {e}"))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("client_secret_file: {shown} is empty"));
    }
    Ok(SecretString::new(secret.to_owned()))
}

// ------------------------------------------------------------------ the flow's state

/// What a sign-in carries from leaving for the provider to coming back: in a cookie,
/// sealed with the server's secret so that it cannot be made up or changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    /// The provider's ID.
    pub provider: i64,
    /// The `state` parameter, which the callback must give back.
    pub state: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier (RFC 7636).
    pub verifier: String,
    /// Where to go once signed in (a local path).
    pub next: String,
    /// Unix ms after which the sign-in must start again.
    pub expires_at: i64,
}

type HmacSha256 = Hmac<Sha256>;

fn random_token() -> Result<String> {
    keysmith_core::base62::random_string(43).map_err(|e| AppError::Internal(e.to_string()))
}

fn seal_mac(secret: &ServerSecret, payload: &str) -> Result<Vec<u8>> {
    let mut mac = HmacSha256::new_from_slice(&secret.0).map_err(|e| AppError::Internal(e.to_string()))?;
    mac.update(b"keysmith-sso-login-v1:");
    mac.update(payload.as_bytes());
    Ok(mac.finalize().into_bytes().to_vec())
}

impl LoginState {
    /// A fresh sign-in with `provider`: random state, nonce and verifier.
    pub fn new(provider: i64, next: &str, now: i64) -> Result<Self> {
        Ok(Self {
            provider,
            state: random_token()?,
            nonce: random_token()?,
            verifier: random_token()?,
            next: next.to_owned(),
            expires_at: now + LOGIN_TTL_MS,
        })
    }

    /// The PKCE challenge (S256) of the verifier.
    pub fn challenge(&self) -> String {
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()))
    }

    /// The cookie value: the state as base64url JSON, a dot, and its MAC.
    pub fn seal(&self, secret: &ServerSecret) -> Result<String> {
        let json = serde_json::to_string(self).map_err(|e| AppError::Internal(e.to_string()))?;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
        let mac = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(seal_mac(secret, &payload)?);
        Ok(format!("{payload}.{mac}"))
    }

    /// The state a cookie holds, if this server sealed it and it has not expired.
    pub fn open(secret: &ServerSecret, sealed: &str, now: i64) -> Option<Self> {
        let (payload, mac) = sealed.split_once('.')?;
        let given = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(mac).ok()?;
        let expected = seal_mac(secret, payload).ok()?;
        if !bool::from(given.ct_eq(&expected)) {
            return None;
        }
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
        let state: Self = serde_json::from_slice(&json).ok()?;
        (state.expires_at > now).then_some(state)
    }

    /// Whether the callback's `state` is this sign-in's.
    pub fn matches(&self, state: &str) -> bool {
        state.len() == self.state.len() && bool::from(state.as_bytes().ct_eq(self.state.as_bytes()))
    }
}

// ------------------------------------------------------------------ the ID token

/// Why a sign-in through a provider was refused. The person is told which of these;
/// the log says more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsoRefusal {
    /// The ID token failed a check (signature, issuer, audience, expiry, nonce).
    #[error("the identity provider's answer could not be verified")]
    Untrusted(String),
    #[error("the identity provider has not verified your email address")]
    EmailUnverified,
    #[error("no Keysmith account has the email address {0} in this organization; ask an admin to add you")]
    NoAccount(String),
    #[error("your Keysmith account is deactivated")]
    Deactivated,
    #[error("{0}")]
    App(AppError),
}

impl From<AppError> for SsoRefusal {
    fn from(e: AppError) -> Self {
        Self::App(e)
    }
}

impl From<StoreError> for SsoRefusal {
    fn from(e: StoreError) -> Self {
        Self::App(e.into())
    }
}

#[derive(Deserialize)]
struct IdClaims {
    sub: String,
    aud: Audience,
    azp: Option<String>,
    exp: i64,
    nonce: Option<String>,
    email: Option<String>,
    email_verified: Option<Value>,
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

/// `email_verified`: `true`, or the string "true" some providers send.
fn verified(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// The provider's groups in the ID token: a list of strings, or one string.
fn groups(claims: &IdClaims, claim: &str) -> Vec<String> {
    match claims.other.get(claim) {
        Some(Value::Array(list)) => list.iter().filter_map(|g| g.as_str().map(str::to_owned)).collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

/// Finishes a sign-in: checks the ID token the provider gave for `login`, finds (or,
/// just in time, creates) the person it names, and applies the provider's group rules.
/// Returns the user to start a session for.
pub async fn complete(
    app: &App,
    provider: &SsoProvider,
    login: &LoginState,
    id_token: &str,
    source: &str,
    now: i64,
) -> std::result::Result<User, SsoRefusal> {
    let untrusted = |why: String| {
        tracing::info!(provider.id = provider.id, source.address = source, reason = %why, "single sign-on refused");
        SsoRefusal::Untrusted(why)
    };
    let claims: IdClaims = verify_signed(app, id_token, &provider.issuer, now)
        .await
        .map_err(untrusted)?;
    if !claims.aud.has(&provider.client_id) {
        return Err(untrusted("the ID token is for another client (aud)".into()));
    }
    // OpenID Connect Core §3.1.3.7: with several audiences, the one it was issued to.
    if matches!(claims.aud, Audience::Many(ref many) if many.len() > 1)
        && claims.azp.as_deref() != Some(provider.client_id.as_str())
    {
        return Err(untrusted("the ID token has several audiences and another azp".into()));
    }
    if claims.exp.saturating_mul(1000) + LEEWAY_MS <= now {
        return Err(untrusted("the ID token has expired".into()));
    }
    let nonce_ok = claims
        .nonce
        .as_deref()
        .is_some_and(|n| n.len() == login.nonce.len() && bool::from(n.as_bytes().ct_eq(login.nonce.as_bytes())));
    if !nonce_ok {
        return Err(untrusted("the ID token's nonce is not this sign-in's".into()));
    }
    // `email` counts only when the provider vouches for it; another claim the admin
    // names (Entra ID's `preferred_username`) is the provider's own account name.
    let email = if provider.email_claim == DEFAULT_EMAIL_CLAIM {
        if !verified(claims.email_verified.as_ref()) {
            tracing::info!(provider.id = provider.id, sub = %claims.sub, "single sign-on refused: email not verified");
            return Err(SsoRefusal::EmailUnverified);
        }
        claims.email.clone()
    } else {
        claims
            .other
            .get(&provider.email_claim)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let Some(email) = email.as_deref().map(str::trim).filter(|e| e.contains('@')) else {
        return Err(untrusted(format!(
            "the ID token has no email in {}",
            provider.email_claim
        )));
    };
    let org = app
        .store
        .get_org(provider.org)
        .await?
        .ok_or(AppError::NotFound(Missing::Org))?;
    let user = match find_member(app, &org, email).await? {
        Some(user) => user,
        None if provider.jit => create_member(app, provider, &org, email, source, now).await?,
        None => {
            tracing::info!(
                provider.id = provider.id,
                "single sign-on refused: no account for the email"
            );
            return Err(SsoRefusal::NoAccount(email.to_owned()));
        }
    };
    if !user.active {
        return Err(SsoRefusal::Deactivated);
    }
    apply_group_rules(
        app,
        provider,
        &org,
        &user,
        &groups(&claims, &provider.groups_claim),
        source,
        now,
    )
    .await?;
    tracing::info!(
        user.id = user.id.0,
        provider.id = provider.id,
        "signed in through single sign-on"
    );
    Ok(user)
}

/// The person of `org` whose email this is (without case).
async fn find_member(app: &App, org: &Org, email: &str) -> Result<Option<User>> {
    let Some((user, _)) = app.store.find_user_for_sign_in(email).await? else {
        return Ok(None);
    };
    let same = user.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(email));
    let member = app.store.memberships(user.id).await?.iter().any(|m| m.org.id == org.id);
    Ok((same && member && user.kind == PrincipalKind::User).then_some(user))
}

/// A member made at first sign-in (the provider's `jit`): a username from the email,
/// no password (they sign in through the provider), audited as made by single sign-on.
async fn create_member(
    app: &App,
    provider: &SsoProvider,
    org: &Org,
    email: &str,
    source: &str,
    now: i64,
) -> std::result::Result<User, SsoRefusal> {
    let email = crate::input::Email::parse(email)?;
    let username = users::unused_name(app, email.local_part(), "user").await?;
    let audit = AuditContext::reported(now, source).entry(
        org.id,
        Action::UserCreated,
        username.as_str(),
        Some(serde_json::json!({ "role": "member", "via": "sso", "provider": provider.name })),
    );
    let user = NewUser {
        kind: PrincipalKind::User,
        username: username.to_string(),
        email: Some(email.into_string()),
        password_hash: None,
    };
    let user = app
        .store
        .create_member(user, org.id, OrgRole::Member, now, &audit)
        .await?;
    tracing::info!(
        user.id = user.id.0,
        org.id = org.id.0,
        "user created at first single sign-on"
    );
    Ok(user)
}

/// Applies the provider's group rules to the person signing in: when a rule names an
/// organization role, the role is the highest a matching rule gives (member when none
/// matches); each team a rule names has the person as a member with the highest role a
/// matching rule gives, and not at all when none matches. Teams and roles no rule names
/// are left alone. Each change is audited with the person as the actor.
async fn apply_group_rules(
    app: &App,
    provider: &SsoProvider,
    org: &Org,
    user: &User,
    groups: &[String],
    source: &str,
    now: i64,
) -> Result<()> {
    let rules = group_rules(provider);
    if rules.is_empty() {
        return Ok(());
    }
    let matching: Vec<&GroupRule> = rules.iter().filter(|r| groups.contains(&r.group)).collect();
    let actor = UserRef {
        id: user.id,
        kind: user.kind,
        username: user.username.clone(),
    };
    let audit = AuditContext::by(actor, source, now);
    let detail = |mut value: Value| {
        value["via"] = "sso".into();
        value["provider"] = provider.name.clone().into();
        Some(value)
    };
    if rules.iter().any(|r| r.org_role.is_some()) {
        let admin = matching.iter().any(|r| r.org_role.as_deref() == Some("admin"));
        let wanted = if admin { OrgRole::Admin } else { OrgRole::Member };
        let current = app
            .store
            .memberships(user.id)
            .await?
            .into_iter()
            .find(|m| m.org.id == org.id)
            .map(|m| m.role);
        if current.is_some_and(|c| c != wanted) {
            let entry = audit.entry(
                org.id,
                Action::UserRoleChanged,
                &user.username,
                detail(serde_json::json!({ "to": wanted.as_str() })),
            );
            match app.store.set_org_role(org.id, user.id, wanted, &entry).await {
                Ok(_) => {}
                Err(StoreError::Refused(_)) => {
                    tracing::warn!(
                        user.id = user.id.0,
                        "group rules would remove the last admin; role kept"
                    );
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    let current_teams = app.store.user_teams(user.id).await?;
    let mut named: Vec<&str> = rules.iter().filter_map(|r| r.team.as_deref()).collect();
    named.sort_unstable();
    named.dedup();
    for team_name in named {
        let Some(team) = app.store.find_team(org.id, team_name).await? else {
            tracing::warn!(
                provider.id = provider.id,
                team = team_name,
                "a group rule names a team that is gone"
            );
            continue;
        };
        let roles: Vec<TeamRole> = matching
            .iter()
            .filter(|r| r.team.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(team_name)))
            .map(|r| {
                r.team_role
                    .as_deref()
                    .and_then(TeamRole::parse)
                    .unwrap_or(TeamRole::Member)
            })
            .collect();
        let wanted = if roles.contains(&TeamRole::Admin) {
            Some(TeamRole::Admin)
        } else {
            roles.first().copied()
        };
        let now_role = current_teams.iter().find(|(t, _)| t.id == team.id).map(|(_, r)| *r);
        match (now_role, wanted) {
            (current, Some(role)) if current != Some(role) => {
                let entry = audit.entry(
                    org.id,
                    Action::TeamMemberSet,
                    &team.name,
                    detail(serde_json::json!({ "user": user.username, "role": role.as_str() })),
                );
                app.store.set_team_member(team.id, user.id, role, now, &entry).await?;
            }
            (Some(_), None) => {
                let entry = audit.entry(
                    org.id,
                    Action::TeamMemberRemoved,
                    &team.name,
                    detail(serde_json::json!({ "user": user.username })),
                );
                app.store.remove_team_member(team.id, user.id, &entry).await?;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_login_opens_only_unchanged_with_the_same_secret_before_it_expires() {
        let secret = ServerSecret([7; 32]);
        let login = LoginState::new(3, "/settings", 1_000).unwrap();
        let sealed = login.seal(&secret).unwrap();
        assert_eq!(LoginState::open(&secret, &sealed, 2_000), Some(login.clone()));
        assert!(login.matches(&login.state) && !login.matches("other") && !login.matches(""));
        assert_eq!(
            LoginState::open(&secret, &sealed, 1_000 + LOGIN_TTL_MS),
            None,
            "expired"
        );
        assert_eq!(
            LoginState::open(&ServerSecret([8; 32]), &sealed, 2_000),
            None,
            "another server's"
        );
        let (payload, mac) = sealed.split_once('.').unwrap();
        let mut forged = login.clone();
        forged.provider = 4;
        let forged_payload = forged.seal(&ServerSecret([8; 32])).unwrap();
        let (forged_payload, _) = forged_payload.split_once('.').unwrap();
        assert_eq!(
            LoginState::open(&secret, &format!("{forged_payload}.{mac}"), 2_000),
            None
        );
        assert_eq!(LoginState::open(&secret, payload, 2_000), None, "no MAC");
        // PKCE S256 (RFC 7636 appendix B's example).
        let rfc = LoginState {
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
            ..login
        };
        assert_eq!(rfc.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn email_verified_is_true_or_the_string_true() {
        assert!(verified(Some(&Value::Bool(true))));
        assert!(verified(Some(&Value::from("TRUE"))));
        for no in [
            None,
            Some(Value::Bool(false)),
            Some(Value::from("false")),
            Some(Value::from(1)),
        ] {
            assert!(!verified(no.as_ref()), "{no:?}");
        }
    }
}
