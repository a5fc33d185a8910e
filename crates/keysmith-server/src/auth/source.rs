//! The address a request came from, for rate limits, a key's recent sources and logs.
//!
//! The peer's address, unless the peer is one of the `trusted_proxies`: then the
//! client is the rightmost address in `X-Forwarded-For` that is not itself a trusted
//! proxy (each proxy appends the address it received the request from, so everything
//! left of the first untrusted hop could have been written by the client).

use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use ipnet::IpNet;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

/// The client's IP address as text, or `unknown` when the server was not started with
/// connect info (as in tests that drive the router without a socket).
#[derive(Debug, Clone)]
pub struct SourceAddr(pub String);

impl FromRequestParts<AppState> for SourceAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let text = AddressText::of(&state.trusted_proxies, &parts.extensions, &parts.headers);
        Ok(Self(text.as_str().to_owned()))
    }
}

/// The proxies whose `X-Forwarded-For` is believed: addresses and CIDR ranges.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a comma-separated list such as `127.0.0.1, 10.0.0.0/8, ::1`.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => match item.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => {
                        return Err(format!(
                            "`{item}` in trusted_proxies is neither an IP address nor a CIDR range such as 10.0.0.0/8"
                        ));
                    }
                },
            };
            nets.push(net);
        }
        Ok(Self(nets))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// The client's address: the peer's, or behind trusted proxies the first untrusted
/// hop of `X-Forwarded-For` read from the right. A malformed entry ends the walk at
/// the last hop known good.
pub fn client_ip(trusted: &TrustedProxies, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
    let peer = peer?.ip();
    if !trusted.contains(peer) {
        return Some(peer);
    }
    let mut client = peer;
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(value) = value.to_str() else {
            return Some(client);
        };
        for hop in value.rsplit(',') {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                return Some(client);
            };
            client = ip;
            if !trusted.contains(ip) {
                return Some(ip);
            }
        }
    }
    Some(client)
}

/// The connection's remote address, which the server puts in every request that
/// goes through the application; `None` when driven without a socket.
pub fn peer(extensions: &Extensions) -> Option<SocketAddr> {
    extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0)
}

/// The client's IP address as text, formatted on the stack (an IPv6 address takes at
/// most 45 characters): the hot path names a request's source without allocating.
pub struct AddressText {
    buf: [u8; 48],
    len: usize,
    ip: Option<IpAddr>,
}

impl AddressText {
    pub fn of(trusted: &TrustedProxies, extensions: &Extensions, headers: &HeaderMap) -> Self {
        Self::of_peer(trusted, peer(extensions), headers)
    }

    pub fn of_peer(trusted: &TrustedProxies, peer: Option<SocketAddr>, headers: &HeaderMap) -> Self {
        use std::io::Write;
        let ip = client_ip(trusted, peer, headers);
        let mut text = Self {
            buf: [0; 48],
            len: 0,
            ip,
        };
        match ip {
            // The common case by hand: `write!` costs several hundred instructions.
            Some(IpAddr::V4(v4)) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        text.push(b'.');
                    }
                    if octet >= 100 {
                        text.push(b'0' + octet / 100);
                    }
                    if octet >= 10 {
                        text.push(b'0' + octet / 10 % 10);
                    }
                    text.push(b'0' + octet % 10);
                }
            }
            Some(ip) => {
                let mut cursor = std::io::Cursor::new(&mut text.buf[..]);
                if write!(cursor, "{ip}").is_ok() {
                    text.len = usize::try_from(cursor.position()).unwrap_or(0);
                }
            }
            None => {}
        }
        text
    }

    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    /// The address itself, for allowlists; `None` when unknown.
    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    pub fn as_str(&self) -> &str {
        match std::str::from_utf8(&self.buf[..self.len]) {
            Ok(text) if !text.is_empty() => text,
            _ => "unknown",
        }
    }
}

/// The `User-Agent` header, or empty.
pub fn user_agent(headers: &HeaderMap) -> &str {
    headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::peer as peer_of;
    use super::*;
    use axum::http::HeaderValue;

    fn peer(addr: &str) -> Extensions {
        let mut extensions = Extensions::new();
        extensions.insert(ConnectInfo(addr.parse::<SocketAddr>().unwrap()));
        extensions
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn addresses_are_written_whole_or_unknown() {
        let none = TrustedProxies::default();
        let empty = HeaderMap::new();
        assert_eq!(AddressText::of(&none, &Extensions::new(), &empty).as_str(), "unknown");
        for addr in [
            "192.168.100.200:443",
            "0.0.0.0:1",
            "10.9.99.100:1",
            "255.255.255.255:1",
            "1.20.3.40:1",
            "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:1",
            "[::ffff:255.255.255.255]:1",
            "[2001:db8::1]:8080",
        ] {
            let ip = addr.parse::<SocketAddr>().unwrap().ip();
            assert_eq!(AddressText::of(&none, &peer(addr), &empty).as_str(), ip.to_string());
        }
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let trusted = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let headers = forwarded(&["203.0.113.9, 10.1.2.3"]);
        let ip = |ext: &Extensions, h: &HeaderMap| client_ip(&trusted, peer_of(ext), h).unwrap().to_string();
        // Untrusted peer: its own address, whatever it claims.
        assert_eq!(ip(&peer("198.51.100.7:1"), &headers), "198.51.100.7");
        // Trusted peer: the rightmost untrusted hop; a spoofed left part is ignored.
        assert_eq!(ip(&peer("127.0.0.1:1"), &headers), "203.0.113.9");
        let spoofed = forwarded(&["1.2.3.4", "203.0.113.9, 10.1.2.3"]);
        assert_eq!(ip(&peer("127.0.0.1:1"), &spoofed), "203.0.113.9");
        // Nothing forwarded, or all hops trusted: the last trusted hop.
        assert_eq!(ip(&peer("127.0.0.1:1"), &HeaderMap::new()), "127.0.0.1");
        assert_eq!(ip(&peer("127.0.0.1:1"), &forwarded(&["10.9.9.9"])), "10.9.9.9");
        // Garbage stops the walk at the last good hop.
        assert_eq!(
            ip(&peer("127.0.0.1:1"), &forwarded(&["203.0.113.9, nonsense"])),
            "127.0.0.1"
        );
    }

    #[test]
    fn bad_proxy_lists_are_explained() {
        assert!(TrustedProxies::parse("").unwrap().0.is_empty());
        assert!(
            TrustedProxies::parse("::1, fd00::/8")
                .unwrap()
                .contains("fd12::1".parse().unwrap())
        );
        let err = TrustedProxies::parse("10.0.0.0/8, localhost").unwrap_err();
        assert!(err.contains("`localhost`"), "{err}");
    }
}
