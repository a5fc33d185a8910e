//! `/authorize`: the page the wandb SDK points people to ("Create a new API key at:
//! <host>/authorize?ref=models"). A plain HTML form, no script: sign in with your
//! password, name the key, and the next page shows it once, to paste into
//! `wandb login` or to keep in `WANDB_API_KEY`.

use crate::access::Caller;
use crate::auth::password::check_password;
use crate::auth::source::SourceAddr;
use crate::auth::{AuthMethod, Principal};
use crate::error::ApiError;
use crate::lifecycle::{MintRequest, mint_key};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keysmith_core::{KeyName, SecretString};
use keysmith_store::KeyFormat;
use serde::Deserialize;

const CSP: &str = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[derive(Deserialize)]
struct AuthorizeForm {
    username: String,
    password: String,
    #[serde(default)]
    name: String,
}

fn page(status: StatusCode, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Create an API key · Keysmith</title></head><body><main>\n{body}\n</main></body></html>\n"
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn form(error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p role=\"alert\"><strong>{e}</strong></p>\n"))
        .unwrap_or_default();
    format!(
        "<h1>Create an API key</h1>\n{error}\
         <p>Sign in to create a key for the <code>wandb</code> SDK. The key is shown once.</p>\n\
         <form method=\"post\" action=\"/authorize\">\n\
         <p><label for=\"username\">Username or email</label><br>\
         <input id=\"username\" name=\"username\" autocomplete=\"username\" required></p>\n\
         <p><label for=\"password\">Password</label><br>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required></p>\n\
         <p><label for=\"name\">Key name</label><br>\
         <input id=\"name\" name=\"name\" value=\"wandb SDK\" maxlength=\"128\" required></p>\n\
         <p><button type=\"submit\">Create API key</button></p>\n</form>"
    )
}

/// The form.
pub async fn authorize_form() -> Response {
    page(StatusCode::OK, &form(None))
}

/// Signs in, creates the key and shows it once.
pub async fn authorize_submit(State(state): State<AppState>, SourceAddr(source): SourceAddr, body: Bytes) -> Response {
    let Ok(submitted) = serde_urlencoded::from_bytes::<AuthorizeForm>(&body) else {
        return page(StatusCode::BAD_REQUEST, &form(Some("Fill in every field.")));
    };
    let password = SecretString::new(submitted.password);
    let user = match check_password(&state, &submitted.username, password, &source).await {
        Ok(user) => user,
        Err(ApiError::RateLimited { retry_after_secs }) => {
            let message = format!("Too many failed attempts. Try again in {retry_after_secs} seconds.");
            return page(StatusCode::TOO_MANY_REQUESTS, &form(Some(&message)));
        }
        Err(ApiError::InvalidCredentials) => {
            return page(StatusCode::UNAUTHORIZED, &form(Some("Wrong username or password.")));
        }
        Err(other) => return other.into_response(),
    };
    let Ok(name) = KeyName::parse(&submitted.name) else {
        return page(
            StatusCode::BAD_REQUEST,
            &form(Some("Give the key a name of 1 to 128 characters.")),
        );
    };
    let principal = Principal {
        user: keysmith_store::UserRef {
            id: user.id,
            kind: user.kind,
            username: user.username.clone(),
        },
        via: AuthMethod::Session,
    };
    let caller = match Caller::with_roles(&state, principal).await {
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    let request = MintRequest {
        name,
        owner: None,
        format: KeyFormat::V1,
        source,
    };
    match mint_key(&state, &caller, request).await {
        Ok(minted) => page(
            StatusCode::CREATED,
            &format!(
                "<h1>Your new API key</h1>\n\
                 <p><strong>Copy it now: it will not be shown again.</strong></p>\n\
                 <p><output><code>{}</code></output></p>\n\
                 <p>Paste it at the <code>wandb login</code> prompt, or keep it in an environment variable, \
                 never on a command line or in a file you commit:</p>\n\
                 <pre>read -rs WANDB_API_KEY &amp;&amp; export WANDB_API_KEY</pre>\n\
                 <p>Key ID: <code>{}</code>. Delete the key when you no longer need it.</p>",
                minted.generated.plaintext.expose(),
                minted.key.key_id
            ),
        ),
        Err(ApiError::KeyCreationDisabled) => page(
            StatusCode::FORBIDDEN,
            "<h1>Key creation is disabled</h1>\n<p>API key creation has been disabled by your organization \
             administrator. You can still edit, delete, and use existing API keys.</p>",
        ),
        Err(other) => other.into_response(),
    }
}
