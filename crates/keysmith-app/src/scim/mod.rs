//! SCIM 2.0 provisioning (RFC 7643, RFC 7644): an organization's identity provider
//! creates, changes, deactivates and deletes its users and teams (SCIM's Groups).
//!
//! A SCIM client is an organization admin's key or an organization service account's
//! key, as at W&B; a team service account's key is refused. Every change runs through
//! the same actions as every other door (the org role, deactivation with its fan-out,
//! deletion with the user's keys, team membership), audited with the SCIM client as
//! the actor.
//!
//! Resources are JSON, built here so that every door answers the same: the attributes
//! Keysmith acts on are read from where they live (the email, the role, whether the
//! user is active, team membership), and the rest (userName, displayName, externalId,
//! the emails as written) from the record of what the identity provider wrote
//! ([`keysmith_store::ScimRecord`]), so that a read gives back exactly what was written
//! and an attribute removed reads back absent (RFC 7644 §3.5.2.2).
//!
//! Keysmith's own names are fixed when a user or team is created: the username is the
//! `userName` when that is a valid name (else one made from it), and the team name the
//! `displayName` likewise. A later `userName` or `displayName` is the identity
//! provider's to change; the name keys and entities carry stays (W&B cannot rename
//! teams either).

pub mod discovery;
pub mod filter;
pub mod patch;

use crate::caller::Caller;
use crate::error::{AppError, Missing, Result as AppResult};
use crate::input::{self, Email};
use crate::users::{self, NewUserRequest, UserChange};
use crate::{Acting, App, AuditContext, audit::Action, teams};
use keysmith_core::policy::OwnerScope;
use keysmith_core::role::{OrgRole, PrincipalKind, TeamRole};
use keysmith_core::{EntityName, KeyDigest, TeamId, UserId};
use keysmith_store::{Org, OrgMember, ScimRecord, Team, User};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// Resources per page at most, and when the client names no `count`.
pub const MAX_RESULTS: usize = 200;

/// The longest string attribute kept (userName, displayName, externalId, email type).
const MAX_TEXT: usize = 255;

/// Emails per user at most.
const MAX_EMAILS: usize = 16;

/// The two kinds of resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Group,
}

impl Kind {
    pub fn schema(self) -> &'static str {
        match self {
            Self::User => USER_SCHEMA,
            Self::Group => GROUP_SCHEMA,
        }
    }

    /// `User` or `Group`: the resource type's name and ID.
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Group => "Group",
        }
    }

    /// `Users` or `Groups`: the endpoint under the base.
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::User => "Users",
            Self::Group => "Groups",
        }
    }

    /// A resource's SCIM id: `u7-18f3a…` for user 7 created at that time (hex
    /// milliseconds), `t3-…` for team 3. The prefix keeps the two apart in a search over
    /// both (`POST /.search`); the time keeps an id from ever naming another resource,
    /// though SQLite may give a deleted row's number to a new one (RFC 7643 §3.1: an
    /// id is never reassigned).
    pub fn id(self, n: i64, created_at: i64) -> String {
        format!("{}{n}-{created_at:x}", self.id_prefix())
    }

    /// The number and creation time a SCIM id names; `None` for an id not of this kind.
    pub fn parse_id(self, id: &str) -> Option<(i64, i64)> {
        let (n, created) = id.strip_prefix(self.id_prefix())?.split_once('-')?;
        Some((n.parse().ok()?, i64::from_str_radix(created, 16).ok()?))
    }

    fn id_prefix(self) -> char {
        match self {
            Self::User => 'u',
            Self::Group => 't',
        }
    }

    /// The attributes a client writes.
    fn writable(self) -> &'static [&'static str] {
        match self {
            Self::User => &[
                "userName",
                "displayName",
                "externalId",
                "emails",
                "active",
                "organizationRole",
            ],
            Self::Group => &["displayName", "externalId", "members"],
        }
    }

    /// The attributes only Keysmith writes.
    fn read_only(self) -> &'static [&'static str] {
        match self {
            Self::User => &["id", "meta", "schemas", "teamRoles"],
            Self::Group => &["id", "meta", "schemas"],
        }
    }

    fn is_multi(self, name: &str) -> bool {
        matches!((self, name), (Self::User, "emails") | (Self::Group, "members"))
    }

    /// Every attribute a filter may name.
    pub fn attributes(self) -> Vec<&'static str> {
        [self.writable(), self.read_only()].concat()
    }
}

/// RFC 7644 §3.12's `scimType` of a 400 answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    Mutability,
    Uniqueness,
}

impl ScimType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidFilter => "invalidFilter",
            Self::InvalidSyntax => "invalidSyntax",
            Self::InvalidPath => "invalidPath",
            Self::NoTarget => "noTarget",
            Self::InvalidValue => "invalidValue",
            Self::Mutability => "mutability",
            Self::Uniqueness => "uniqueness",
        }
    }
}

