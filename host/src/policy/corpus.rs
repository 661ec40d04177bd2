//! The bypass corpus: request spellings an attacker might try, each with the
//! decision the policy must reach against one fixed set of grants.
//!
//! A request to a DNS name is then "resolved" through a table the test
//! controls (never the machine's DNS) and every address is checked with the
//! allowing grant's `allow_private`, as the egress gate does before it
//! connects. Redirects are not followed by Airlock; a `Location` the guest
//! chooses to follow is a new request, so the redirect rows below are plain
//! requests to the places a hostile upstream would redirect to.

use std::net::IpAddr;

use super::tests::grant;
use super::*;

/// What the policy must decide for one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Expect {
    /// Allowed by the grant with this index.
    A(usize),
    /// Denied with this reason code.
    D(&'static str),
}
use Expect::{A, D};

fn grants() -> Vec<Grant> {
    let private = |mut g: Grant| {
        g.allow_private = true;
        g
    };
    vec![
        grant(
            "GET, POST",
            "https://api.github.com/repos/*/*/issues",
            Some("github"),
        ), // 0
        grant("GET", "https://api.github.com/user", Some("github")), // 1
        grant("*", "https://*.googleapis.com/**", Some("google")),   // 2
        private(grant("GET", "http://127.0.0.1:8080/**", None)),     // 3
        grant("GET", "https://example.com/", None),                  // 4
        private(grant("GET, PUT", "https://[::1]:8443/x/**", None)), // 5
        grant("GET", "https://api.example.com/v1/**", Some("example")), // 6
        grant("GET", "https://bücher.example/**", None),             // 7
        grant("GET", "https://straße.example/**", None),             // 8
        grant("GET", "https://1.1.1.1/dns-query", None),             // 9
        grant("GET", "https://10.0.0.5/**", None),                   // 10
        private(grant("GET", "https://169.254.169.254/**", None)),   // 11
        private(grant("GET", "https://internal.corp.test/**", None)), // 12
        grant("GET", "https://files.example.org/**", None),          // 13
        grant("GET", "https://[::ffff:192.168.1.1]/**", None),       // 14
        private(grant("GET", "https://[64:ff9b::a9fe:a9fe]/**", None)), // 15
    ]
}

