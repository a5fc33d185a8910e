//! The one path-parameter extractor, so a path axum cannot decode gets the same error
//! shape as everything else: axum's own `Path` answers such a request (a segment
//! that is not UTF-8 once percent-decoded, say `/api/v1/api-keys/%FF`, or a webhook
//! ID that is not an integer) with a plain-text 400 that no operation documents.

use crate::error::ApiError;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            // A path that cannot name anything names nothing: 404, like an unknown name.
            Err(PathRejection::FailedToDeserializePathParams(_)) => Err(ApiError::RouteNotFound),
            // A handler extracting parameters its route does not have: a bug here.
            Err(other) => Err(ApiError::Internal(other.body_text())),
        }
    }
}
