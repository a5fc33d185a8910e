//! What the server runs for each connection: the peer's address goes into every
//! request, and forward auth, the hot path of a proxy in front of every request, is
//! answered here, before the application's router, its request extensions and its
//! middleware. A warm forward-auth request is answered without a future to allocate
//! and without a request extension to insert. `GET /api/v1/viewer` is answered here
//! as well, by its own handler, with the headers and metric the router would add.

use crate::access::Authorized;
use crate::error::ApiError;
use crate::routes::{forward_auth, viewer};
use crate::state::AppState;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::extract::{ConnectInfo, Request};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use axum::serve::{IncomingStream, Listener};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tower::Service;

/// Makes a [`Connection`] for each accepted connection: give it to `axum::serve`.
#[derive(Clone)]
pub struct Connections {
    state: AppState,
    app: Router,
    direct_viewer: bool,
}

impl Connections {
    pub fn new(state: AppState) -> Self {
        let app = crate::routes::application(state.clone());
        // While request lines are logged (level info), the viewer goes through the
        // router and its logging layer like every other request.
        let direct_viewer = !tracing::enabled!(tracing::Level::INFO);
        Self {
            state,
            app,
            direct_viewer,
        }
    }

    /// The service for one connection from `peer`.
    pub fn connection(&self, peer: SocketAddr) -> Connection {
        Connection {
            state: self.state.clone(),
            app: self.app.clone(),
            peer,
            direct_viewer: self.direct_viewer,
        }
    }
}

impl<L> Service<IncomingStream<'_, L>> for Connections
where
    L: Listener<Addr = SocketAddr>,
{
    type Response = Connection;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Connection, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, stream: IncomingStream<'_, L>) -> std::future::Ready<Result<Connection, Infallible>> {
        std::future::ready(Ok(self.connection(*stream.remote_addr())))
    }
}

/// One connection's requests: forward auth answered directly, everything else by the
/// application with the peer's address in `ConnectInfo`.
#[derive(Clone)]
pub struct Connection {
    state: AppState,
    app: Router,
    peer: SocketAddr,
    direct_viewer: bool,
}

impl Service<Request> for Connection {
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request) -> Answer {
        if forward_auth::is_forward_auth(request.uri().path()) {
            let started = Instant::now();
            let peer = Some(self.peer);
            if let Some(response) = forward_auth::answer_now(&self.state, request.headers(), peer, started) {
                return Answer::Now(Some(response));
            }
            let state = self.state.clone();
            return Answer::Later(Box::pin(async move {
                forward_auth::answer_stored(&state, request.headers(), peer, started).await
            }));
        }
        // `GET /api/v1/viewer`, the "who am I" of scripts and health checks, is answered
        // here too, with the same headers and metric as the router's route: without a
        // future when the key and the caller are warm, else by the route's own steps.
        if self.direct_viewer && request.method() == Method::GET && request.uri().path() == viewer::PATH {
            let started = Instant::now();
            let peer = self.peer;
            let state = &self.state;
            return match viewer::answer_now(state, request.headers(), peer) {
                viewer::Lane::Done(response) => Answer::Now(Some(viewer_finished(state, response, started))),
                viewer::Lane::ReadCaller(principal) => {
                    let state = state.clone();
                    Answer::Later(Box::pin(async move {
                        let response = viewer::answer_caller(&state, principal).await;
                        viewer_finished(&state, response, started)
                    }))
                }
                viewer::Lane::ReadKey => {
                    let state = state.clone();
                    Answer::Later(Box::pin(async move {
                        let response = viewer::answer_stored(&state, request.headers(), peer).await;
                        viewer_finished(&state, response, started)
                    }))
                }
                viewer::Lane::Extractor => {
                    let state = state.clone();
                    Answer::Later(Box::pin(async move {
                        let (mut parts, _) = request.into_parts();
                        parts.extensions.insert(ConnectInfo(peer));
                        let response = match Authorized::from_request_parts(&mut parts, &state).await {
                            Ok(Authorized(caller)) => viewer::render(&caller, state.hsts),
                            Err(e) => e.into_response(),
                        };
                        viewer_finished(&state, response, started)
                    }))
                }
            };
        }
        request.extensions_mut().insert(ConnectInfo(self.peer));
        Answer::App(self.app.call(request))
    }
}

/// The router's headers and metric on a viewer answered on the connection. A viewer
/// (200) carries the router's headers already ([`viewer::render`]); a refusal gets them here.
fn viewer_finished(state: &AppState, response: Response, started: Instant) -> Response {
    let response = if response.status() == StatusCode::OK {
        response
    } else {
        crate::routes::common_headers(state.hsts, response)
    };
    let status = response.status().as_u16();
    state.metrics.viewer_request(status, started.elapsed());
    response
}

/// The answer to one request: ready at once, after a store read, or the application's.
pub enum Answer {
    Now(Option<Response>),
    Later(Pin<Box<dyn Future<Output = Response> + Send>>),
    App(RouteFuture<Infallible>),
}

impl Future for Answer {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Self::Now(response) => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                // Polled again after it answered: a caller's bug, answered as such
                // rather than with a panic.
                None => Poll::Ready(Ok(
                    ApiError::Internal("an answer was polled twice".into()).into_response()
                )),
            },
            Self::Later(answer) => answer.as_mut().poll(cx).map(Ok),
            Self::App(answer) => Pin::new(answer).poll(cx),
        }
    }
}
