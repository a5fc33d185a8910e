//! Sending notices by email. The application writes each message into the outbox in
//! the transaction that gives its notice (`keysmith_app::notices`); this is the part
//! that speaks SMTP: [`send_due`] claims due messages under a lease, so that one
//! replica sends each, and retries a temporary refusal (4xx, or a server that cannot
//! be reached) with backoff; a permanent refusal (5xx) fails the message at once.
//!
//! Every body goes out quoted-printable, never as raw 7-bit text: a bare CR or LF in an
//! unencoded body is what RUSTSEC-2026-0561 (lettre < 0.11.24) lets through to the
//! SMTP conversation, and an encoded body has none.

use crate::state::AppState;
use keysmith_store::{Email, EmailAttempt, EmailStatus};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// How long a replica holds a claimed message before another may take it over; longer
/// than the SMTP timeouts of one attempt.
const LEASE_MS: i64 = 5 * 60_000;
/// How long to wait for each SMTP command.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Messages one pass sends at most.
const BATCH: u32 = 20;

/// How the server reaches its mail server, from the configuration (`smtp_*`).
#[derive(Clone, Default)]
pub struct SmtpSettings {
    /// `smtps://host[:465]` (TLS from the start), `smtp://host[:587]` (STARTTLS,
    /// required), or `smtp://host:port?tls=none` (plain text, loopback only).
    pub url: String,
    /// The sender, `Keysmith <keysmith@example.com>`.
    pub from: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// A PEM certificate to trust besides the public roots (an internal relay).
    pub ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("url", &self.url)
            .field("from", &self.from)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// The SMTP client and the sender.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// The client `settings` describe, or why it cannot be made (a sentence naming the
    /// setting).
    pub fn new(settings: &SmtpSettings) -> Result<Self, String> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| format!("smtp_from `{}` is not an address ({e})", settings.from))?;
        let url = url::Url::parse(&settings.url).map_err(|e| format!("smtp_url is not a URL ({e})"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "smtp_url must not hold credentials: set smtp_username, and smtp_password (or KEYSMITH_SMTP_PASSWORD_FILE)"
                    .into(),
            );
        }
        let host = url
            .host_str()
            .ok_or("smtp_url names no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let mut plain = false;
        for (name, value) in url.query_pairs() {
            match (name.as_ref(), value.as_ref()) {
                ("tls", "none") => plain = true,
                _ => {
                    return Err(format!(
                        "smtp_url: unknown option `{name}={value}` (only tls=none, on loopback)"
                    ));
                }
            }
        }
        let tls = |host: &str| -> Result<TlsParameters, String> {
            let mut params = TlsParameters::builder(host.to_owned());
            if let Some(path) = &settings.ca_file {
                let pem = std::fs::read(path).map_err(|e| format!("smtp_ca_file {}: {e}", path.display()))?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| format!("smtp_ca_file {} holds no PEM certificate ({e})", path.display()))?;
                params = params.add_root_certificate(cert);
            }
            params
                .build_rustls()
                .map_err(|e| format!("smtp_url: TLS setup failed ({e})"))
        };
        let (mode, default_port) = match (url.scheme(), plain) {
            ("smtps", false) => (Tls::Wrapper(tls(&host)?), 465),
            ("smtp", false) => (Tls::Required(tls(&host)?), 587),
            ("smtp", true) if is_loopback(&host) => (Tls::None, 25),
            ("smtp", true) => {
                return Err(format!(
                    "smtp_url: plain-text SMTP (tls=none) only to this machine (127.0.0.1, ::1, localhost), not `{host}`"
                ));
            }
            (scheme, _) => return Err(format!("smtp_url: `{scheme}://` is not smtp:// or smtps://")),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(url.port().unwrap_or(default_port))
            .tls(mode)
            .timeout(Some(TIMEOUT));
        match (&settings.username, &settings.password) {
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
            }
            (None, None) => {}
            _ => return Err("set both smtp_username and smtp_password, or neither".into()),
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    /// The message as it goes out: plain text, quoted-printable.
    fn message(&self, email: &Email) -> Result<Message, String> {
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|e| format!("`{}` is not an email address ({e})", email.to))?;
        let body = Body::new_with_encoding(email.body.clone(), ContentTransferEncoding::QuotedPrintable)
            .map_err(|_| "the body cannot be encoded".to_owned())?;
        let subject: String = email.subject.chars().filter(|c| !c.is_control()).collect();
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| format!("the message cannot be built ({e})"))
    }

    /// Sends one message: `Ok`, or the error and whether trying again may help.
    async fn send(&self, email: &Email) -> Result<(), (String, bool)> {
        let message = self.message(email).map_err(|e| (e, false))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) => Err((e.to_string(), !e.is_permanent())),
        }
    }
}

