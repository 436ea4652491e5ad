//! Reading the client's address from `X-Forwarded-For`, as written by
//! trusted proxies.
//!
//! Each proxy appends the address it received the request from, so the
//! entries are read right to left: trusted proxies are skipped, and the
//! first address that is not a trusted proxy is the client. Everything to
//! its left was written by the client and proves nothing. An entry that is
//! not an address stops the walk: what lies beyond it cannot be trusted to
//! be in order.

use std::net::{IpAddr, SocketAddr};

/// One entry: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:4711`, with surrounding spaces.
pub fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sock) = entry.parse::<SocketAddr>() {
        return Some(sock.ip());
    }
    entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .and_then(|e| e.parse::<std::net::Ipv6Addr>().ok())
        .map(IpAddr::V6)
}

/// The client address the header values (in order, each comma-separated)
/// report, given which addresses are trusted proxies. `None` when the
/// right-most entry is unusable. When every entry up to the first unusable
/// one (or the left end) is a trusted proxy, the left-most of those.
pub fn forwarded_client<'a>(
    values: impl IntoIterator<Item = &'a str>,
    trusted: impl Fn(&IpAddr) -> bool,
) -> Option<IpAddr> {
    let entries: Vec<&str> = values.into_iter().flat_map(|v| v.split(',')).collect();
    let mut innermost_proxy = None;
    for entry in entries.iter().rev() {
        let Some(ip) = parse_hop(entry) else {
            break;
        };
        if !trusted(&ip) {
            return Some(ip);
        }
        innermost_proxy = Some(ip);
    }
    innermost_proxy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn hops_with_ports_and_brackets() {
        assert_eq!(parse_hop(" 192.0.2.1 "), Some(ip("192.0.2.1")));
        assert_eq!(parse_hop("192.0.2.1:4711"), Some(ip("192.0.2.1")));
        assert_eq!(parse_hop("2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop("[2001:db8::1]:443"), Some(ip("2001:db8::1")));
        for bad in [
            "",
            "unknown",
            "_hidden",
            "192.0.2",
            "[192.0.2.1]",
            "1.2.3.4:x",
        ] {
            assert_eq!(parse_hop(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn right_to_left_past_trusted_proxies() {
        let proxy = |i: &IpAddr| i.is_loopback() || *i == ip("10.0.0.5");
        assert_eq!(
            forwarded_client(["203.0.113.9, 192.0.2.1:5000, 10.0.0.5"], proxy),
            Some(ip("192.0.2.1"))
        );
        assert_eq!(
            forwarded_client(["203.0.113.9", "[2001:db8::7]:1"], proxy),
            Some(ip("2001:db8::7")),
            "several header lines are one list"
        );
        assert_eq!(
            forwarded_client(["garbage, 192.0.2.1"], proxy),
            Some(ip("192.0.2.1"))
        );
        assert_eq!(
            forwarded_client(["192.0.2.1, garbage, 10.0.0.5"], proxy),
            Some(ip("10.0.0.5")),
            "stops at the first unusable entry from the right"
        );
        assert_eq!(forwarded_client(["192.0.2.1, garbage"], proxy), None);
        assert_eq!(
            forwarded_client(["127.0.0.1, 10.0.0.5"], proxy),
            Some(ip("127.0.0.1"))
        );
        assert_eq!(forwarded_client([""], proxy), None);
    }
}