/// What a SCIM action answers instead of a resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScimError {
    /// What every door may be told (not found, forbidden, conflict, …).
    #[error("{0}")]
    App(AppError),
    /// A request SCIM's own rules refuse.
    #[error("{detail}")]
    Bad { scim_type: ScimType, detail: String },
    /// `If-Match` names a version that is no longer current.
    #[error("the resource has changed since the version given in If-Match; read it again")]
    PreconditionFailed,
}

impl ScimError {
    pub fn bad(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::Bad {
            scim_type,
            detail: detail.into(),
        }
    }

    fn taken(what: &str) -> Self {
        Self::bad(
            ScimType::Uniqueness,
            format!("{what} is already taken in the organization"),
        )
    }
}

impl From<AppError> for ScimError {
    fn from(e: AppError) -> Self {
        Self::App(e)
    }
}

impl From<keysmith_store::StoreError> for ScimError {
    fn from(e: keysmith_store::StoreError) -> Self {
        Self::App(e.into())
    }
}

pub type Result<T, E = ScimError> = std::result::Result<T, E>;

/// A SCIM client: the organization it provisions, and the caller acting for it (an
/// organization service account acts with the organization admin's power here).
#[derive(Debug, Clone)]
pub struct ScimClient {
    pub org: Org,
    caller: Caller,
}

/// One SCIM request: the application, the client, who acts from where and when (for
/// the audit log), and the base URL resources are located under.
pub struct Call<'a> {
    pub app: &'a App,
    pub client: &'a ScimClient,
    pub acting: Acting<'a>,
    pub base: &'a Base,
}

impl<'a> Call<'a> {
    pub fn new(app: &'a App, client: &'a ScimClient, base: &'a Base, source: &'a str) -> Self {
        Self {
            app,
            client,
            acting: Acting::new(&client.caller, source, app.now()),
            base,
        }
    }
}

/// The SCIM client a key's caller is: an admin of exactly one organization, or an
/// organization service account.
pub async fn client(app: &App, caller: Caller) -> Result<ScimClient> {
    let forbidden = |m| Err(ScimError::App(AppError::Forbidden(m)));
    // Provisioning is administration, reads included (a directory of every member).
    caller.require_scope(keysmith_core::policy::SCOPE_FOR_ADMINISTRATION)?;
    if caller.principal.user.kind == PrincipalKind::ServiceAccount {
        return match app.store.owner_scope(caller.id()).await? {
            Some(OwnerScope::OrgServiceAccount { org }) => {
                let org = app.store.get_org(org).await?.ok_or(AppError::NotFound(Missing::Org))?;
                let mut roles = (*caller.roles).clone();
                roles.admin_of_orgs.insert(org.id);
                let caller = Caller {
                    roles: Arc::new(roles),
                    ..caller
                };
                Ok(ScimClient { org, caller })
            }
            _ => forbidden(
                "a team service account's key cannot provision users; use an organization service account's key",
            ),
        };
    }
    let mut orgs = caller.roles.admin_of_orgs.iter();
    match (orgs.next(), orgs.next()) {
        (Some(org), None) => {
            let org = app.store.get_org(*org).await?.ok_or(AppError::NotFound(Missing::Org))?;
            Ok(ScimClient { org, caller })
        }
        (None, _) => forbidden("only organization admins and organization service accounts may use SCIM"),
        (Some(_), Some(_)) => forbidden(
            "this key's owner administers several organizations; use the key of an organization service account of the one to provision",
        ),
    }
}

/// Where resources live, for `meta.location` and `members.$ref`: the SCIM base URL as
/// the client reached it (`https://keys.example.com/scim/v2`).
#[derive(Debug, Clone)]
pub struct Base(pub String);

impl Base {
    pub fn location(&self, kind: Kind, id: &str) -> String {
        format!("{}/{}/{id}", self.0, kind.endpoint())
    }
}

// ------------------------------------------------------------------ reading

/// Everything SCIM shows of an organization, read at once.
struct Snapshot {
    members: Vec<OrgMember>,
    user_records: BTreeMap<UserId, ScimRecord>,
    teams: Vec<Team>,
    team_records: BTreeMap<TeamId, ScimRecord>,
    /// Each team's members (users, not service accounts), with their team roles.
    team_members: BTreeMap<TeamId, Vec<(UserId, TeamRole)>>,
}

async fn snapshot(app: &App, org: &Org) -> Result<Snapshot> {
    let members = app
        .store
        .org_members(org.id)
        .await?
        .into_iter()
        .filter(|m| m.user.kind == PrincipalKind::User)
        .collect();
    let teams = app.store.list_teams(org.id).await?;
    let mut team_members = BTreeMap::new();
    for team in &teams {
        let people = app.store.team_members(team.id).await?;
        let people = people
            .into_iter()
            .filter(|m| m.user.kind == PrincipalKind::User)
            .map(|m| (m.user.id, m.role))
            .collect();
        team_members.insert(team.id, people);
    }
    Ok(Snapshot {
        members,
        user_records: app.store.scim_user_records(org.id).await?.into_iter().collect(),
        teams,
        team_records: app.store.scim_team_records(org.id).await?.into_iter().collect(),
        team_members,
    })
}