/// Whether `host` is this machine. (`smtp://` is not a scheme the URL standard knows,
/// so its host comes as text, never as an address.)
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Sends the messages that are due; how many were sent.
pub async fn send_due(state: &AppState, mailer: &Mailer) -> Result<usize, keysmith_store::StoreError> {
    let now = state.now();
    let mut sent = 0;
    for email in state.store.claim_emails(now, now + LEASE_MS, BATCH).await? {
        let outcome = mailer.send(&email).await;
        let at = state.now();
        let attempt = match outcome {
            Ok(()) => {
                tracing::info!(email.id = email.id, "email sent");
                sent += 1;
                EmailAttempt {
                    status: EmailStatus::Sent,
                    error: None,
                    at,
                    next_attempt_at: at,
                }
            }
            Err((error, retry)) => {
                // Attempts so far, this one included.
                let attempts = email.attempts + 1;
                let wait = usize::try_from(email.attempts)
                    .ok()
                    .and_then(|i| crate::webhooks::BACKOFF_SECS.get(i))
                    .filter(|_| retry);
                tracing::warn!(email.id = email.id, email.attempts = attempts, error.detail = %error,
                    will_retry = wait.is_some(), "email not sent");
                EmailAttempt {
                    status: if wait.is_some() {
                        EmailStatus::Pending
                    } else {
                        EmailStatus::Failed
                    },
                    error: Some(error),
                    at,
                    next_attempt_at: at + wait.map_or(0, |s| s * 1000),
                }
            }
        };
        state.store.finish_email(email.id, &attempt).await?;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> SmtpSettings {
        SmtpSettings {
            url: url.into(),
            from: "Keysmith <keysmith@example.test>".into(),
            ..SmtpSettings::default()
        }
    }

    #[test]
    fn plain_text_smtp_only_to_this_machine() {
        for ok in [
            "smtp://127.0.0.1:2525?tls=none",
            "smtp://[::1]:2525?tls=none",
            "smtp://localhost?tls=none",
            "smtp://mail.example.com",
            "smtps://mail.example.com:465",
        ] {
            assert!(Mailer::new(&settings(ok)).is_ok(), "{ok}");
        }
        let refused = |url: &str| Mailer::new(&settings(url)).unwrap_err();
        assert!(refused("smtp://mail.example.com?tls=none").contains("only to this machine"));
        assert!(refused("smtp://10.0.0.1:25?tls=none").contains("only to this machine"));
        assert!(refused("smtp://127.0.0.1.example.com?tls=none").contains("only to this machine"));
        assert!(refused("smtp://user:pw@mail.example.com").contains("credentials"));
        assert!(refused("http://mail.example.com").contains("not smtp://"));
        assert!(refused("smtp://mail.example.com?tls=maybe").contains("unknown option"));
        let mut s = settings("smtp://mail.example.com");
        s.from = "not an address".into();
        assert!(Mailer::new(&s).unwrap_err().contains("smtp_from"));
        s = settings("smtp://mail.example.com");
        s.username = Some("u".into());
        assert!(Mailer::new(&s).unwrap_err().contains("smtp_password"));
        s.password = Some("hunter2-secret".into());
        assert!(!format!("{s:?}").contains("hunter2"), "the password never shows");
    }

    #[test]
    fn bodies_go_out_quoted_printable_with_no_bare_line_ends() {
        let mailer = Mailer::new(&settings("smtp://127.0.0.1:2525?tls=none")).unwrap();
        let email = Email {
            id: 1,
            to: "alice@example.test".into(),
            subject: "Keysmith: a\r\nBcc: eve@example.test".into(),
            body: "Hello,\r.\rQUIT\n.\nünïcode\n".into(),
            status: EmailStatus::Pending,
            attempts: 0,
            next_attempt_at: 0,
            last_error: None,
            created_at: 0,
            sent_at: None,
        };
        let raw = String::from_utf8(mailer.message(&email).unwrap().formatted()).unwrap();
        assert!(raw.contains("Content-Transfer-Encoding: quoted-printable"), "{raw}");
        assert!(!raw.contains("\nBcc:") && !raw.contains("\r\nQUIT"), "{raw}");
        let body = &raw[raw.find("\r\n\r\n").unwrap() + 4..];
        for (i, c) in body.char_indices() {
            if c == '\r' {
                assert_eq!(&body[i..i + 2], "\r\n", "a bare CR: {body:?}");
            }
            if c == '\n' {
                assert_eq!(&body[i - 1..=i], "\r\n", "a bare LF: {body:?}");
            }
        }
        // A line of a lone dot stays in the message; the transport dot-stuffs it
        // (RUSTSEC-2021-0069, fixed), and the end-to-end test reads it back.
    }
}
