//! The object types of W&B's schema that the SDKs read, mapped onto Keysmith's model:
//! a W&B "entity" is a team (or a user's own namespace), an API key's `name` is its key
//! ID (the secret appears in `generateApiKey`'s answer only).

use super::context::{GqlResultExt, caller};
use super::scalars::{DateTime, JsonString};
use crate::timestamp::rfc3339;
use async_graphql::{Context, ID, Object, SimpleObject};
use base64::Engine;
use keysmith_app::{AppError, teams, users};
use keysmith_core::role::{PrincipalKind, TeamRole};
use keysmith_store::{KeyFilter, KeyListQuery, KeySort, Team, User, Visibility};

/// W&B's global IDs: base64 of `<Type>:<id>`.
pub fn global_id(kind: &str, id: impl std::fmt::Display) -> ID {
    ID(base64::engine::general_purpose::STANDARD.encode(format!("{kind}:{id}")))
}

/// The `<id>` of a global ID of `kind`; a bare `<id>` is accepted too.
pub fn from_global_id(kind: &str, id: &str) -> Option<String> {
    match base64::engine::general_purpose::STANDARD.decode(id) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes).ok()?;
            text.strip_prefix(kind)
                .and_then(|rest| rest.strip_prefix(':'))
                .map(str::to_owned)
        }
        Err(_) => Some(id.to_owned()),
    }
}

pub struct GqlUser(pub User);

#[Object(name = "User")]
impl GqlUser {
    async fn id(&self) -> ID {
        global_id("User", self.0.id.0)
    }

    async fn name(&self) -> &str {
        &self.0.username
    }

    async fn username(&self) -> Option<&str> {
        Some(&self.0.username)
    }

    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }

    /// Whether the user administers an organization (one the caller administers too,
    /// for someone else).
    async fn admin(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<bool>> {
        let (c, caller) = caller(ctx)?;
        Ok(Some(users::is_org_admin(&c.state.app, caller, self.0.id).await.gql()?))
    }

    async fn flags(&self) -> Option<JsonString> {
        Some(JsonString("{}".into()))
    }

    /// The default entity: the user's own name.
    async fn entity(&self) -> Option<&str> {
        Some(&self.0.username)
    }

    async fn default_entity(&self) -> Option<GqlEntity> {
        Some(GqlEntity::User(self.0.clone()))
    }

    async fn deleted_at(&self) -> Option<DateTime> {
        None
    }

    async fn account_type(&self) -> &'static str {
        account_type(self.0.kind)
    }

    /// The user's keys that the caller may see: key IDs, never secrets.
    async fn api_keys(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ApiKeyConnection>> {
        let (c, caller) = caller(ctx)?;
        let query = KeyListQuery {
            visibility: Visibility {
                caller: Some(caller.id()),
                admin_orgs: caller.roles.admin_of_orgs.iter().copied().collect(),
                admin_teams: caller.roles.admin_of_teams.iter().copied().collect(),
            },
            filter: KeyFilter {
                owner: Some(self.0.id),
                ..KeyFilter::default()
            },
            sort: KeySort::Created,
            after: None,
            limit: 200,
        };
        let keys = c.state.store.list_keys(&query).await.gql()?;
        let edges = keys
            .into_iter()
            .map(|k| ApiKeyEdge {
                node: Some(GqlApiKey {
                    id: global_id("ApiKey", &k.key_id),
                    name: k.display,
                    description: Some(k.name),
                }),
            })
            .collect();
        Ok(Some(ApiKeyConnection { edges }))
    }

    /// The teams the user belongs to (in organizations the caller administers, for
    /// someone else).
    async fn teams(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<EntityConnection>> {
        let (c, caller) = caller(ctx)?;
        let teams = users::teams_of(&c.state.app, caller, self.0.id).await.gql()?;
        let edges = teams
            .into_iter()
            .map(|team| EntityEdge {
                node: Some(GqlEntity::Team(team)),
            })
            .collect();
        Ok(Some(EntityConnection { edges }))
    }
}

pub fn account_type(kind: PrincipalKind) -> &'static str {
    match kind {
        PrincipalKind::User => "USER",
        PrincipalKind::ServiceAccount => "SERVICE",
    }
}

#[derive(SimpleObject)]
#[graphql(name = "ApiKey")]
pub struct GqlApiKey {
    pub id: ID,
    /// The key ID; in `generateApiKey`'s answer only, the full key.
    pub name: String,
    pub description: Option<String>,
}

#[derive(SimpleObject)]
pub struct ApiKeyConnection {
    pub edges: Vec<ApiKeyEdge>,
}

#[derive(SimpleObject)]
pub struct ApiKeyEdge {
    pub node: Option<GqlApiKey>,
}

#[derive(SimpleObject)]
pub struct EntityConnection {
    pub edges: Vec<EntityEdge>,
}

#[derive(SimpleObject)]
pub struct EntityEdge {
    pub node: Option<GqlEntity>,
}

#[derive(SimpleObject)]
pub struct UserConnection {
    pub edges: Vec<UserEdge>,
}

