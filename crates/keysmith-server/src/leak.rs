//! Leak response's door for GitHub's secret scanning ([`github`]). What a report does
//! (revoke a genuine key, audit and announce it, the per-address limit of holders'
//! reports) is the application's: `keysmith_app::leaks`.

pub mod github;
