//! Network allowlists (docs/DESIGN.md §3, "Network allowlists"): the addresses a key
//! may be used from, as CIDR blocks, IPv4 and IPv6.
//!
//! A list is kept canonical: each block with its host bits cleared, sorted, without
//! duplicates, written as `203.0.113.0/24,2001:db8::/32`. An IPv4 address seen as
//! IPv4-mapped IPv6 (`::ffff:203.0.113.7`) is matched as the IPv4 address it is.

use ipnet::IpNet;
use std::fmt;
use std::net::IpAddr;

/// Blocks one list holds at most.
pub const MAX_NETWORKS: usize = 64;

/// A non-empty allowlist.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Networks(Box<[IpNet]>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworksError {
    #[error("`{0}` is not a network: write an address or a CIDR block such as 203.0.113.0/24 or 2001:db8::/32")]
    Malformed(String),
    #[error("an allowlist holds 1 to {MAX_NETWORKS} networks")]
    Count,
}

impl Networks {
    /// Parses blocks separated by commas, white space or new lines; a bare address is a
    /// block of one (/32, /128).
    pub fn parse(text: &str) -> Result<Self, NetworksError> {
        let mut nets = Vec::new();
        for item in text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => match item.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => return Err(NetworksError::Malformed(item.chars().take(64).collect())),
                },
            };
            nets.push(canonical(net));
            if nets.len() > MAX_NETWORKS {
                return Err(NetworksError::Count);
            }
        }
        if nets.is_empty() {
            return Err(NetworksError::Count);
        }
        nets.sort_unstable();
        nets.dedup();
        Ok(Self(nets.into_boxed_slice()))
    }

    /// A list no address is in: what a stored list that no longer parses becomes, so
    /// that damaged data fails closed.
    pub fn nothing() -> Self {
        Self(Box::new([]))
    }

    /// Whether `ip` is in one of the blocks. An unknown address is in none.
    #[inline]
    pub fn contains(&self, ip: Option<IpAddr>) -> bool {
        let Some(ip) = ip else { return false };
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// Whether every address of this list is also in `wider`: each block lies inside
    /// one of `wider`'s.
    pub fn within(&self, wider: &Networks) -> bool {
        self.0.iter().all(|net| wider.0.iter().any(|w| w.contains(net)))
    }

    pub fn as_slice(&self) -> &[IpNet] {
        &self.0
    }
}

/// Host bits cleared; an IPv4-mapped IPv6 block as the IPv4 block it is.
fn canonical(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && v6.prefix_len() >= 96
        && let Ok(mapped) = ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(mapped.trunc());
    }
    net.trunc()
}

impl fmt::Display for Networks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, net) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn lists_are_kept_canonical() {
        let n = Networks::parse("2001:db8::1/32, 203.0.113.77/24\n198.51.100.7 203.0.113.0/24").unwrap();
        assert_eq!(n.to_string(), "198.51.100.7/32,203.0.113.0/24,2001:db8::/32");
        assert_eq!(
            Networks::parse(&n.to_string()).unwrap(),
            n,
            "the canonical text reads back the same"
        );
        assert_eq!(
            Networks::parse("::ffff:10.1.2.3/120").unwrap().to_string(),
            "10.1.2.0/24"
        );
    }

    #[test]
    fn addresses_match_their_blocks_in_both_families() {
        let n = Networks::parse("203.0.113.0/24,2001:db8::/32").unwrap();
        assert!(n.contains(ip("203.0.113.200")));
        assert!(
            n.contains(ip("::ffff:203.0.113.9")),
            "IPv4-mapped IPv6 is the IPv4 address"
        );
        assert!(n.contains(ip("2001:db8:1::5")));
        assert!(!n.contains(ip("203.0.114.1")));
        assert!(!n.contains(ip("2001:db9::1")));
        assert!(!n.contains(None), "an unknown address fails closed");
        assert!(Networks::parse("0.0.0.0/0").unwrap().contains(ip("192.0.2.1")));
    }

    #[test]
    fn a_list_is_within_another_when_each_block_is_inside_one_of_its_blocks() {
        let office = Networks::parse("203.0.113.0/24,2001:db8::/32").unwrap();
        assert!(Networks::parse("203.0.113.8/29").unwrap().within(&office));
        assert!(Networks::parse("2001:db8:5::/48,203.0.113.1").unwrap().within(&office));
        assert!(office.within(&office));
        assert!(
            !Networks::parse("203.0.112.0/23").unwrap().within(&office),
            "wider than the block"
        );
        assert!(!Networks::parse("203.0.113.0/24,198.51.100.1").unwrap().within(&office));
    }

    #[test]
    fn bad_lists_are_refused_with_the_offending_item() {
        assert_eq!(
            Networks::parse("10.0.0.0/8, example.com"),
            Err(NetworksError::Malformed("example.com".into()))
        );
        assert!(matches!(
            Networks::parse("10.0.0.0/33"),
            Err(NetworksError::Malformed(_))
        ));
        assert_eq!(Networks::parse(" , "), Err(NetworksError::Count));
        let many: Vec<String> = (0..65).map(|i| format!("10.0.{i}.0/24")).collect();
        assert_eq!(Networks::parse(&many.join(",")), Err(NetworksError::Count));
    }
}