impl Snapshot {
    fn member(&self, id: &str) -> Result<&OrgMember> {
        let id = Kind::User.parse_id(id).ok_or(AppError::NotFound(Missing::User))?;
        self.members
            .iter()
            .find(|m| (m.user.id.0, m.user.created_at) == id)
            .ok_or(ScimError::App(AppError::NotFound(Missing::User)))
    }

    fn team(&self, id: &str) -> Result<&Team> {
        let id = Kind::Group.parse_id(id).ok_or(AppError::NotFound(Missing::Team))?;
        self.teams
            .iter()
            .find(|t| (t.id.0, t.created_at) == id)
            .ok_or(ScimError::App(AppError::NotFound(Missing::Team)))
    }

    /// A user's writable attributes as a client sees them: as written, with what
    /// Keysmith acts on read from where it lives.
    fn user_attrs(&self, member: &OrgMember) -> Map<String, Value> {
        match self
            .user_records
            .get(&member.user.id)
            .and_then(|r| object(&r.attributes))
        {
            Some(mut attrs) => {
                if attrs.contains_key("active") {
                    attrs.insert("active".into(), Value::Bool(member.user.active));
                }
                if attrs.contains_key("organizationRole") {
                    attrs.insert("organizationRole".into(), Value::from(member.role.as_str()));
                }
                attrs
            }
            None => {
                let mut attrs = Map::new();
                attrs.insert("userName".into(), Value::from(member.user.username.clone()));
                if let Some(email) = &member.user.email {
                    attrs.insert("emails".into(), json!([{ "value": email, "primary": true }]));
                }
                attrs.insert("active".into(), Value::Bool(member.user.active));
                attrs.insert("organizationRole".into(), Value::from(member.role.as_str()));
                attrs
            }
        }
    }

    fn user(&self, base: &Base, member: &OrgMember) -> Value {
        let mut resource = self.user_attrs(member);
        let team_roles: Vec<Value> = self
            .teams
            .iter()
            .filter_map(|team| {
                let role = self
                    .team_members
                    .get(&team.id)?
                    .iter()
                    .find(|(u, _)| *u == member.user.id)?
                    .1;
                Some(json!({ "teamName": team.name, "roleName": role.as_str() }))
            })
            .collect();
        if !team_roles.is_empty() {
            resource.insert("teamRoles".into(), Value::Array(team_roles));
        }
        let updated = self.user_records.get(&member.user.id).map_or(0, |r| r.updated_at);
        finish(
            base,
            Kind::User,
            member.user.id.0,
            resource,
            member.user.created_at,
            updated,
        )
    }

    fn group_attrs(&self, base: &Base, team: &Team) -> Map<String, Value> {
        let mut attrs = self
            .team_records
            .get(&team.id)
            .and_then(|r| object(&r.attributes))
            .unwrap_or_else(|| {
                let mut attrs = Map::new();
                attrs.insert("displayName".into(), Value::from(team.name.clone()));
                attrs
            });
        let members: Vec<Value> = self
            .team_members
            .get(&team.id)
            .into_iter()
            .flatten()
            .filter_map(|(user, _)| {
                let member = self.members.iter().find(|m| m.user.id == *user)?;
                let id = Kind::User.id(user.0, member.user.created_at);
                Some(json!({ "value": id, "$ref": base.location(Kind::User, &id), "type": "User" }))
            })
            .collect();
        attrs.remove("members");
        if !members.is_empty() {
            attrs.insert("members".into(), Value::Array(members));
        }
        attrs
    }

    fn group(&self, base: &Base, team: &Team) -> Value {
        let resource = self.group_attrs(base, team);
        let updated = self.team_records.get(&team.id).map_or(0, |r| r.updated_at);
        finish(base, Kind::Group, team.id.0, resource, team.created_at, updated)
    }

