//! Where the server may send requests on a tenant's behalf (webhooks).
//!
//! A webhook URL is chosen by an organization admin, so without a policy it is a way to make
//! the server call its own private network: the cloud metadata service at 169.254.169.254,
//! a database on 10.0.0.5, the admin port on localhost (SSRF). Webhooks therefore go to public
//! addresses only, checked twice: when the URL is registered (literal addresses and
//! `localhost`) and when it is delivered (every address the name resolves to, through
//! [`PublicOnlyResolver`], so a name that later points inside cannot slip through). Deliveries
//! do not follow redirects, which would bypass both checks. Development and tests that run a
//! receiver on loopback set `webhook_allow_private`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether `ip` is a globally routable unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation 2001:db8::/32
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || a == 0 // "this network" 0/8
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16: cloud metadata services live here
        || (a == 100 && (b & 0xc0) == 64) // carrier-grade NAT 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments 192.0.0/24
        || ip.is_documentation()
        || (a == 198 && (b & 0xfe) == 18) // benchmarking 198.18/15
        || ip.is_multicast()
        || a >= 240) // reserved and broadcast
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`) or NAT64 (`64:ff9b::a.b.c.d`)
/// IPv6 address, which reach that IPv4 host.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]).then(|| {
        let o = v6.octets();
        Ipv4Addr::new(o[12], o[13], o[14], o[15])
    })
}

/// Checks a webhook URL's host when it is registered: a literal address must be public and
/// `localhost` is refused. Names are checked again at delivery, when they are resolved.
pub fn check_webhook_host(url: &reqwest::Url) -> Result<(), String> {
    let refused = |what: &str| Err(format!("url must point to a public address, not {what}"));
    let Some(host) = url.host_str() else {
        return Err("url has no host".into());
    };
    // The URL parser has already normalised IPv4 shorthands (`0x7f.1` is `127.0.0.1`);
    // IPv6 literals keep their brackets.
    if let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return if is_public(ip) { Ok(()) } else { refused(host) };
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return refused(&name);
    }
    Ok(())
}

/// The resolver's refusal: the name has no public address.
#[derive(Debug)]
pub struct NotPublic(pub String);

impl std::fmt::Display for NotPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} resolves to no public address", self.0)
    }
}

impl std::error::Error for NotPublic {}

/// A DNS resolver for outgoing webhook requests that drops every non-public address, and
/// fails when none is left.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicOnlyResolver;

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // The port is replaced by the URL's own; 0 is a placeholder for the lookup.
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(Box::new(NotPublic(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(s: &str) -> bool {
        is_public(s.parse().unwrap())
    }

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!public(ip), "{ip} must not count as public");
        }
        for ip in [
            "1.1.1.1",
            "93.184.215.14",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(public(ip), "{ip} is public");
        }
    }

    #[tokio::test]
    async fn resolver_drops_loopback_names() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let err = match PublicOnlyResolver.resolve(name).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e,
        };
        assert!(err.is::<NotPublic>(), "{err}");
    }

    #[test]
    fn registration_refuses_literal_private_hosts_and_localhost() {
        let check = |u: &str| check_webhook_host(&reqwest::Url::parse(u).unwrap());
        for u in [
            "http://127.0.0.1:9/x",
            "http://[::1]/x",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost:8080/",
            "http://LOCALHOST./",
            "http://api.localhost/",
            "http://0x7f.1/",
        ] {
            assert!(check(u).is_err(), "{u}");
        }
        assert!(check("https://hooks.example.com/keyway").is_ok());
        assert!(check("https://1.1.1.1/hook").is_ok());
    }
}