/// The test's resolver. Unlisted names resolve to one public address.
fn resolve(name: &str) -> Vec<IpAddr> {
    let ips: &[&str] = match name {
        "internal.corp.test" => &["10.1.2.3"],
        "lan.googleapis.com" => &["192.168.0.10"],
        "loop.googleapis.com" => &["127.0.0.1"],
        "loop6.googleapis.com" => &["::1"],
        "meta.googleapis.com" => &["169.254.169.254"],
        "ecs.googleapis.com" => &["169.254.170.2"],
        "azure.googleapis.com" => &["168.63.129.16"],
        "alibaba.googleapis.com" => &["100.100.100.200"],
        "ec2v6.googleapis.com" => &["fd00:ec2::254"],
        "nat64.googleapis.com" => &["64:ff9b::7f00:1"],
        "nat64meta.googleapis.com" => &["64:ff9b::a9fe:a9fe"],
        "mapped.googleapis.com" => &["::ffff:10.0.0.1"],
        "sixtofour.googleapis.com" => &["2002:c0a8:1::1"],
        "ula.googleapis.com" => &["fd12:3456::1"],
        "linklocal.googleapis.com" => &["fe80::1"],
        "cgnat.googleapis.com" => &["100.64.1.1"],
        "zero.googleapis.com" => &["0.0.0.0"],
        "mcast.googleapis.com" => &["224.0.0.251"],
        "mixed.googleapis.com" => &["93.184.215.14", "127.0.0.1"],
        "files.example.org" => &["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
        _ => &["93.184.215.14"],
    };
    ips.iter().map(|ip| ip.parse().unwrap()).collect()
}

/// Runs one request the way the egress gate does: parse, decide, and for a
/// name check every resolved address.
fn run(policy: &Policy, method: &str, scheme: &str, authority: &str, path: &str) -> Expect {
    let (index, target) = match policy.check(method, scheme, authority, path) {
        Ok(found) => found,
        Err(denial) => return D(denial.reason.code()),
    };
    if let HostName::Domain(name) = &target.host {
        let allow_private = policy.grants()[index].allow_private;
        for ip in resolve(name) {
            if let Err(reason) = check_address(ip, allow_private) {
                return D(reason.code());
            }
        }
    }
    A(index)
}

/// (method, scheme, authority, path and query, expected decision)
type Row = (&'static str, &'static str, String, String, Expect);

/// Builds rows from `method, scheme, authority, path => expected;` lines.
/// A brace-delimited macro keeps rustfmt from splitting each row.
macro_rules! table {
    ($($m:expr, $s:expr, $a:expr, $p:expr => $e:expr;)*) => {
        vec![$(($m, $s, String::from($a), String::from($p), $e)),*]
    };
}

fn rows() -> Vec<Row> {
    let gh = "api.github.com";
    let issues = "/repos/a/b/issues";
    let ex = "api.example.com";
    let long_label = format!("{}.googleapis.com", "a".repeat(64));
    let label_63 = format!("{}.googleapis.com", "a".repeat(63));
    // 3 * 61 + 56 + 1 + 14 ("googleapis.com") = 254 bytes; one less fits.
    let name_254 = format!(
        "{0}.{0}.{0}.{1}.googleapis.com",
        "a".repeat(60),
        "a".repeat(56)
    );
    let name_253 = format!(
        "{0}.{0}.{0}.{1}.googleapis.com",
        "a".repeat(60),
        "a".repeat(55)
    );
    let name_253_dot = format!("{name_253}.");
    let huge = "a.".repeat(1200);

    let mut rows = table! {
        // Baseline: what the grants allow.
        "GET", "https", gh, issues => A(0);
        "POST", "https", gh, issues => A(0);
        "get", "https", gh, issues => A(0);
        "GET", "https", gh, "/repos/a/b/issues?state=open&per_page=100" => A(0);
        "GET", "https", gh, "/user" => A(1);
        "GET", "https", gh, "/user?x=1" => A(1);
        "DELETE", "https", gh, issues => D("method_not_granted");
        "POST", "https", gh, "/user" => D("method_not_granted");
        "GET", "https", gh, "/repos/a/b/issues/1" => D("no_matching_grant");
        "GET", "https", gh, "/repos/a/issues" => D("no_matching_grant");
        "GET", "https", gh, "/repos//b/issues" => D("no_matching_grant");
        "GET", "https", gh, "/repos/a/b/issues/" => D("no_matching_grant");
        "GET", "https", gh, "/users" => D("no_matching_grant");
        "GET", "https", "example.com", "/" => A(4);
        "GET", "https", "example.com", "/?q=1" => A(4);
        "GET", "https", "example.com", "/index.html" => D("no_matching_grant");
        "GET", "https", "example.com", "" => D("invalid_url");
        "GET", "https", "example.com", "?q=1" => D("invalid_url");
        "GET", "https", "example.com", "*" => D("invalid_url");
        // Methods.
        "TRACE", "https", "example.com", "/" => D("forbidden_method");
        "trace", "https", "example.com", "/" => D("forbidden_method");
        "TrAcK", "https", "www.googleapis.com", "/" => D("forbidden_method");
        "CONNECT", "https", "www.googleapis.com", "/" => D("forbidden_method");
        "GET ", "https", gh, issues => D("invalid_method");
        "GET\r\n", "https", gh, issues => D("invalid_method");
        "", "https", gh, issues => D("invalid_method");
        "G@T", "https", gh, issues => D("invalid_method");
        "*", "https", "www.googleapis.com", "/x" => D("invalid_method");
        "PUT", "https", "www.googleapis.com", "/x" => A(2);
        "PROPFIND", "https", "www.googleapis.com", "/x" => A(2);
        // Userinfo, "@" and "#" tricks.
        "GET", "https", "user@api.github.com", issues => D("userinfo");
        "GET", "https", "user:pass@api.github.com", issues => D("userinfo");
        "GET", "https", "api.github.com@evil.test", issues => D("userinfo");
        "GET", "https", "@api.github.com", issues => D("userinfo");
        "GET", "https", "api.github.com:443@evil.test", issues => D("userinfo");
        "GET", "https", "evil.test#@api.github.com", issues => D("userinfo");
        "GET", "https", "api.github.com#", issues => D("fragment");
        "GET", "https", "api.github.com#.evil.test", issues => D("fragment");
        "GET", "https", gh, "/repos/a/b/issues#frag" => D("fragment");
        "GET", "https", gh, "/repos/a/b/issues?x=1#@evil.test" => D("fragment");
        "GET", "https", "api.github.com%40evil.test", issues => D("invalid_host");
        "GET", "https", gh, "/repos/a/b/issues?next=https://x@evil.test" => A(0);
        "GET", "https", gh, "/repos/a@evil.test/b/issues" => A(0);
        "GET", "https", gh, "//evil.test/repos/a/b/issues" => D("no_matching_grant");
        // Backslashes.
        "GET", "https", "api.github.com\\evil.test", issues => D("forbidden_character");
        "GET", "https", "evil.test\\@api.github.com", issues => D("forbidden_character");
        "GET", "https", gh, "/repos/a/b\\..\\..\\user" => D("forbidden_character");
        "GET", "https", gh, "/repos/a/b/issues?x=\\" => D("forbidden_character");
        "GET", "https", gh, "/repos/a%5Cb/c/issues" => A(0);
        "GET", "https", gh, "/repos/a%5c..%5cx/c/issues" => D("ambiguous_path");
        // Whitespace and control characters.
        "GET", "https", " api.github.com", issues => D("forbidden_character");
        "GET", "https", "api.github.com ", issues => D("forbidden_character");
        "GET", "https", "api.git hub.com", issues => D("forbidden_character");
        "GET", "https", "api.github.com\t", issues => D("forbidden_character");
        "GET", "https", "api.github.com\u{3000}", issues => D("forbidden_character");
        "GET", "https", "api.github.com\u{a0}", issues => D("forbidden_character");
        "GET", "https", "api.github.com\u{7f}", issues => D("forbidden_character");
        "GET", "https", "api.github.com\u{85}", issues => D("forbidden_character");
        "GET", "https", gh, "/repos/a b/c/issues" => D("forbidden_character");
        "GET", "https", gh, "/repos/a/b/issues?q=a b" => D("forbidden_character");
        "GET", "https", gh, "/repos/a/b/issues\u{b}" => D("forbidden_character");
        "GET", "https", gh, "/repos/a%20b/c/issues" => A(0);
        "GET", "https", gh, "/repos/a\u{200b}b/c/issues" => A(0);
        // CR, LF and NUL.
        "GET", "https", "api.github.com\r\nX-Injected: 1", issues => D("forbidden_character");
        "GET", "https", "api.github.com\n", issues => D("forbidden_character");
        "GET", "https", gh, "/repos/a/b/issues\r\nHost: evil.test" => D("forbidden_character");
        "GET", "https", gh, "/repos/a/b/issues?q=\n" => D("forbidden_character");
        "GET", "https", "api.github.com\0.evil.test", issues => D("forbidden_character");
        "GET", "https", gh, "/repos/a\0/b/issues" => D("forbidden_character");
        "GET", "https", gh, "/repos/a%00/b/issues" => D("invalid_url");
        "GET", "https", gh, "/repos/a/b/issues?q=%0D%0A" => A(0);
        // Full-width and ideographic dots, case, trailing dots.
        "GET", "https", "api\u{ff0e}github\u{ff0e}com", issues => A(0);
        "GET", "https", "api\u{3002}github\u{3002}com", issues => A(0);
        "GET", "https", "api.github.com\u{ff0e}", issues => A(0);
        "GET", "https", "API.GitHub.COM", issues => A(0);
        "GET", "https", "api.github.com.", issues => A(0);
        "GET", "https", "api.github.com..", issues => D("invalid_host");
        "GET", "https", ".api.github.com", issues => D("invalid_host");
        "GET", "https", "api..github.com", issues => D("invalid_host");
        "GET", "https", "\u{ff41}\u{ff50}\u{ff49}.github.com", issues => A(0);
        "GET", "https", "\u{ff21}\u{ff30}\u{ff29}.github.com", issues => A(0);
        "GET", "https", ".", issues => D("invalid_host");
        "GET", "https", "", issues => D("invalid_host");
        "GET", "https", "EXAMPLE.COM", "/" => A(4);
        // IDNA mappings: ß stays ß (non-transitional), so it is not "ss".
        "GET", "https", "bücher.example", "/x" => A(7);
        "GET", "https", "BÜCHER.example", "/x" => A(7);
        "GET", "https", "xn--bcher-kva.example", "/x" => A(7);
        "GET", "https", "XN--BCHER-KVA.EXAMPLE", "/x" => A(7);
        "GET", "https", "bucher.example", "/x" => D("no_matching_grant");
        "GET", "https", "straße.example", "/x" => A(8);
        "GET", "https", "STRAẞE.example", "/x" => A(8);
        "GET", "https", "xn--strae-oqa.example", "/x" => A(8);
        "GET", "https", "strasse.example", "/x" => D("no_matching_grant");
        "GET", "https", "STRASSE.EXAMPLE", "/x" => D("no_matching_grant");
        "GET", "https", "\u{ff45}\u{ff58}\u{ff41}\u{ff4d}\u{ff50}\u{ff4c}\u{ff45}.com", "/" => A(4);
        "GET", "https", "exam\u{ad}ple.com", "/" => A(4);
        "GET", "https", "api.github\u{200b}.com", issues => A(0);
        "GET", "https", "\u{24d0}\u{24df}\u{24d8}.github.com", issues => A(0);
        "GET", "https", "api\u{2024}github.com", issues => D("invalid_host");
        "GET", "https", "ex\u{430}mple.com", "/" => D("no_matching_grant");
        "GET", "https", "xn--a.example", "/" => D("invalid_host");
        "GET", "https", "api.github.com/", issues => D("invalid_host");
        "GET", "https", "api.github.com?", issues => D("invalid_host");
        "GET", "https", "api.github.com*", issues => D("invalid_host");
        "GET", "https", "api_x.googleapis.com", "/" => A(2);
        // Over-long names and labels.
        "GET", "https", long_label, "/" => D("invalid_host");
        "GET", "https", label_63, "/" => A(2);
        "GET", "https", name_254, "/" => D("invalid_host");
        "GET", "https", name_253, "/" => A(2);
        "GET", "https", name_253_dot, "/" => A(2);
        "GET", "https", huge, "/" => D("invalid_host");
        // Ports.
        "GET", "https", "api.github.com:443", issues => A(0);
        "GET", "https", "api.github.com:8443", issues => D("no_matching_grant");
        "GET", "https", "api.github.com:0", issues => D("invalid_port");
        "GET", "https", "api.github.com:65536", issues => D("invalid_port");
        "GET", "https", "api.github.com:+443", issues => D("invalid_port");
        "GET", "https", "api.github.com:", issues => D("invalid_port");
        "GET", "https", "api.github.com:0443", issues => D("invalid_port");
        "GET", "https", "api.github.com:https", issues => D("invalid_port");
        "GET", "https", "api.github.com:4430000", issues => D("invalid_port");
        "GET", "https", "api.github.com:443:443", issues => D("invalid_host");
        "GET", "http", "127.0.0.1:8080", "/" => A(3);
        "GET", "http", "127.0.0.1", "/" => D("no_matching_grant");
        "GET", "http", "127.0.0.1:8081", "/" => D("no_matching_grant");
        "GET", "https", "127.0.0.1:8080", "/" => D("no_matching_grant");
        "GET", "http", "example.com:443", "/" => D("no_matching_grant");
        "GET", "https", "example.com:80", "/" => D("no_matching_grant");
        "GET", "https", "[::1]:8443", "/x/y" => A(5);
        "PUT", "https", "[::1]:8443", "/x" => A(5);
        "POST", "https", "[::1]:8443", "/x" => D("method_not_granted");
        "GET", "https", "[::1]", "/x/" => D("no_matching_grant");
        "GET", "https", "[0:0:0:0:0:0:0:1]:8443", "/x" => A(5);
        "GET", "https", "[::0001]:8443", "/x" => A(5);
        // http versus https, and other schemes.
        "GET", "http", gh, issues => D("no_matching_grant");
        "GET", "HTTPS", gh, issues => A(0);
        "GET", "ftp", gh, issues => D("unsupported_scheme");
        "GET", "", gh, issues => D("unsupported_scheme");
        "GET", "https:", gh, issues => D("unsupported_scheme");
        "GET", "wss", gh, issues => D("unsupported_scheme");
        "GET", "http", "www.googleapis.com", "/" => D("no_matching_grant");
        // IPv4 spellings: only the canonical dotted quad is an address.
        "GET", "http", "2130706433:8080", "/" => D("invalid_host");
        "GET", "http", "0177.0.0.1:8080", "/" => D("invalid_host");
        "GET", "http", "0x7f.0.0.1:8080", "/" => D("invalid_host");
        "GET", "http", "0x7f000001:8080", "/" => D("invalid_host");
        "GET", "http", "0X7F.0.0.1:8080", "/" => D("invalid_host");
        "GET", "http", "127.1:8080", "/" => D("invalid_host");
        "GET", "http", "127.0.1:8080", "/" => D("invalid_host");
        "GET", "http", "127.000.000.001:8080", "/" => D("invalid_host");
        "GET", "http", "127.0.0.01:8080", "/" => D("invalid_host");
        "GET", "http", "256.0.0.1:8080", "/" => D("invalid_host");
        "GET", "http", "127.0.0.1.5:8080", "/" => D("invalid_host");
        "GET", "http", "127.0.0.1.:8080", "/" => A(3);
        "GET", "http", "\u{ff11}\u{ff12}\u{ff17}.0.0.1:8080", "/" => A(3);
        "GET", "http", "0.0.0.0:8080", "/" => D("no_matching_grant");
        "GET", "https", "0x", "/" => D("invalid_host");
        "GET", "https", "foo.0x1f", "/" => D("invalid_host");
        "GET", "https", "googleapis.com.1", "/" => D("invalid_host");
        "GET", "https", "16843009", "/dns-query" => D("invalid_host");
        "GET", "https", "1.1.257", "/dns-query" => D("invalid_host");
        "GET", "https", "1.1.1.1", "/dns-query" => A(9);
        "GET", "https", "1.1.1.1", "/dns-query?dns=AAAB" => A(9);
        "GET", "https", "1.2.3.4.example", "/" => D("no_matching_grant");
        "GET", "https", "10.0.0.5", "/x" => D("private_address");
        "GET", "https", "169.254.169.254", "/latest/meta-data/" => D("metadata_address");
        // IPv6: brackets, IPv4-mapped and NAT64 forms, zone identifiers.
        "GET", "http", "[::ffff:127.0.0.1]:8080", "/" => D("no_matching_grant");
        "GET", "http", "[::ffff:7f00:1]:8080", "/" => D("no_matching_grant");
        "GET", "https", "[::ffff:192.168.1.1]", "/x" => D("private_address");
        "GET", "https", "[::FFFF:C0A8:101]", "/x" => D("private_address");
        "GET", "https", "[64:ff9b::a9fe:a9fe]", "/x" => D("metadata_address");
        "GET", "https", "[64:ff9b::169.254.169.254]", "/x" => D("metadata_address");
        "GET", "https", "[fe80::1%25eth0]:8443", "/x" => D("invalid_host");
        "GET", "https", "[fe80::1%eth0]", "/x" => D("invalid_host");
        "GET", "https", "[::1%251]:8443", "/x" => D("invalid_host");
        "GET", "https", "::1:8443", "/x" => D("invalid_host");
        "GET", "https", "[::1", "/x" => D("invalid_host");
        "GET", "https", "[::1]x", "/x" => D("invalid_host");
        "GET", "https", "[::1]:", "/x" => D("invalid_port");
        "GET", "https", "[1.2.3.4]", "/x" => D("invalid_host");
        "GET", "https", "[v1.fe80::1]", "/x" => D("invalid_host");
        "GET", "https", "[::1]:8443", "/x/../y" => D("no_matching_grant");
        // Path traversal and encodings against https://api.example.com/v1/**.
        "GET", "https", ex, "/v1/users" => A(6);
        "GET", "https", ex, "/v1" => A(6);
        "GET", "https", ex, "/v1/" => A(6);
        "GET", "https", ex, "/v2/users" => D("no_matching_grant");
        "GET", "https", ex, "/v1/../v2/users" => D("no_matching_grant");
        "GET", "https", ex, "/v1/%2e%2e/v2" => D("no_matching_grant");
        "GET", "https", ex, "/v1/%2E%2E/v2" => D("no_matching_grant");
        "GET", "https", ex, "/v1/.%2e/v2" => D("no_matching_grant");
        "GET", "https", ex, "/v1/%2e./admin" => D("no_matching_grant");
        "GET", "https", ex, "/v1/./users" => A(6);
        "GET", "https", ex, "/v1/%2e/users" => A(6);
        "GET", "https", ex, "/v1/users/.." => A(6);
        "GET", "https", ex, "/v1/users/../.." => D("no_matching_grant");
        "GET", "https", ex, "/v2/../v1/users" => A(6);
        "GET", "https", ex, "/../v1/users" => A(6);
        "GET", "https", ex, "/v1/..%2fv2" => D("ambiguous_path");
        "GET", "https", ex, "/v1/..%2Fv2" => D("ambiguous_path");
        "GET", "https", ex, "/v1/%2e%2e%2fv2" => D("ambiguous_path");
        "GET", "https", ex, "/v1%2F..%2Fv2" => D("ambiguous_path");
        "GET", "https", ex, "/v1/%252e%252e/v2" => D("ambiguous_path");
        "GET", "https", ex, "/v1/%252e%252e%252fadmin" => D("ambiguous_path");
        "GET", "https", ex, "/v1/..;/admin" => D("ambiguous_path");
        "GET", "https", ex, "/v1/a%2Fb" => A(6);
        "GET", "https", ex, "/v1/%25/x" => A(6);
        "GET", "https", ex, "/v1/%41dmin" => A(6);
        "GET", "https", ex, "/v1/%zz" => D("invalid_url");
        "GET", "https", ex, "/v1/%4" => D("invalid_url");
        "GET", "https", ex, "/v1/%" => D("invalid_url");
        "GET", "https", ex, "/v1/%%32%65" => D("invalid_url");
        "GET", "https", ex, "/V1/users" => D("no_matching_grant");
        "GET", "https", ex, "/%76%31/users" => A(6);
        "GET", "https", ex, "/v1/users?x=%2e%2e" => A(6);
        "GET", "https", ex, "/v1/users?next=../../admin" => A(6);
        "GET", "https", ex, "v1/users" => D("invalid_url");
        "GET", "https", ex, "/v1/ü" => A(6);
        // Suffix look-alikes and wildcard boundaries.
        "GET", "https", "api.example.com.evil.test", "/v1/x" => D("no_matching_grant");
        "GET", "https", "evilexample.com", "/v1/x" => D("no_matching_grant");
        "GET", "https", "api.example.com-evil.test", "/v1/x" => D("no_matching_grant");
        "GET", "https", "apiexample.com", "/v1/x" => D("no_matching_grant");
        "GET", "https", "api-example.com", "/v1/x" => D("no_matching_grant");
        "GET", "https", "api.example.co", "/v1/x" => D("no_matching_grant");
        "GET", "https", "sub.api.example.com", "/v1/x" => D("no_matching_grant");
        "GET", "https", "x.example.com", "/" => D("no_matching_grant");
        "GET", "https", "www.googleapis.com", "/x" => A(2);
        "GET", "https", "a.b.googleapis.com", "/" => A(2);
        "GET", "https", "1.googleapis.com", "/" => A(2);
        "GET", "https", "googleapis.com", "/" => D("no_matching_grant");
        "GET", "https", "evilgoogleapis.com", "/" => D("no_matching_grant");
        "GET", "https", "googleapis.com.evil.test", "/" => D("no_matching_grant");
        "GET", "https", "www.googleapis.com.evil.test", "/" => D("no_matching_grant");
        "GET", "https", "x.googleapis.co", "/" => D("no_matching_grant");
        "GET", "https", "WWW.GOOGLEAPIS.COM.", "/" => A(2);
        "GET", "https", "www.googleapis\u{ff0e}com", "/" => A(2);
        "GET", "https", "www.googleapis.com:443", "/" => A(2);
        "GET", "https", "www.googleapis.com:8443", "/" => D("no_matching_grant");
        "GET", "https", "142.250.0.1", "/" => D("no_matching_grant");
        "GET", "https", "[2607:f8b0::1]", "/" => D("no_matching_grant");
        // Redirect targets a hostile upstream might send the guest to.
        "GET", "https", "evil.test", "/steal" => D("no_matching_grant");
        "GET", "http", "api.github.com", "/user" => D("no_matching_grant");
        "GET", "https", "169.254.169.254", "/" => D("metadata_address");
        "GET", "https", "api.github.com:444", "/user" => D("no_matching_grant");
        // Names resolved by the test resolver to non-public addresses.
        "GET", "https", "internal.corp.test", "/x" => A(12);
        "GET", "https", "files.example.org", "/x" => A(13);
        "GET", "https", "lan.googleapis.com", "/" => D("private_address");
        "GET", "https", "loop.googleapis.com", "/" => D("private_address");
        "GET", "https", "loop6.googleapis.com", "/" => D("private_address");
        "GET", "https", "meta.googleapis.com", "/" => D("metadata_address");
        "GET", "https", "ecs.googleapis.com", "/" => D("metadata_address");
        "GET", "https", "azure.googleapis.com", "/" => D("metadata_address");
        "GET", "https", "alibaba.googleapis.com", "/" => D("metadata_address");
        "GET", "https", "ec2v6.googleapis.com", "/" => D("metadata_address");
        "GET", "https", "nat64.googleapis.com", "/" => D("private_address");
        "GET", "https", "nat64meta.googleapis.com", "/" => D("metadata_address");
        "GET", "https", "mapped.googleapis.com", "/" => D("private_address");
        "GET", "https", "sixtofour.googleapis.com", "/" => D("private_address");
        "GET", "https", "ula.googleapis.com", "/" => D("private_address");
        "GET", "https", "linklocal.googleapis.com", "/" => D("private_address");
        "GET", "https", "cgnat.googleapis.com", "/" => D("private_address");
        "GET", "https", "zero.googleapis.com", "/" => D("unroutable_address");
        "GET", "https", "mcast.googleapis.com", "/" => D("unroutable_address");
        "GET", "https", "mixed.googleapis.com", "/" => D("private_address");
    };

    // The same look-alike must fail for every method the grants name.
    for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
        let authority = "api.github.com.evil.test".to_owned();
        rows.push((
            method,
            "https",
            authority,
            issues.to_owned(),
            D("no_matching_grant"),
        ));
    }
    rows
}