    /// Whether another user of the organization has this userName (without case).
    fn user_name_taken(&self, name: &str, except: Option<UserId>) -> bool {
        self.members.iter().any(|m| {
            Some(m.user.id) != except
                && self
                    .user_attrs(m)
                    .get("userName")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    }

    fn display_name_taken(&self, base: &Base, name: &str, except: Option<TeamId>) -> bool {
        self.teams.iter().any(|t| {
            Some(t.id) != except
                && self
                    .group_attrs(base, t)
                    .get("displayName")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    }
}

fn object(text: &str) -> Option<Map<String, Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Object(attrs)) => Some(attrs),
        _ => None,
    }
}

/// A resource with its `schemas`, `id` and `meta`; the version is a digest of the
/// rest, so any change through any door gives a new one.
fn finish(base: &Base, kind: Kind, id: i64, mut resource: Map<String, Value>, created: i64, updated: i64) -> Value {
    let id = kind.id(id, created);
    resource.insert("schemas".into(), json!([kind.schema()]));
    resource.insert("id".into(), Value::from(id.clone()));
    let digest = KeyDigest::of(Value::Object(resource.clone()).to_string().as_bytes()).to_hex();
    resource.insert(
        "meta".into(),
        json!({
            "resourceType": kind.name(),
            "created": crate::time::rfc3339(created),
            "lastModified": crate::time::rfc3339(created.max(updated)),
            "location": base.location(kind, &id),
            "version": format!("W/\"{}\"", &digest[..16]),
        }),
    );
    Value::Object(resource)
}

/// The version of a resource, as its ETag.
fn version(resource: &Value) -> Option<&str> {
    resource.get("meta")?.get("version")?.as_str()
}

/// Whether `If-Match` (when given) names the resource's current version.
pub fn check_version(resource: &Value, if_match: Option<&str>) -> Result<()> {
    let Some(wanted) = if_match.map(str::trim) else {
        return Ok(());
    };
    let current = version(resource).unwrap_or_default();
    let bare = |v: &str| v.trim_start_matches("W/").to_owned();
    let matched = wanted == "*" || wanted.split(',').any(|w| bare(w.trim()) == bare(current));
    if matched {
        Ok(())
    } else {
        Err(ScimError::PreconditionFailed)
    }
}

/// One resource by its ID.
pub async fn get(call: &Call<'_>, kind: Kind, id: &str) -> Result<Value> {
    let snap = snapshot(call.app, &call.client.org).await?;
    Ok(match kind {
        Kind::User => snap.user(call.base, snap.member(id)?),
        Kind::Group => snap.group(call.base, snap.team(id)?),
    })
}

/// The resources of `kinds` that match `filter`, in ID order (users before groups).
pub async fn list(call: &Call<'_>, kinds: &[Kind], filter: Option<&str>) -> Result<Vec<Value>> {
    let base = call.base;
    let filter = match filter.map(str::trim).filter(|f| !f.is_empty()) {
        Some(text) => {
            let known: Vec<&str> = kinds.iter().flat_map(|k| k.attributes()).collect();
            Some(filter::parse(text, &known)?)
        }
        None => None,
    };
    let snap = snapshot(call.app, &call.client.org).await?;
    let mut found = Vec::new();
    for kind in kinds {
        let mut resources: Vec<(i64, Value)> = match kind {
            Kind::User => snap.members.iter().map(|m| (m.user.id.0, snap.user(base, m))).collect(),
            Kind::Group => snap.teams.iter().map(|t| (t.id.0, snap.group(base, t))).collect(),
        };
        resources.sort_by_key(|(id, _)| *id);
        found.extend(
            resources
                .into_iter()
                .map(|(_, r)| r)
                .filter(|r| filter.as_ref().is_none_or(|f| filter::matches(f, r))),
        );
    }
    Ok(found)
}

/// Keeps only the `attributes` asked for (with `schemas` and `id`), or drops the
/// `excluded` ones (RFC 7644 §3.4.2.5). Names are compared without case and may carry
/// the schema (`urn:…:User:userName`); `emails.value` names `emails`.
pub fn project(resource: &mut Value, attributes: &[String], excluded: &[String]) {
    let Value::Object(fields) = resource else { return };
    let top = |name: &String| {
        let name = name.rsplit_once(':').map_or(name.as_str(), |(_, n)| n);
        name.split('.').next().unwrap_or(name).to_ascii_lowercase()
    };
    if !attributes.is_empty() {
        let keep: Vec<String> = attributes.iter().map(top).collect();
        fields.retain(|k, _| k == "schemas" || k == "id" || keep.contains(&k.to_ascii_lowercase()));
    } else if !excluded.is_empty() {
        let drop: Vec<String> = excluded.iter().map(top).collect();
        fields.retain(|k, _| k == "schemas" || k == "id" || !drop.contains(&k.to_ascii_lowercase()));
    }
}

/// A user's writable attributes after checking: unknown ones dropped, names in their
/// canonical case, and what Keysmith acts on, typed.
struct UserInput {
    attrs: Map<String, Value>,
    user_name: String,
    /// The primary email (else the first); `None` when there is none.
    email: Option<Email>,
    active: Option<bool>,
    role: Option<OrgRole>,
}

fn text(attrs: &Map<String, Value>, name: &'static str) -> Result<Option<String>> {
    match attrs.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= MAX_TEXT => Ok(Some(s.clone())),
        Some(_) => Err(ScimError::bad(
            ScimType::InvalidValue,
            format!("`{name}` must be a string of 1 to {MAX_TEXT} characters"),
        )),
    }
}

/// A boolean, or Entra's `"True"`/`"False"`.
fn boolean(value: &Value, name: &str) -> Result<bool> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ScimError::bad(
            ScimType::InvalidValue,
            format!("`{name}` must be true or false"),
        )),
    }
}

/// Keeps the known attributes of a client's object, in canonical case, without nulls.
fn known_attrs(kind: Kind, raw: &Map<String, Value>) -> Map<String, Value> {
    let mut attrs = Map::new();
    for (name, value) in raw {
        let name = patch::strip_schema(kind, name);
        if let Some(known) = kind.writable().iter().find(|k| k.eq_ignore_ascii_case(name))
            && !value.is_null()
        {
            attrs.insert((*known).to_owned(), value.clone());
        }
    }
    attrs
}

