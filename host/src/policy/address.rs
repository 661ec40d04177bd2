//! Classification of resolved addresses.
//!
//! After DNS resolution, and for IP literals, the address a connection would
//! go to is classified here. IPv6 forms that carry an IPv4 address (mapped,
//! compatible, NAT64, 6to4) are classified by the address they carry, so a
//! private or metadata address cannot be reached through a translation.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::DenyReason;

/// What kind of network an address belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrClass {
    /// Globally routable.
    Public,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 ranges and deprecated IPv6 site-local `fec0::/10`.
    Private,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// Carrier-grade NAT, `100.64.0.0/10`.
    Cgnat,
    /// IPv6 unique local, `fc00::/7`.
    UniqueLocal,
    /// A cloud instance metadata or host agent endpoint.
    Metadata,
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// Documentation ranges (`192.0.2.0/24`, `2001:db8::/32`, ...).
    Documentation,
    /// Anything else that is not globally routable unicast.
    Reserved,
}

impl fmt::Display for AddrClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddrClass::Public => "public",
            AddrClass::Loopback => "loopback",
            AddrClass::Private => "private",
            AddrClass::LinkLocal => "link-local",
            AddrClass::Cgnat => "carrier-grade nat",
            AddrClass::UniqueLocal => "unique-local",
            AddrClass::Metadata => "cloud metadata",
            AddrClass::Unspecified => "unspecified",
            AddrClass::Multicast => "multicast",
            AddrClass::Broadcast => "broadcast",
            AddrClass::Documentation => "documentation",
            AddrClass::Reserved => "reserved",
        })
    }
}

/// Metadata endpoints: AWS/GCP/Azure/OCI, AWS ECS task agent, Alibaba,
/// Azure wire server.
const METADATA_V4: [Ipv4Addr; 4] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(168, 63, 129, 16),
];

/// AWS instance metadata over IPv6.
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);

/// Classifies an address, looking through IPv6 forms that embed IPv4.
pub fn classify(ip: IpAddr) -> AddrClass {
    match ip {
        IpAddr::V4(ip) => classify_v4(ip),
        IpAddr::V6(ip) => classify_v6(ip),
    }
}

