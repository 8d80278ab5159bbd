//! Where a callback may go: the rules that keep `callback_url` from reaching the host
//! itself, link-local or metadata addresses, or (when the host listens beyond loopback)
//! loopback and private networks that `--allow-callback-host` does not name.
//!
//! Pure: which IPs are this machine's own is asked of the caller (`is_local`), and name
//! resolution happens in the callers (intake at enqueue, the deliverer at each delivery,
//! which then connects to the very address it checked).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::invalid::Invalid;

/// One `--allow-callback-host` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedHost {
    /// One address.
    Ip(IpAddr),
    /// A network, `addr/prefix`.
    Net(IpAddr, u8),
    /// A host name as written in callback URLs (compared case-insensitively).
    Name(String),
}

impl AllowedHost {
    /// Parses `IP`, `IP/PREFIX` or a host name.
    pub fn parse(s: &str) -> Result<AllowedHost, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("an empty --allow-callback-host".into());
        }
        if let Some((ip, prefix)) = s.split_once('/') {
            let ip: IpAddr = ip
                .parse()
                .map_err(|_| format!("--allow-callback-host {s}: not an IP network"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix
                .parse()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("--allow-callback-host {s}: bad prefix length"))?;
            return Ok(AllowedHost::Net(canonical(ip), prefix));
        }
        if let Ok(ip) = s.trim_start_matches('[').trim_end_matches(']').parse() {
            return Ok(AllowedHost::Ip(canonical(ip)));
        }
        Ok(AllowedHost::Name(s.to_ascii_lowercase()))
    }

    fn allows(&self, name: &str, ip: IpAddr) -> bool {
        match self {
            AllowedHost::Ip(a) => *a == ip,
            AllowedHost::Net(net, prefix) => in_net(ip, *net, *prefix),
            AllowedHost::Name(n) => n.eq_ignore_ascii_case(name.trim_end_matches('.')),
        }
    }
}

/// The callback rules of one host.
#[derive(Debug, Clone)]
pub struct CallbackRules {
    /// The host's listen address.
    pub listen: SocketAddr,
    /// `--allow-callback-host` entries.
    pub allowed: Vec<AllowedHost>,
}

/// A callback URL's target, as read from the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `scheme://host:port`, lower case: deliveries to one receiver go in order.
    pub receiver: String,
    /// The host as written (no brackets for IPv6).
    pub host: String,
    /// The port (the scheme's default when absent).
    pub port: u16,
    /// The host when it is an IP literal.
    pub ip: Option<IpAddr>,
}

/// Reads the target of an http(s) URL.
pub fn target(url: &str) -> Result<Target, Invalid> {
    let bad = || Invalid("callback_url must be an http or https URL".into());
    let u = url::Url::parse(url).map_err(|_| bad())?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(bad());
    }
    let port = u.port_or_known_default().ok_or_else(bad)?;
    let (host, ip) = match u.host().ok_or_else(bad)? {
        url::Host::Domain(d) => (d.to_ascii_lowercase(), None),
        url::Host::Ipv4(a) => (a.to_string(), Some(IpAddr::V4(a))),
        url::Host::Ipv6(a) => (a.to_string(), Some(canonical(IpAddr::V6(a)))),
    };
    Ok(Target {
        receiver: format!("{}://{}:{}", u.scheme(), host, port),
        host,
        port,
        ip,
    })
}

/// An IPv6 address that carries an IPv4 address as that IPv4 address, so every rule sees
/// the address a packet would really reach: IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible
/// (`::a.b.c.d`, not `::` or `::1`), NAT64 (`64:ff9b::/96` and the local-use
/// `64:ff9b:1::/48`, the IPv4 address in the last 32 bits) and 6to4 (`2002:AABB:CCDD::/48`,
/// the IPv4 address in bits 16–47). Any other address is itself.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The IPv4 address an IPv6 address carries (see [`canonical`]).
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(v6);
    let last = Ipv4Addr::from((bits & 0xFFFF_FFFF) as u32);
    let seg = v6.segments();
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    // IPv4-compatible: ::/96, except the unspecified and loopback addresses.
    if bits >> 32 == 0 && bits > 1 {
        return Some(last);
    }
    // NAT64 well-known prefix 64:ff9b::/96.
    if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return Some(last);
    }
    // Local-use NAT64 64:ff9b:1::/48.
    if seg[0] == 0x0064 && seg[1] == 0xff9b && seg[2] == 0x0001 {
        return Some(last);
    }
    // 6to4: 2002:AABB:CCDD::/48.
    if seg[0] == 0x2002 {
        return Some(Ipv4Addr::from(((bits >> 80) & 0xFFFF_FFFF) as u32));
    }
    None
}

fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (canonical(ip), net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Host names of cloud metadata services (they resolve to link-local addresses; refused as
/// written, before any lookup).
pub const METADATA_NAMES: &[&str] = &[
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.azure.internal",
];

/// Why an address may not be an SD.Next backend: link-local and metadata addresses in every
/// form (an IPv6 form carrying an IPv4 address is that address). Loopback and private
/// networks are allowed: that is where SD.Next lives.
pub fn backend_address_refused(ip: IpAddr) -> Option<String> {
    let ip = canonical(ip);
    link_local_or_metadata(ip)
        .then(|| format!("a backend must not be a link-local or metadata address ({ip})"))
}

/// Why a backend URL's host (as written: an IP literal or a name) may not be a backend:
/// [`backend_address_refused`] for an IP, or a metadata service's name.
pub fn backend_host_refused(host: &str) -> Option<String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return backend_address_refused(ip);
    }
    let name = bare.trim_end_matches('.').to_ascii_lowercase();
    METADATA_NAMES
        .contains(&name.as_str())
        .then(|| format!("a backend must not be a cloud metadata service ({name})"))
}

fn link_local_or_metadata(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => {
            in_net(ip, IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)), 10)
                // The cloud metadata service's IPv6 address.
                || a == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)
        }
    }
}

fn private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_private() || in_net(ip, IpAddr::V4(Ipv4Addr::new(100, 64, 0, 0)), 10),
        // Unique local fc00::/7, and the deprecated site-local fec0::/10.
        IpAddr::V6(_) => {
            in_net(
                ip,
                IpAddr::V6(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0)),
                7,
            ) || in_net(
                ip,
                IpAddr::V6(Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0)),
                10,
            )
        }
    }
}

impl CallbackRules {
    /// Whether the host listens beyond loopback.
    pub fn beyond_loopback(&self) -> bool {
        !self.listen.ip().is_loopback()
    }

    /// Checks one address a callback would connect to (`name`: the URL's host). `is_local`
    /// tells whether an IP belongs to one of this machine's interfaces.
    pub fn check(
        &self,
        name: &str,
        addr: SocketAddr,
        is_local: &dyn Fn(IpAddr) -> bool,
    ) -> Result<(), String> {
        let ip = canonical(addr.ip());
        if link_local_or_metadata(ip) {
            return Err(format!(
                "callback_url must not target a link-local or metadata address ({ip})"
            ));
        }
        let this_machine = ip.is_unspecified() || ip.is_loopback() || is_local(ip);
        if this_machine && addr.port() == self.listen.port() {
            return Err(format!(
                "callback_url must not target the agent-scheduler host itself ({ip}:{})",
                addr.port()
            ));
        }
        if ip.is_unspecified() {
            return Err(format!(
                "callback_url must not target an unspecified address ({ip})"
            ));
        }
        if self.beyond_loopback()
            && (this_machine || private(ip))
            && !self.allowed.iter().any(|a| a.allows(name, ip))
        {
            return Err(format!(
                "callback_url targets a loopback or private address ({ip}) while the host \
                 listens beyond loopback; allow it with --allow-callback-host"
            ));
        }
        Ok(())
    }

