//! What resolvers see of the request, and the errors they answer with.

use crate::access::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use async_graphql::{Context, ErrorExtensions};
use keysmith_app::AppError;

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

/// The application's error as a GraphQL error, in W&B's shape: W&B's code (what the
/// SDKs read) decided here, from the error itself, and Keysmith's stable code and
/// message, the same as every other door's.
pub fn gql_error(err: AppError) -> async_graphql::Error {
    if let AppError::Internal(detail) = &err {
        tracing::error!(error.detail = %detail, "GraphQL request failed");
    }
    let wandb_code = wandb_code(&err);
    let err = ApiError::from(err);
    let code = err.code();
    async_graphql::Error::new(err.to_string()).extend_with(move |_, e| {
        e.set("code", wandb_code);
        e.set("keysmith_code", code);
    })
}

/// W&B's error code for an application error.
fn wandb_code(err: &AppError) -> &'static str {
    match err {
        AppError::NotFound(_)
        | AppError::Forbidden(_)
        | AppError::InsufficientScope { .. }
        | AppError::KeyCreationDisabled
        | AppError::LegacyKeysNotAllowed
        | AppError::ApiKeyExpired
        | AppError::InvalidCredentials
        | AppError::SsoRequired => "PERMISSION_ERROR",
        AppError::AlreadyExists(_) | AppError::RotationInProgress | AppError::LastAdmin => "CONFLICT",
        AppError::InvalidName { .. }
        | AppError::Invalid { .. }
        | AppError::InvalidQuery(_)
        | AppError::InvalidCursor
        | AppError::ExpiryExceedsPolicy(_)
        | AppError::InvitationInvalid => "BAD_USER_INPUT",
        AppError::RateLimited { .. } | AppError::Internal(_) => "INTERNAL_SERVER_ERROR",
    }
}

/// `?` on an application or store error in a resolver, keeping the error codes (the
/// blanket `From<Display>` of async-graphql would keep only the message).
pub trait GqlResultExt<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> GqlResultExt<T> for Result<T, AppError> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(gql_error)
    }
}

impl<T> GqlResultExt<T> for Result<T, keysmith_store::StoreError> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| gql_error(AppError::from(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keysmith_app::Missing;

    /// W&B's codes follow what each error means, as the status code REST answers with
    /// says it: refused or not found → PERMISSION_ERROR, a conflict → CONFLICT, bad
    /// input → BAD_USER_INPUT. Every variant of the application's error is here.
    #[test]
    fn wandb_codes_agree_with_the_rest_status_of_each_error() {
        let every = [
            AppError::NotFound(Missing::ApiKey),
            AppError::NotFound(Missing::Webhook),
            AppError::Forbidden("no"),
            AppError::InsufficientScope {
                needed: keysmith_core::KeyScope::Write,
                has: keysmith_core::KeyScope::Read,
            },
            AppError::InvalidName {
                field: "name",
                message: "bad".into(),
            },
            AppError::invalid("url", "bad"),
            AppError::InvalidQuery("bad".into()),
            AppError::InvalidCursor,
            AppError::AlreadyExists("team"),
            AppError::KeyCreationDisabled,
            AppError::LegacyKeysNotAllowed,
            AppError::ExpiryExceedsPolicy("too long".into()),
            AppError::RotationInProgress,
            AppError::ApiKeyExpired,
            AppError::LastAdmin,
            AppError::InvitationInvalid,
            AppError::InvalidCredentials,
            AppError::SsoRequired,
            AppError::RateLimited { retry_after_secs: 1 },
            AppError::Internal("boom".into()),
        ];
        for err in every {
            let by_status = match ApiError::from(err.clone()).status().as_u16() {
                401 | 403 | 404 => "PERMISSION_ERROR",
                409 => "CONFLICT",
                400 => "BAD_USER_INPUT",
                _ => "INTERNAL_SERVER_ERROR",
            };
            assert_eq!(wandb_code(&err), by_status, "{err:?}");
        }
    }
}