fn user_input(raw: &Map<String, Value>) -> Result<UserInput> {
    let mut attrs = known_attrs(Kind::User, raw);
    let user_name =
        text(&attrs, "userName")?.ok_or_else(|| ScimError::bad(ScimType::InvalidValue, "`userName` is required"))?;
    text(&attrs, "displayName")?;
    text(&attrs, "externalId")?;
    let active = match attrs.get("active") {
        Some(v) => Some(boolean(v, "active")?),
        None => None,
    };
    if let Some(active) = active {
        attrs.insert("active".into(), Value::Bool(active));
    }
    let role = match attrs.get("organizationRole") {
        Some(Value::String(s)) => Some(input::org_role(&s.to_ascii_lowercase()).map_err(|_| {
            ScimError::bad(
                ScimType::InvalidValue,
                format!("`organizationRole` is `admin` or `member`, not `{s}`"),
            )
        })?),
        Some(_) => {
            return Err(ScimError::bad(
                ScimType::InvalidValue,
                "`organizationRole` must be a string",
            ));
        }
        None => None,
    };
    if let Some(role) = role {
        attrs.insert("organizationRole".into(), Value::from(role.as_str()));
    }
    let email = match attrs.get_mut("emails") {
        Some(value) => emails(value)?,
        None => None,
    };
    if attrs
        .get("emails")
        .is_some_and(|e| e.as_array().is_some_and(Vec::is_empty))
    {
        attrs.remove("emails");
    }
    Ok(UserInput {
        attrs,
        user_name,
        email,
        active,
        role,
    })
}

/// Checks a user's `emails` in place (only `value`, `type` and `primary` are kept) and
/// picks the one Keysmith keeps: the primary one, else the first.
fn emails(value: &mut Value) -> Result<Option<Email>> {
    let bad = |m: &str| ScimError::bad(ScimType::InvalidValue, m.to_owned());
    if value.is_object() {
        *value = Value::Array(vec![value.take()]);
    }
    let Value::Array(list) = value else {
        return Err(bad("`emails` must be a list of {\"value\": …} objects"));
    };
    if list.len() > MAX_EMAILS {
        return Err(bad(&format!("at most {MAX_EMAILS} emails")));
    }
    let mut chosen = None;
    for element in list.iter_mut() {
        let Value::Object(fields) = element else {
            return Err(bad("`emails` must be a list of {\"value\": …} objects"));
        };
        fields.retain(|k, v| ["value", "type", "primary"].contains(&k.as_str()) && !v.is_null());
        let email = match fields.get("value") {
            Some(Value::String(s)) => {
                Email::parse(s).map_err(|_| bad(&format!("`{s}` is not an email address such as ada@example.com")))?
            }
            _ => return Err(bad("each email needs a `value`")),
        };
        if let Some(t) = fields.get("type")
            && t.as_str().is_none_or(|t| t.chars().count() > MAX_TEXT)
        {
            return Err(bad("an email's `type` must be a string"));
        }
        let primary = match fields.get("primary") {
            Some(p) => boolean(p, "primary")?,
            None => false,
        };
        if primary || chosen.is_none() {
            chosen = Some((primary, email));
        }
    }
    Ok(chosen.map(|(_, e)| e))
}

/// Creates a user or a team from a POSTed resource (RFC 7644 §3.3).
pub async fn create(call: &Call<'_>, kind: Kind, body: &Value) -> Result<Value> {
    let snap = snapshot(call.app, &call.client.org).await?;
    let body = body_object(body)?;
    let id = match kind {
        Kind::User => create_user(call, &snap, user_input(body)?).await?,
        Kind::Group => create_group(call, &snap, group_input(&snap, body)?).await?,
    };
    get(call, kind, &id).await
}

/// How a resource is changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// PUT (RFC 7644 §3.5.1): what the body leaves out is unassigned.
    Replace,
    /// PATCH (RFC 7644 §3.5.2), W&B's `teamRoles` included.
    Patch,
}