#[test]
fn corpus_decisions() {
    let policy = Policy::new(grants()).expect("corpus grants do not conflict");
    let rows = rows();
    assert!(rows.len() >= 150, "corpus has only {} rows", rows.len());

    let mut failures = Vec::new();
    for (method, scheme, authority, path, expected) in &rows {
        let got = run(&policy, method, scheme, authority, path);
        if got != *expected {
            failures.push(format!(
                "{method:?} {scheme:?} {authority:?} {path:?}: expected {expected:?}, got {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_covers_every_decision_kind() {
    let codes: std::collections::BTreeSet<Expect> =
        rows().into_iter().map(|(.., expected)| expected).collect();
    for code in [
        "unsupported_scheme",
        "userinfo",
        "fragment",
        "forbidden_character",
        "invalid_host",
        "invalid_port",
        "invalid_url",
        "ambiguous_path",
        "invalid_method",
        "forbidden_method",
        "no_matching_grant",
        "method_not_granted",
        "private_address",
        "metadata_address",
        "unroutable_address",
    ] {
        assert!(codes.contains(&D(code)), "no corpus row expects {code}");
    }
    let allowed = codes.iter().filter(|e| matches!(e, A(_))).count();
    assert_eq!(
        allowed,
        grants().len() - 4,
        "every grant usable by a request is exercised"
    );
}

/// Header rows: (name, value, expected reason code or `None` for allowed).
const HEADERS: &[(&str, &[u8], Option<&str>)] = &[
    ("Accept", b"application/json", None),
    ("Content-Type", b"text/plain; charset=utf-8", None),
    ("X-Request-Id", b"abc\tdef", None),
    ("Authorization", b"Bearer x", Some("forbidden_header")),
    ("authorization", b"x", Some("forbidden_header")),
    ("AUTHORIZATION", b"x", Some("forbidden_header")),
    ("Proxy-Authorization", b"x", Some("forbidden_header")),
    ("Proxy-Connection", b"keep-alive", Some("forbidden_header")),
    ("proxy-anything", b"x", Some("forbidden_header")),
    ("Proxy", b"http://evil.test", Some("forbidden_header")),
    ("Cookie", b"a=b", Some("forbidden_header")),
    ("Host", b"evil.test", Some("forbidden_header")),
    ("Connection", b"close", Some("forbidden_header")),
    ("Transfer-Encoding", b"chunked", Some("forbidden_header")),
    ("TE", b"trailers", Some("forbidden_header")),
    ("Upgrade", b"websocket", Some("forbidden_header")),
    ("Keep-Alive", b"timeout=5", Some("forbidden_header")),
    (
        "HTTP2-Settings",
        b"AAMAAABkAAQAAP__",
        Some("forbidden_header"),
    ),
    ("X-Custom", b"a\r\nHost: evil.test", Some("invalid_header")),
    ("X-Custom", b"a\nb", Some("invalid_header")),
    ("X-Custom", b"a\rb", Some("invalid_header")),
    ("X-Custom", b"a\0b", Some("invalid_header")),
    ("X-Custom", b"a\x1bb", Some("invalid_header")),
    ("X-Custom\r\nHost", b"x", Some("invalid_header")),
    ("Authorization ", b"x", Some("invalid_header")),
    ("Host:", b"x", Some("invalid_header")),
    (":authority", b"evil.test", Some("invalid_header")),
    ("", b"x", Some("invalid_header")),
];

#[test]
fn header_corpus() {
    for (name, value, expected) in HEADERS {
        let got = check_header(name, value).err().map(|reason| reason.code());
        assert_eq!(got, *expected, "header {name:?}: {value:?}");
    }
}

/// Every reason there is, one of each; the match makes a new variant a
/// compile error here until it is listed.
fn every_reason() -> Vec<DenyReason> {
    let all = vec![
        DenyReason::UnsupportedScheme,
        DenyReason::Userinfo,
        DenyReason::Fragment,
        DenyReason::ForbiddenCharacter("a backslash"),
        DenyReason::InvalidHost("is empty"),
        DenyReason::InvalidPort,
        DenyReason::InvalidUrl("no path"),
        DenyReason::AmbiguousPath,
        DenyReason::InvalidMethod,
        DenyReason::ForbiddenMethod,
        DenyReason::ForbiddenHeader("cookie".into()),
        DenyReason::InvalidHeader("control character"),
        DenyReason::NoMatchingGrant,
        DenyReason::MethodNotGranted,
        DenyReason::PrivateAddress(AddrClass::Loopback),
        DenyReason::MetadataAddress,
        DenyReason::UnroutableAddress(AddrClass::Multicast),
        DenyReason::RequestLimit,
    ];
    for reason in &all {
        match reason {
            DenyReason::UnsupportedScheme
            | DenyReason::Userinfo
            | DenyReason::Fragment
            | DenyReason::ForbiddenCharacter(_)
            | DenyReason::InvalidHost(_)
            | DenyReason::InvalidPort
            | DenyReason::InvalidUrl(_)
            | DenyReason::AmbiguousPath
            | DenyReason::InvalidMethod
            | DenyReason::ForbiddenMethod
            | DenyReason::ForbiddenHeader(_)
            | DenyReason::InvalidHeader(_)
            | DenyReason::NoMatchingGrant
            | DenyReason::MethodNotGranted
            | DenyReason::PrivateAddress(_)
            | DenyReason::MetadataAddress
            | DenyReason::UnroutableAddress(_)
            | DenyReason::RequestLimit => {}
        }
    }
    all
}

/// The audit event the egress gate records for a denial.
fn denial_event(method: &str, host: &str, code: &str) -> crate::audit::Event {
    use crate::audit::{Decision, Event, EventKind};
    let mut e = Event::new(
        EventKind::Request,
        "0123456789abcdef01234567",
        "alice",
        "corpus",
        "fetch.fetch",
        &"ab".repeat(32),
    );
    e.method = Some(method.to_owned());
    e.host = Some(host.to_owned());
    e.decision = Some(Decision::Deny);
    e.reason = Some(code.to_owned());
    e
}

#[test]
fn every_reason_code_passes_the_audit_rule() {
    let reasons = every_reason();
    let codes: std::collections::BTreeSet<&str> = reasons.iter().map(DenyReason::code).collect();
    assert_eq!(codes.len(), reasons.len(), "codes are distinct");
    for code in codes {
        denial_event("GET", "example.com", code)
            .validate()
            .unwrap_or_else(|e| panic!("reason code {code:?}: {e}"));
    }
}

#[test]
fn every_corpus_denial_produces_a_valid_audit_event() {
    let policy = Policy::new(grants()).unwrap();
    let mut denials = 0;
    for (method, scheme, authority, path, _) in rows() {
        let D(code) = run(&policy, method, scheme, &authority, &path) else {
            continue;
        };
        // As the gate does: the canonical host when the URL parsed, else a
        // placeholder (the raw URL is never recorded).
        let host = Target::parse(scheme, &authority, &path)
            .map_or_else(|_| "invalid".to_owned(), |t| t.host.to_string());
        let event = denial_event(method, &host, code);
        event
            .validate()
            .unwrap_or_else(|e| panic!("{method} {scheme} {authority:?} {path:?}: {e}"));
        assert_eq!(event.reason.as_deref(), Some(code));
        denials += 1;
    }
    for (name, value, expected) in HEADERS {
        if let Err(reason) = check_header(name, value) {
            denial_event("GET", "example.com", reason.code())
                .validate()
                .unwrap();
            assert_eq!(Some(reason.code()), *expected);
            denials += 1;
        }
    }
    assert!(denials > 150, "only {denials} denials were checked");
}
