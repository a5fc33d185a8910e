//! What resolvers see of the request, and the errors they answer with.

use crate::access::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use async_graphql::{Context, ErrorExtensions};

pub struct GqlContext {
    pub state: AppState,
    pub caller: Option<Caller>,
    pub source: String,
    /// The client is a wandb SDK older than 0.22.3.
    pub old_sdk: bool,
}

/// W&B's own rejection, which every SDK version prints cleanly.
pub fn not_logged_in() -> async_graphql::Error {
    async_graphql::Error::new("user is not logged in").extend_with(|_, e| e.set("code", "PERMISSION_ERROR"))
}

pub fn ctx<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a GqlContext> {
    ctx.data::<GqlContext>()
}

/// The caller, or the rejection.
pub fn caller<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<(&'a GqlContext, &'a Caller)> {
    let c = self::ctx(ctx)?;
    c.caller.as_ref().map(|caller| (c, caller)).ok_or_else(not_logged_in)
}

/// An API error as a GraphQL error, with W&B's code and Keysmith's stable one.
pub fn gql_error(err: ApiError) -> async_graphql::Error {
    if let ApiError::Internal(detail) = &err {
        tracing::error!(error.detail = %detail, "GraphQL request failed");
    }
    let wandb_code = match err.status().as_u16() {
        401 | 403 | 404 => "PERMISSION_ERROR",
        409 => "CONFLICT",
        400 => "BAD_USER_INPUT",
        _ => "INTERNAL_SERVER_ERROR",
    };
    let code = err.code();
    async_graphql::Error::new(err.to_string()).extend_with(move |_, e| {
        e.set("code", wandb_code);
        e.set("keysmith_code", code);
    })
}

/// `?` on an API or store error in a resolver, keeping the error codes (the blanket
/// `From<Display>` of async-graphql would keep only the message).
pub trait GqlResultExt<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> GqlResultExt<T> for Result<T, ApiError> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(gql_error)
    }
}

impl<T> GqlResultExt<T> for Result<T, keysmith_app::AppError> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| gql_error(ApiError::from(e)))
    }
}

impl<T> GqlResultExt<T> for Result<T, keysmith_store::StoreError> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| gql_error(ApiError::from(e)))
    }
}