/// Replaces or patches a resource, if `If-Match` (when given) names its version.
pub async fn change(
    call: &Call<'_>,
    kind: Kind,
    id: &str,
    how: Change,
    body: &Value,
    if_match: Option<&str>,
) -> Result<Value> {
    let snap = snapshot(call.app, &call.client.org).await?;
    match kind {
        Kind::User => {
            let member = snap.member(id)?.clone();
            check_version(&snap.user(call.base, &member), if_match)?;
            let (input, team_roles) = match how {
                Change::Replace => (user_input(body_object(body)?)?, Vec::new()),
                Change::Patch => {
                    let mut attrs = snap.user_attrs(&member);
                    let mut team_roles = Vec::new();
                    for operation in &patch::parse(body)? {
                        match operation.team_roles() {
                            Some(value) => team_roles.extend(team_role_changes(&snap, value)?),
                            None => patch::apply(&mut attrs, Kind::User, operation)?,
                        }
                    }
                    (user_input(&attrs)?, team_roles)
                }
            };
            write_user(call, &snap, &member, input, &team_roles).await?;
        }
        Kind::Group => {
            let team = snap.team(id)?.clone();
            check_version(&snap.group(call.base, &team), if_match)?;
            let input = match how {
                Change::Replace => group_input(&snap, body_object(body)?)?,
                Change::Patch => {
                    let mut attrs = snap.group_attrs(call.base, &team);
                    for operation in &patch::parse(body)? {
                        patch::apply(&mut attrs, Kind::Group, operation)?;
                    }
                    group_input(&snap, &attrs)?
                }
            };
            write_group(call, &snap, &team, input).await?;
        }
    }
    get(call, kind, id).await
}

