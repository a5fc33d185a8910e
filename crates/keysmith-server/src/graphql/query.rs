//! Root queries: the viewer (every SDK's login check), server info, user search and
//! entities (teams).

use super::context::{GqlResultExt, caller};
use super::objects::{GqlEntity, GqlUser, LocalVersionInfo, ServerInfo, UserConnection, UserEdge, caller_team};
use async_graphql::{Context, Object};
use keysmith_core::role::PrincipalKind;

pub struct Query;

#[Object]
impl Query {
    /// The owner of the key that authenticated the request.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<GqlUser>> {
        // From the caller cache when warm: every SDK sends this on every login check.
        let (_, caller) = caller(ctx)?;
        Ok(Some(GqlUser(caller.user())))
    }

    async fn server_info(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ServerInfo>> {
        caller(ctx)?;
        let version = env!("CARGO_PKG_VERSION").to_owned();
        Ok(Some(ServerInfo {
            cli_version_info: Some(async_graphql::Json(serde_json::json!({}))),
            latest_local_version_info: Some(LocalVersionInfo {
                out_of_date: false,
                latest_version_string: version.clone(),
                version_on_this_instance_string: version,
            }),
            features: Vec::new(),
        }))
    }

    /// Users of the organizations the caller administers whose name or email contains
    /// `query` (all of them without one). Empty for non-admins.
    async fn users(&self, ctx: &Context<'_>, query: Option<String>) -> async_graphql::Result<Option<UserConnection>> {
        let (c, caller) = caller(ctx)?;
        let needle = query.unwrap_or_default().to_lowercase();
        let mut seen = std::collections::BTreeSet::new();
        let mut edges = Vec::new();
        for org in &caller.roles.admin_of_orgs {
            for member in c.state.store.org_members(*org).await.gql()? {
                let user = member.user;
                let matches = user.username.to_lowercase().contains(&needle)
                    || user
                        .email
                        .as_deref()
                        .is_some_and(|e| e.to_lowercase().contains(&needle));
                if user.kind == PrincipalKind::User && matches && seen.insert(user.id) {
                    edges.push(UserEdge {
                        node: Some(GqlUser(user)),
                    });
                }
            }
        }
        Ok(Some(UserConnection { edges }))
    }

    /// A team of one of the caller's organizations, or the caller's own entity.
    async fn entity(&self, ctx: &Context<'_>, name: String) -> async_graphql::Result<Option<GqlEntity>> {
        let (c, caller) = caller(ctx)?;
        if let Some(team) = caller_team(c, caller, &name).await? {
            return Ok(Some(GqlEntity::Team(team)));
        }
        if name.eq_ignore_ascii_case(&caller.principal.user.username) {
            let user = c.state.store.get_user(caller.id()).await.gql()?;
            return Ok(user.map(GqlEntity::User));
        }
        Ok(None)
    }
}