    /// Checks what can be checked without resolving names: IP literals and `localhost`.
    pub fn check_literal(
        &self,
        t: &Target,
        is_local: &dyn Fn(IpAddr) -> bool,
    ) -> Result<(), String> {
        let ips: Vec<IpAddr> = match t.ip {
            Some(ip) => vec![ip],
            None if t.host == "localhost" || t.host.ends_with(".localhost") => vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
            None => Vec::new(),
        };
        for ip in ips {
            self.check(&t.host, SocketAddr::new(ip, t.port), is_local)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(listen: &str, allowed: &[&str]) -> CallbackRules {
        CallbackRules {
            listen: listen.parse().unwrap(),
            allowed: allowed
                .iter()
                .map(|a| AllowedHost::parse(a).unwrap())
                .collect(),
        }
    }

    fn check(r: &CallbackRules, url: &str) -> Result<(), String> {
        let t = target(url).map_err(|e| e.0)?;
        let local = |ip: IpAddr| ip == "192.168.1.5".parse::<IpAddr>().unwrap();
        match t.ip {
            Some(ip) => r.check(&t.host, SocketAddr::new(ip, t.port), &local),
            None => r.check_literal(&t, &local),
        }
    }

    #[test]
    fn loopback_listener_refuses_itself_and_link_local_only() {
        let r = rules("127.0.0.1:7861", &[]);
        assert!(check(&r, "http://127.0.0.1:7861/agent-scheduler/v1/history/clear").is_err());
        assert!(
            check(&r, "http://127.0.0.2:7861/x").is_err(),
            "all of 127/8"
        );
        assert!(check(&r, "http://localhost:7861/x").is_err());
        assert!(check(&r, "http://[::1]:7861/x").is_err());
        assert!(check(&r, "http://[::ffff:127.0.0.1]:7861/x").is_err());
        assert!(check(&r, "http://0.0.0.0:7861/x").is_err());
        assert!(
            check(&r, "http://192.168.1.5:7861/x").is_err(),
            "a local interface"
        );
        assert!(check(&r, "http://169.254.169.254/latest/meta-data").is_err());
        assert!(check(&r, "http://[fe80::1]/x").is_err());
        assert!(check(&r, "http://[fd00:ec2::254]/x").is_err());
        assert_eq!(check(&r, "http://127.0.0.1:9000/hook"), Ok(()));
        assert_eq!(check(&r, "http://localhost:9000/hook"), Ok(()));
        assert_eq!(check(&r, "http://10.0.0.7/hook"), Ok(()));
        assert_eq!(check(&r, "https://example.com/hook"), Ok(()));
        assert!(check(&r, "ftp://example.com/").is_err());
    }

    #[test]
    fn beyond_loopback_refuses_loopback_and_private_unless_allowed() {
        let r = rules("0.0.0.0:7861", &[]);
        for url in [
            "http://127.0.0.1:9000/hook",
            "http://localhost:9000/hook",
            "http://10.0.0.7/hook",
            "http://172.16.3.4/hook",
            "http://192.168.9.9/hook",
            "http://[fd12::1]/hook",
            "http://100.64.0.1/hook",
        ] {
            assert!(check(&r, url).is_err(), "{url}");
        }
        assert_eq!(check(&r, "http://8.8.8.8/hook"), Ok(()));
        let allowed = rules(
            "0.0.0.0:7861",
            &["127.0.0.1", "10.0.0.0/8", "hooks.lan", "fd12::/16"],
        );
        assert_eq!(check(&allowed, "http://127.0.0.1:9000/hook"), Ok(()));
        assert_eq!(check(&allowed, "http://10.1.2.3/hook"), Ok(()));
        assert_eq!(check(&allowed, "http://[fd12::1]/hook"), Ok(()));
        assert!(check(&allowed, "http://192.168.9.9/hook").is_err());
        let t = target("http://HOOKS.lan:8080/x").unwrap();
        assert_eq!(t.receiver, "http://hooks.lan:8080");
        let lan: SocketAddr = "192.168.9.9:8080".parse().unwrap();
        assert_eq!(allowed.check(&t.host, lan, &|_| false), Ok(()));
        // Never the host itself, allowed or not; never link-local.
        assert!(check(&allowed, "http://127.0.0.1:7861/x").is_err());
        let all = rules("0.0.0.0:7861", &["169.254.0.0/16"]);
        assert!(check(&all, "http://169.254.169.254/").is_err());
    }

    #[test]
    fn every_embedded_ipv4_is_checked_as_that_ipv4() {
        let v4 = |s: &str| IpAddr::V4(s.parse().unwrap());
        let v6 = |s: &str| canonical(IpAddr::V6(s.parse().unwrap()));
        assert_eq!(
            v6("::ffff:169.254.169.254"),
            v4("169.254.169.254"),
            "mapped"
        );
        assert_eq!(v6("::169.254.169.254"), v4("169.254.169.254"), "compatible");
        assert_eq!(v6("::a9fe:a9fe"), v4("169.254.169.254"), "compatible, hex");
        assert_eq!(
            v6("64:ff9b::169.254.169.254"),
            v4("169.254.169.254"),
            "NAT64"
        );
        assert_eq!(
            v6("64:ff9b:1::a9fe:a9fe"),
            v4("169.254.169.254"),
            "local NAT64"
        );
        assert_eq!(v6("2002:a9fe:a9fe::1"), v4("169.254.169.254"), "6to4");
        assert_eq!(v6("2002:7f00:1::"), v4("127.0.0.1"), "6to4 loopback");
        assert_eq!(v6("64:ff9b::7f00:1"), v4("127.0.0.1"));
        // Not embedding anything.
        assert_eq!(v6("::1"), IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(v6("::"), IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert_eq!(v6("2001:db8::1"), "2001:db8::1".parse::<IpAddr>().unwrap());

        let r = rules("127.0.0.1:7861", &[]);
        for url in [
            "http://[::ffff:169.254.169.254]/x",
            "http://[::169.254.169.254]/x",
            "http://[64:ff9b::169.254.169.254]/x",
            "http://[64:ff9b:1::a9fe:a9fe]/x",
            "http://[2002:a9fe:a9fe::]/x",
        ] {
            let e = check(&r, url).unwrap_err();
            assert!(
                e.contains("link-local or metadata address (169.254.169.254)"),
                "{url}: {e}"
            );
        }
        // The host itself behind a NAT64 or 6to4 form.
        assert!(check(&r, "http://[64:ff9b::7f00:1]:7861/x").is_err());
        assert!(check(&r, "http://[2002:7f00:1::]:7861/x").is_err());
        // Beyond loopback, private networks in any form, site-local included.
        let wide = rules("0.0.0.0:7861", &[]);
        for url in [
            "http://[64:ff9b::10.0.0.7]/x",
            "http://[::10.0.0.7]/x",
            "http://[2002:c0a8:909::]/x",
            "http://[fec0::1]/x",
        ] {
            assert!(check(&wide, url).is_err(), "{url}");
        }
        assert_eq!(check(&wide, "http://[64:ff9b::8.8.8.8]/x"), Ok(()));
    }

    #[test]
    fn backends_follow_the_link_local_and_metadata_rules() {
        for host in [
            "169.254.169.254",
            "169.254.1.1",
            "[fe80::1]",
            "[::ffff:169.254.169.254]",
            "[64:ff9b::a9fe:a9fe]",
            "[fd00:ec2::254]",
            "metadata.google.internal",
            "Metadata.Google.Internal.",
        ] {
            assert!(backend_host_refused(host).is_some(), "{host}");
        }
        for host in [
            "127.0.0.1",
            "[::1]",
            "10.0.0.5",
            "192.168.1.20",
            "localhost",
            "sdnext.lan",
        ] {
            assert_eq!(backend_host_refused(host), None, "{host}");
        }
    }

    #[test]
    fn allowed_hosts_parse() {
        assert_eq!(
            AllowedHost::parse("10.0.0.0/8"),
            Ok(AllowedHost::Net("10.0.0.0".parse().unwrap(), 8))
        );
        assert_eq!(
            AllowedHost::parse("[::1]"),
            Ok(AllowedHost::Ip("::1".parse().unwrap()))
        );
        assert_eq!(
            AllowedHost::parse("Hooks.LAN"),
            Ok(AllowedHost::Name("hooks.lan".into()))
        );
        assert!(AllowedHost::parse("10.0.0.0/33").is_err());
        assert!(AllowedHost::parse("").is_err());
    }
}