/// Deletes a resource, if `If-Match` (when given) names its version (RFC 7644 §3.6).
/// A user goes with every key of theirs: W&B only deactivates, but after a SCIM DELETE
/// the resource must be gone; deactivation is `active: false`. A team's members leave
/// it; a team with service accounts is refused, since their keys would lose their
/// scope.
pub async fn delete(call: &Call<'_>, kind: Kind, id: &str, if_match: Option<&str>) -> Result<()> {
    let (app, acting, org) = (call.app, &call.acting, &call.client.org);
    let snap = snapshot(app, org).await?;
    match kind {
        Kind::User => {
            let member = snap.member(id)?.clone();
            check_version(&snap.user(call.base, &member), if_match)?;
            users::delete_in(app, acting, member).await?;
        }
        Kind::Group => {
            let team = snap.team(id)?.clone();
            check_version(&snap.group(call.base, &team), if_match)?;
            if !app.store.list_service_accounts(org.id, Some(team.id)).await?.is_empty() {
                return Err(ScimError::bad(
                    ScimType::Mutability,
                    format!("the team `{}` has service accounts; delete them first", team.name),
                ));
            }
            let detail = Some(json!({ "via": "scim" }));
            let audit = AuditContext::of(acting).entry(org.id, Action::TeamDeleted, &team.name, detail);
            if !app.store.delete_team(team.id, &audit).await? {
                return Err(AppError::NotFound(Missing::Team).into());
            }
            tracing::info!(team.id = team.id.0, org.id = org.id.0, "team deleted");
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ users

async fn create_user(call: &Call<'_>, snap: &Snapshot, input: UserInput) -> Result<String> {
    let (app, acting, org) = (call.app, &call.acting, &call.client.org);
    if snap.user_name_taken(&input.user_name, None) {
        return Err(ScimError::taken("this userName"));
    }
    if let Some(email) = &input.email
        && app.store.find_user_for_sign_in(email.as_str()).await?.is_some()
    {
        return Err(ScimError::taken("this email"));
    }
    let request = NewUserRequest {
        username: keysmith_name(app, &input.user_name).await?,
        email: input.email.clone(),
        role: input.role.unwrap_or(OrgRole::Member),
        password: None,
    };
    let member = users::create_with(app, acting, org, request, Some("scim"))
        .await?
        .member;
    if input.active == Some(false) {
        let change = UserChange {
            role: None,
            active: Some(false),
        };
        users::update_in(app, acting, org, &member, change).await?;
    }
    app.store
        .set_scim_user(org.id, member.user.id, &record(input.attrs, acting.now), None, &[])
        .await?;
    Ok(Kind::User.id(member.user.id.0, member.user.created_at))
}

/// What the store keeps of what a client wrote.
fn record(attrs: Map<String, Value>, now: i64) -> ScimRecord {
    ScimRecord {
        attributes: Value::Object(attrs).to_string(),
        updated_at: now,
    }
}

/// A username no one has, from a userName: itself when it is a valid name, else one
/// made from it (an email's local part).
async fn keysmith_name(app: &App, user_name: &str) -> AppResult<EntityName> {
    if let Ok(name) = EntityName::parse(user_name)
        && name.as_str() == user_name
        && app.store.find_user_by_username(user_name).await?.is_none()
    {
        return Ok(name);
    }
    let base = user_name.split('@').next().unwrap_or(user_name);
    users::unused_name(app, base, "user").await
}

/// W&B's `teamRoles` value: `[{"teamName": …, "roleName": "admin"|"member"}]`.
fn team_role_changes(snap: &Snapshot, value: &Value) -> Result<Vec<(Team, TeamRole)>> {
    let bad = |m: String| ScimError::bad(ScimType::InvalidValue, m);
    let list = match value {
        Value::Array(list) => list.clone(),
        one @ Value::Object(_) => vec![one.clone()],
        _ => {
            return Err(bad(
                "`teamRoles` is a list of {\"teamName\", \"roleName\"} objects".into()
            ));
        }
    };
    list.iter()
        .map(|entry| {
            let text = |name| filter::field(entry, name).and_then(Value::as_str).unwrap_or_default();
            let (name, role) = (text("teamName"), text("roleName"));
            let team = snap
                .teams
                .iter()
                .find(|t| t.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| bad(format!("no team named `{name}` in the organization")))?;
            let role = TeamRole::parse(&role.to_ascii_lowercase())
                .ok_or_else(|| bad(format!("a team's `roleName` is `admin` or `member`, not `{role}`")))?;
            Ok((team.clone(), role))
        })
        .collect()
}

/// The audit entry of a change to what a client wrote that Keysmith does not act on
/// (which attributes, never their values); none when nothing of it changed.
fn profile_audit(
    call: &Call<'_>,
    action: Action,
    target: &str,
    names: &[&'static str],
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> Vec<keysmith_store::NewAuditEntry> {
    let changed: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| before.get(*name) != after.get(*name))
        .collect();
    if changed.is_empty() {
        return Vec::new();
    }
    let detail = Some(json!({ "attributes": changed, "via": "scim" }));
    AuditContext::of(&call.acting).entry(call.client.org.id, action, target, detail)
}

/// Acts on a user's checked attributes: email, role, activation, team roles, and the
/// record of what was written. Everything that can be refused without writing is
/// checked first.
async fn write_user(
    call: &Call<'_>,
    snap: &Snapshot,
    member: &OrgMember,
    input: UserInput,
    team_roles: &[(Team, TeamRole)],
) -> Result<()> {
    let (app, acting, org) = (call.app, &call.acting, &call.client.org);
    let user = &member.user;
    if snap.user_name_taken(&input.user_name, Some(user.id)) {
        return Err(ScimError::taken("this userName"));
    }
    let email = input.email.as_ref().map(|e| e.as_str().to_owned());
    let email_changed = email != user.email;
    if email_changed
        && let Some(email) = &email
        && app
            .store
            .find_user_for_sign_in(email)
            .await?
            .is_some_and(|(other, _)| other.id != user.id)
    {
        return Err(ScimError::taken("this email"));
    }
    let change = UserChange {
        role: input.role,
        active: input.active,
    };
    users::update_in(app, acting, org, member, change).await?;
    for (team, role) in team_roles {
        teams::set_found_member(app, acting, org, team, user, *role).await?;
    }
    let names = ["userName", "displayName", "externalId", "emails"];
    let before = snap.user_attrs(member);
    let audit = profile_audit(
        call,
        Action::UserProfileChanged,
        &user.username,
        &names,
        &before,
        &input.attrs,
    );
    let email = email_changed.then_some(email.as_deref());
    let written = record(input.attrs, acting.now);
    if !app
        .store
        .set_scim_user(org.id, user.id, &written, email, &audit)
        .await?
    {
        return Err(AppError::NotFound(Missing::User).into());
    }
    Ok(())
}

// ------------------------------------------------------------------ groups

struct GroupInput {
    attrs: Map<String, Value>,
    display_name: String,
    members: Vec<User>,
}

fn group_input(snap: &Snapshot, raw: &Map<String, Value>) -> Result<GroupInput> {
    let mut attrs = known_attrs(Kind::Group, raw);
    let display_name = text(&attrs, "displayName")?
        .ok_or_else(|| ScimError::bad(ScimType::InvalidValue, "`displayName` is required"))?;
    text(&attrs, "externalId")?;
    let mut members = Vec::new();
    match attrs.remove("members") {
        None => {}
        Some(Value::Array(list)) => {
            for entry in list {
                let id = filter::field(&entry, "value")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let member = snap.member(id).map_err(|_| {
                    ScimError::bad(
                        ScimType::InvalidValue,
                        format!("`{id}` is not the id of a user of the organization"),
                    )
                })?;
                if !members.iter().any(|m: &User| m.id == member.user.id) {
                    members.push(member.user.clone());
                }
            }
        }
        Some(_) => {
            return Err(ScimError::bad(
                ScimType::InvalidValue,
                "`members` is a list of {\"value\": id}",
            ));
        }
    }
    Ok(GroupInput {
        attrs,
        display_name,
        members,
    })
}

async fn create_group(call: &Call<'_>, snap: &Snapshot, input: GroupInput) -> Result<String> {
    let (app, acting, org) = (call.app, &call.acting, &call.client.org);
    if snap.display_name_taken(call.base, &input.display_name, None) {
        return Err(ScimError::taken("this displayName"));
    }
    let name = team_name(app, org, &input.display_name).await?;
    let team = teams::create_in(app, acting, org, name, None).await?;
    app.store
        .set_scim_team(team.id, &record(input.attrs, acting.now), &[])
        .await?;
    for user in &input.members {
        teams::set_found_member(app, acting, org, &team, user, TeamRole::Member).await?;
    }
    Ok(Kind::Group.id(team.id.0, team.created_at))
}

/// A team name no team of the organization has, from a displayName: itself when it is
/// a valid name, else one made from it ([`users::name_candidates`]).
async fn team_name(app: &App, org: &Org, display_name: &str) -> AppResult<EntityName> {
    let exact = EntityName::parse(display_name)
        .ok()
        .filter(|n| n.as_str() == display_name)
        .map(|n| n.as_str().to_owned());
    for candidate in exact.into_iter().chain(users::name_candidates(display_name, "team")) {
        if app.store.find_team(org.id, &candidate).await?.is_none() {
            return input::entity_name("displayName", "team name", &candidate);
        }
    }
    Err(AppError::AlreadyExists("a team with this name"))
}

async fn write_group(call: &Call<'_>, snap: &Snapshot, team: &Team, input: GroupInput) -> Result<()> {
    let (app, acting, org) = (call.app, &call.acting, &call.client.org);
    if snap.display_name_taken(call.base, &input.display_name, Some(team.id)) {
        return Err(ScimError::taken("this displayName"));
    }
    let current: Vec<UserId> = snap
        .team_members
        .get(&team.id)
        .into_iter()
        .flatten()
        .map(|(u, _)| *u)
        .collect();
    for user in input.members.iter().filter(|u| !current.contains(&u.id)) {
        teams::set_found_member(app, acting, org, team, user, TeamRole::Member).await?;
    }
    for gone in current.iter().filter(|u| !input.members.iter().any(|m| m.id == **u)) {
        if let Some(member) = snap.members.iter().find(|m| m.user.id == *gone) {
            teams::remove_found_member(app, acting, org, team, member.user.clone()).await?;
        }
    }
    let names = ["displayName", "externalId"];
    let before = snap.group_attrs(call.base, team);
    let audit = profile_audit(
        call,
        Action::TeamProfileChanged,
        &team.name,
        &names,
        &before,
        &input.attrs,
    );
    if !app
        .store
        .set_scim_team(team.id, &record(input.attrs, acting.now), &audit)
        .await?
    {
        return Err(AppError::NotFound(Missing::Team).into());
    }
    Ok(())
}

fn body_object(body: &Value) -> Result<&Map<String, Value>> {
    body.as_object()
        .ok_or_else(|| ScimError::bad(ScimType::InvalidSyntax, "the body must be a JSON object"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_matches_itself_weak_or_strong_and_star() {
        let r = json!({"meta": {"version": "W/\"abc\""}});
        for ok in [
            None,
            Some("W/\"abc\""),
            Some("\"abc\""),
            Some("*"),
            Some("\"x\", W/\"abc\""),
        ] {
            assert!(check_version(&r, ok).is_ok(), "{ok:?}");
        }
        assert_eq!(check_version(&r, Some("W/\"abd\"")), Err(ScimError::PreconditionFailed));
    }

    #[test]
    fn projection_keeps_or_drops_top_level_attributes() {
        let full = json!({"schemas": [USER_SCHEMA], "id": "1", "userName": "a", "displayName": "A",
            "emails": [{"value": "a@x.test"}], "meta": {}});
        let mut r = full.clone();
        project(
            &mut r,
            &[
                "urn:ietf:params:scim:schemas:core:2.0:User:userName".into(),
                "Emails.value".into(),
            ],
            &[],
        );
        assert_eq!(
            r,
            json!({"schemas": [USER_SCHEMA], "id": "1", "userName": "a", "emails": [{"value": "a@x.test"}]})
        );
        let mut r = full;
        project(&mut r, &[], &["displayname".into(), "id".into()]);
        assert!(r.get("displayName").is_none() && r.get("id").is_some() && r.get("meta").is_some());
    }

    #[test]
    fn user_input_keeps_what_was_written_and_types_what_keysmith_acts_on() {
        let raw = json!({"UserName": "Ada@Example.com", "active": "False", "organizationRole": "Admin",
            "emails": [{"value": "ada@x.test", "type": "work", "display": "dropped"},
                       {"value": "a@home.test", "primary": true}],
            "name": {"givenName": "dropped"}, "externalId": null});
        let input = user_input(raw.as_object().unwrap()).unwrap();
        assert_eq!(input.user_name, "Ada@Example.com");
        assert_eq!(input.active, Some(false));
        assert_eq!(input.role, Some(OrgRole::Admin));
        assert_eq!(input.email.unwrap().as_str(), "a@home.test");
        assert_eq!(
            Value::Object(input.attrs),
            json!({"userName": "Ada@Example.com", "active": false, "organizationRole": "admin",
                   "emails": [{"value": "ada@x.test", "type": "work"}, {"value": "a@home.test", "primary": true}]})
        );
        for bad in [
            json!({}),
            json!({"userName": ""}),
            json!({"userName": "a", "organizationRole": "viewer"}),
            json!({"userName": "a", "active": "maybe"}),
            json!({"userName": "a", "emails": [{"value": "not-an-address"}]}),
            json!({"userName": "a", "emails": "a@x.test"}),
            json!({"userName": "a".repeat(256)}),
        ] {
            assert!(
                matches!(
                    user_input(bad.as_object().unwrap()),
                    Err(ScimError::Bad {
                        scim_type: ScimType::InvalidValue,
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }
}
