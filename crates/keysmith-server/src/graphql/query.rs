//! Root queries: the viewer (every SDK's login check), server info, user search and
//! entities (teams).

use super::context::{GqlResultExt, caller};
use super::objects::{GqlEntity, GqlUser, LocalVersionInfo, ServerInfo, UserConnection, UserEdge};
use async_graphql::{Context, Object};
use keysmith_app::{AppError, access, users};

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
        let found = users::search(&c.state.app, caller, query.as_deref().unwrap_or_default())
            .await
            .gql()?;
        let edges = found
            .into_iter()
            .map(|user| UserEdge {
                node: Some(GqlUser(user)),
            })
            .collect();
        Ok(Some(UserConnection { edges }))
    }

    /// A team of one of the caller's organizations, or the caller's own entity.
    async fn entity(&self, ctx: &Context<'_>, name: String) -> async_graphql::Result<Option<GqlEntity>> {
        let (c, caller) = caller(ctx)?;
        match access::caller_team(&c.state.app, caller, &name, None).await {
            Ok((_, team)) => return Ok(Some(GqlEntity::Team(team))),
            Err(AppError::NotFound(_)) => {}
            Err(other) => return Err(other).gql(),
        }
        if name.eq_ignore_ascii_case(&caller.principal.user.username) {
            let user = c.state.store.get_user(caller.id()).await.gql()?;
            return Ok(user.map(GqlEntity::User));
        }
        Ok(None)
    }
}