/// Whether a connection to `ip` may be made: public addresses always;
/// loopback, private, link-local, CGNAT and unique-local only with
/// `allow_private`; metadata, unspecified, multicast, broadcast,
/// documentation and reserved addresses never.
pub fn check_address(ip: IpAddr, allow_private: bool) -> Result<(), DenyReason> {
    match classify(ip) {
        AddrClass::Public => Ok(()),
        AddrClass::Metadata => Err(DenyReason::MetadataAddress),
        class @ (AddrClass::Loopback
        | AddrClass::Private
        | AddrClass::LinkLocal
        | AddrClass::Cgnat
        | AddrClass::UniqueLocal) => {
            if allow_private {
                Ok(())
            } else {
                Err(DenyReason::PrivateAddress(class))
            }
        }
        class @ (AddrClass::Unspecified
        | AddrClass::Multicast
        | AddrClass::Broadcast
        | AddrClass::Documentation
        | AddrClass::Reserved) => Err(DenyReason::UnroutableAddress(class)),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddrClass {
    if METADATA_V4.contains(&ip) {
        return AddrClass::Metadata;
    }
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, _, _) => AddrClass::Unspecified,
        (127, _, _) => AddrClass::Loopback,
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => AddrClass::Private,
        (169, 254, _) => AddrClass::LinkLocal,
        (100, 64..=127, _) => AddrClass::Cgnat,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => AddrClass::Documentation,
        // IETF protocol assignments, benchmarking, deprecated 6to4 relays.
        (192, 0, 0) | (198, 18..=19, _) | (192, 88, 99) => AddrClass::Reserved,
        (224..=239, _, _) => AddrClass::Multicast,
        (255, 255, 255) if ip == Ipv4Addr::BROADCAST => AddrClass::Broadcast,
        (240..=255, _, _) => AddrClass::Reserved,
        _ => AddrClass::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddrClass {
    if ip == METADATA_V6 {
        return AddrClass::Metadata;
    }
    if ip.is_unspecified() {
        return AddrClass::Unspecified;
    }
    if ip.is_loopback() {
        return AddrClass::Loopback;
    }

    let s = ip.segments();
    let o = ip.octets();
    let last_v4 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match s {
        // IPv4-mapped ::ffff:0:0/96 and IPv4-compatible ::/96.
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _] => classify_v4(last_v4),
        // NAT64 well-known prefix 64:ff9b::/96.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => classify_v4(last_v4),
        // Local-use NAT64 64:ff9b:1::/48 (RFC 8215): the translator picks
        // the prefix length, so check both the /96 and the /48 embedding.
        [0x64, 0xff9b, 1, ..] => {
            let v4_48 = Ipv4Addr::new(o[6], o[7], o[9], o[10]);
            local_nat64([classify_v4(last_v4), classify_v4(v4_48)])
        }
        // 6to4 2002::/16 carries the IPv4 address in bits 16..48.
        [0x2002, ..] => classify_v4(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        // IETF protocol assignments 2001::/23: Teredo (whose embedded
        // address cannot be trusted), benchmarking, ORCHID and others.
        [0x2001, 0..=0x01ff, ..] => AddrClass::Reserved,
        [0x2001, 0x0db8, ..] | [0x3fff, 0..=0x0fff, ..] => AddrClass::Documentation,
        [first, ..] if first & 0xfe00 == 0xfc00 => AddrClass::UniqueLocal,
        [first, ..] if first & 0xffc0 == 0xfe80 => AddrClass::LinkLocal,
        [first, ..] if first & 0xffc0 == 0xfec0 => AddrClass::Private,
        [first, ..] if first & 0xff00 == 0xff00 => AddrClass::Multicast,
        // Only 2000::/3 is global unicast; the rest (100::/64 discard,
        // 5f00::/16 segment routing, unassigned space) is not.
        [first, ..] if first & 0xe000 == 0x2000 => AddrClass::Public,
        _ => AddrClass::Reserved,
    }
}

/// The class of a local-use NAT64 address from its two possible
/// embeddings: an all-zero embedding is the unused one; otherwise metadata
/// wins, then any non-public class, so the stricter reading decides.
fn local_nat64(candidates: [AddrClass; 2]) -> AddrClass {
    let used = candidates
        .into_iter()
        .filter(|c| *c != AddrClass::Unspecified);
    let mut result = AddrClass::Unspecified;
    for class in used {
        result = match (result, class) {
            (AddrClass::Metadata, _) | (_, AddrClass::Metadata) => AddrClass::Metadata,
            (AddrClass::Unspecified | AddrClass::Public, class) => class,
            (earlier, _) => earlier,
        };
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (address, class, result without allow_private, result with it).
    const TABLE: &[(&str, AddrClass, Option<&str>, Option<&str>)] = {
        use AddrClass::*;
        const PRIVATE: Option<&str> = Some("private_address");
        const META: Option<&str> = Some("metadata_address");
        const NEVER: Option<&str> = Some("unroutable_address");
        &[
            ("93.184.215.14", Public, None, None),
            ("8.8.8.8", Public, None, None),
            ("172.32.0.1", Public, None, None),
            ("100.128.0.1", Public, None, None),
            ("2606:4700::1111", Public, None, None),
            ("127.0.0.1", Loopback, PRIVATE, None),
            ("127.255.255.254", Loopback, PRIVATE, None),
            ("::1", Loopback, PRIVATE, None),
            ("10.0.0.1", Private, PRIVATE, None),
            ("172.16.0.1", Private, PRIVATE, None),
            ("172.31.255.255", Private, PRIVATE, None),
            ("192.168.1.1", Private, PRIVATE, None),
            ("169.254.1.1", LinkLocal, PRIVATE, None),
            ("fe80::1", LinkLocal, PRIVATE, None),
            ("100.64.0.1", Cgnat, PRIVATE, None),
            ("100.127.255.255", Cgnat, PRIVATE, None),
            ("fc00::1", UniqueLocal, PRIVATE, None),
            ("fd12:3456::1", UniqueLocal, PRIVATE, None),
            ("fec0::1", Private, PRIVATE, None),
            ("169.254.169.254", Metadata, META, META),
            ("169.254.170.2", Metadata, META, META),
            ("100.100.100.200", Metadata, META, META),
            ("168.63.129.16", Metadata, META, META),
            ("fd00:ec2::254", Metadata, META, META),
            ("0.0.0.0", Unspecified, NEVER, NEVER),
            ("0.1.2.3", Unspecified, NEVER, NEVER),
            ("::", Unspecified, NEVER, NEVER),
            ("224.0.0.1", Multicast, NEVER, NEVER),
            ("ff02::1", Multicast, NEVER, NEVER),
            ("255.255.255.255", Broadcast, NEVER, NEVER),
            ("192.0.2.1", Documentation, NEVER, NEVER),
            ("2001:db8::1", Documentation, NEVER, NEVER),
            ("240.0.0.1", Reserved, NEVER, NEVER),
            ("198.18.0.1", Reserved, NEVER, NEVER),
            ("2001::1", Reserved, NEVER, NEVER),
            ("100::1", Reserved, NEVER, NEVER),
            // IPv4-mapped, IPv4-compatible, NAT64 and 6to4 forms.
            ("::ffff:127.0.0.1", Loopback, PRIVATE, None),
            ("::ffff:10.1.2.3", Private, PRIVATE, None),
            ("::ffff:169.254.169.254", Metadata, META, META),
            ("::ffff:8.8.8.8", Public, None, None),
            ("::127.0.0.1", Loopback, PRIVATE, None),
            ("::a9fe:a9fe", Metadata, META, META),
            ("64:ff9b::127.0.0.1", Loopback, PRIVATE, None),
            ("64:ff9b::10.0.0.1", Private, PRIVATE, None),
            ("64:ff9b::169.254.169.254", Metadata, META, META),
            ("64:ff9b::8.8.8.8", Public, None, None),
            ("64:ff9b:1::192.168.0.1", Private, PRIVATE, None),
            ("64:ff9b:1:c0a8:1:100::", Private, PRIVATE, None),
            ("64:ff9b:1::8.8.8.8", Public, None, None),
            ("64:ff9b:1:a9fe:a9:fe00::", Metadata, META, META),
            ("64:ff9b:1::", Unspecified, NEVER, NEVER),
            ("2002:7f00:1::1", Loopback, PRIVATE, None),
            ("2002:a9fe:a9fe::", Metadata, META, META),
            ("2002:0808:0808::1", Public, None, None),
        ]
    };

    #[test]
    fn address_table() {
        for (text, class, denied, denied_with_private) in TABLE {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(classify(ip), *class, "{text}");
            let code = |allow| check_address(ip, allow).err().map(|r| r.code());
            assert_eq!(code(false), *denied, "{text} without allow_private");
            assert_eq!(
                code(true),
                *denied_with_private,
                "{text} with allow_private"
            );
        }
    }
}