#[derive(SimpleObject)]
pub struct UserEdge {
    pub node: Option<GqlUser>,
}

/// A W&B entity: a team, or a user's own namespace.
pub enum GqlEntity {
    Team(Team),
    User(User),
}

#[derive(SimpleObject)]
pub struct Member {
    pub id: Option<String>,
    pub admin: Option<bool>,
    pub pending: Option<bool>,
    pub email: Option<String>,
    pub username: Option<String>,
    pub name: String,
    pub photo_url: Option<String>,
    /// `USER` or `SERVICE`.
    pub account_type: Option<String>,
    /// A service account's key, once, to the caller who just created it through
    /// `createServiceAccount`; otherwise null.
    pub api_key: Option<String>,
}

#[Object(name = "Entity")]
impl GqlEntity {
    async fn id(&self) -> ID {
        match self {
            Self::Team(t) => global_id("Entity", format!("team-{}", t.id.0)),
            Self::User(u) => global_id("Entity", format!("user-{}", u.id.0)),
        }
    }

    async fn name(&self) -> &str {
        match self {
            Self::Team(t) => &t.name,
            Self::User(u) => &u.username,
        }
    }

    async fn available(&self) -> Option<bool> {
        Some(false)
    }

    async fn photo_url(&self) -> Option<String> {
        None
    }

    async fn read_only(&self) -> Option<bool> {
        Some(false)
    }

    async fn read_only_admin(&self) -> bool {
        false
    }

    async fn is_team(&self) -> bool {
        matches!(self, Self::Team(_))
    }

    async fn entity_type(&self) -> Option<&'static str> {
        Some(match self {
            Self::Team(_) => "team",
            Self::User(_) => "user",
        })
    }

    async fn private_only(&self) -> bool {
        false
    }

    async fn storage_bytes(&self) -> i64 {
        0
    }

    async fn code_saving_enabled(&self) -> bool {
        false
    }

    async fn default_access(&self) -> &'static str {
        "USER_WRITE"
    }

    async fn is_paid(&self) -> Option<bool> {
        None
    }

    async fn limits(&self) -> Option<JsonString> {
        Some(JsonString("{}".into()))
    }

    /// A team's members, then its service accounts (newest last: the SDK takes the last
    /// entry as the account it just created). Visible to the team's admins and to org
    /// admins, as through every door (`keysmith_app::teams::detail`); empty for others.
    async fn members(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Member>> {
        let Self::Team(team) = self else { return Ok(Vec::new()) };
        let (c, caller) = caller(ctx)?;
        // Those who may not see the members see none, as before the entity has any.
        let detail = match teams::detail(&c.state.app, caller, team.clone()).await {
            Ok(detail) => detail,
            Err(AppError::Forbidden(_)) => return Ok(Vec::new()),
            Err(other) => return Err(other).gql(),
        };
        let mut out: Vec<Member> = detail
            .members
            .into_iter()
            .map(|m| Member {
                id: Some(global_id("User", m.user.id.0).0),
                admin: Some(m.role == TeamRole::Admin),
                pending: Some(false),
                email: None,
                username: Some(m.user.username.clone()),
                name: m.user.username,
                photo_url: None,
                account_type: Some(account_type(m.user.kind).into()),
                api_key: None,
            })
            .collect();
        let now = c.state.now();
        for account in detail.service_accounts {
            let api_key = c
                .state
                .handoff
                .take(&(caller.id(), account.user.id), now)
                .map(|k| k.expose().to_owned());
            out.push(Member {
                id: Some(global_id("User", account.user.id.0).0),
                admin: Some(false),
                pending: Some(false),
                email: None,
                username: Some(account.user.username.clone()),
                name: account.user.username,
                photo_url: None,
                account_type: Some("SERVICE".into()),
                api_key,
            });
        }
        Ok(out)
    }
}

#[derive(SimpleObject)]
pub struct ServerInfo {
    pub cli_version_info: Option<async_graphql::Json<serde_json::Value>>,
    pub latest_local_version_info: Option<LocalVersionInfo>,
    pub features: Vec<ServerFeature>,
}

#[derive(SimpleObject)]
pub struct LocalVersionInfo {
    pub out_of_date: bool,
    pub latest_version_string: String,
    pub version_on_this_instance_string: String,
}

#[derive(SimpleObject)]
pub struct ServerFeature {
    pub name: String,
    pub is_enabled: bool,
}

#[derive(SimpleObject)]
#[graphql(name = "Invite")]
pub struct GqlInvite {
    pub id: ID,
    pub name: Option<String>,
    pub email: Option<String>,
    pub created_at: Option<DateTime>,
    pub to_user: Option<InvitedUser>,
}

#[derive(SimpleObject)]
pub struct InvitedUser {
    pub name: String,
}

impl GqlInvite {
    pub fn new(team: &str, user: &User, now: i64) -> Self {
        Self {
            id: global_id("Invite", format!("{team}:{}", user.username)),
            name: Some(user.username.clone()),
            email: user.email.clone(),
            created_at: Some(DateTime(rfc3339(now))),
            to_user: Some(InvitedUser {
                name: user.username.clone(),
            }),
        }
    }
}
