//! A JWT issuer for identity federation tests: ES256 signing keys made for the test
//! ([`Signer`]), and an issuer served on loopback ([`LoopbackIssuer`]) with the
//! discovery document and JWKS a real one publishes (OpenID Connect Discovery), so the
//! server under test fetches them over HTTP as it would from a real provider.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

/// An ES256 signing key and its public half as a JWK.
pub struct Signer {
    pub kid: String,
    der: Vec<u8>,
    pub jwk: serde_json::Value,
}

impl Signer {
    /// A fresh P-256 key named `kid`.
    pub fn new(kid: &str) -> Self {
        let secret = loop {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).expect("random bytes");
            if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
                break secret;
            }
        };
        let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&secret.public_key(), false);
        let coordinate = |c: Option<&p256::FieldBytes>| URL_SAFE_NO_PAD.encode(c.expect("an uncompressed point"));
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": coordinate(point.x()),
            "y": coordinate(point.y()),
        });
        Self {
            kid: kid.into(),
            der: secret.to_pkcs8_der().expect("PKCS#8").as_bytes().to_vec(),
            jwk,
        }
    }

    /// A JWT of `claims`, signed with this key and naming it in `kid`.
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&self.der)).expect("a signed JWT")
    }
}

/// An issuer on a free loopback port: `GET /.well-known/openid-configuration` names it
/// and its `jwks_uri`; `GET /jwks` answers the key set. Serves until the process ends.
pub struct LoopbackIssuer {
    pub url: String,
}

impl LoopbackIssuer {
    pub fn start(keys: &[&Signer]) -> Self {
        Self::start_naming(keys, None)
    }

    /// One whose discovery document names `jwks_uri` instead of its own `/jwks`.
    pub fn start_naming(keys: &[&Signer], jwks_uri: Option<&str>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("http://127.0.0.1:{}", listener.local_addr().expect("an address").port());
        let jwks = serde_json::json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }).to_string();
        let served_url = url.clone();
        let named_jwks = jwks_uri.map_or_else(|| format!("{url}/jwks"), str::to_owned);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(&stream);
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                // The headers are read and ignored.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = request_line.split_whitespace().nth(1).unwrap_or("");
                let (status, body) = match path {
                    "/.well-known/openid-configuration" => (
                        "200 OK",
                        serde_json::json!({
                            "issuer": served_url,
                            "jwks_uri": named_jwks,
                            "id_token_signing_alg_values_supported": ["ES256"],
                        })
                        .to_string(),
                    ),
                    "/jwks" => ("200 OK", jwks.clone()),
                    _ => ("404 Not Found", "{}".to_owned()),
                };
                let mut stream = &stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { url }
    }
}
