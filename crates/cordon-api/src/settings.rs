//! The configuration sections the HTTP role reads (`[api]`, `[auth]`, `[reports]`,
//! `[console]`, `[media]` in the TOML file; docs/configuration.md) and [`ApiSettings`], the
//! role's settings built from them.

use std::collections::BTreeMap;
use std::net::IpAddr;

use cordon_secret::Secret;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The peers trusted as reverse proxies (`auth.trusted_proxies`): addresses (`10.0.0.5`,
/// `::1`) and CIDR ranges (`10.0.0.0/8`, `fd00::/8`). A peer is matched by its canonical address
/// (`::ffff:10.0.0.5` is `10.0.0.5`). An entry that is neither is refused when the
/// configuration loads, rather than silently trusting nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Whether `peer` is one of them.
    pub fn contains(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.0.iter().any(|net| net.contains(&peer))
    }
}

impl TryFrom<Vec<String>> for TrustedProxies {
    type Error = String;

    fn try_from(entries: Vec<String>) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| {
                        entry
                            .parse::<IpAddr>()
                            .map(|ip| IpNet::from(ip.to_canonical()))
                    })
                    .map_err(|_| {
                        format!("trusted proxy `{entry}` is neither an address nor a CIDR range")
                    })
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }
}

impl From<TrustedProxies> for Vec<String> {
    fn from(proxies: TrustedProxies) -> Self {
        proxies.0.iter().map(ToString::to_string).collect()
    }
}

/// The console's media proxy: images reach moderators only through Cordon.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Largest image fetched, in bytes.
    pub max_bytes: usize,
    /// Seconds one fetch may take.
    pub timeout_secs: u64,
    /// Fetches that run at once.
    pub max_concurrent: usize,
    /// Fetch from private, loopback and link-local addresses too (only for test set-ups: on a
    /// production network it lets content reach internal services).
    pub allow_private_addresses: bool,
    /// Hosts (and their subdomains) never fetched from.
    pub deny_hosts: Vec<String>,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            max_bytes: 5 * 1024 * 1024,
            timeout_secs: 10,
            max_concurrent: 8,
            allow_private_addresses: false,
            deny_hosts: Vec::new(),
        }
    }
}

/// HTTP API settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Listen address.
    pub listen: String,
    /// Largest page of search results or cases.
    pub max_page_size: usize,
    /// Deepest public search result a page may reach (`page × per_page`): a deeper page costs
    /// memory in proportion to its depth.
    pub max_search_depth: usize,
    /// Longest public search query (`q`), in bytes.
    pub max_query_bytes: usize,
    /// Largest request body, in bytes (larger ones get 413).
    pub max_body_bytes: usize,
    /// Milliseconds between outbox relay rounds.
    pub outbox_interval_ms: u64,
    /// Seconds a claimed case stays with its moderator before it returns to the queue.
    pub claim_lease_secs: u64,
    /// Sign-in attempts one client address may make per minute (more get 429).
    pub sign_ins_per_minute: u32,
    /// Public searches one client address may make per second (more get 429).
    pub searches_per_second: u32,
    /// Reports and appeals (together) one client address may send per second (the platform's
    /// backend sends its users' reports from few addresses: size this for it).
    pub reports_per_second: u32,
    /// Connections open at once; past it new connections are closed at once.
    pub max_connections: usize,
    /// Connections one peer address may hold open at once (`auth.trusted_proxies` excepted:
    /// their connections carry many clients).
    pub max_connections_per_client: usize,
    /// Seconds a client has to send a request's headers.
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's body (408 after).
    pub body_timeout_secs: u64,
    /// Seconds a request may take in all before it is answered 503.
    pub request_timeout_secs: u64,
}

/// A trusted flagger (DSA Art. 22): its own signing key and the weight of its reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedFlagger {
    /// Its name, as moderators see it.
    pub name: String,
    /// The key it signs reports with.
    pub secret: Secret,
    /// The weight of one of its reports (a new signed reporter weighs 1).
    #[serde(default = "flagger_weight")]
    pub weight: f32,
}

fn flagger_weight() -> f32 {
    3.0
}

/// User reports (`POST /v1/reports` and the reports topic).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportsConfig {
    /// Reports one reporter may file per hour (more get 429).
    pub per_reporter_per_hour: i64,
    /// Reports one item may receive per hour in each lane from everyone together (more get 429).
    pub per_item_per_hour: i64,
    /// Vouched weight that holds an item until a moderator decides (a new signed reporter
    /// weighs 1; rejected reports make a reporter weigh less).
    pub hold_at: f32,
    /// Accept reports without a signature (lane `unverified`): recorded and queued, but they
    /// hold nothing and raise no priority.
    pub accept_unsigned: bool,
    /// Keys the platform's backend signs reporter identities with, by key id. Several at once
    /// let a key be rotated: add the new one, switch the backend, remove the old one.
    pub platform_keys: BTreeMap<String, Secret>,
    /// Trusted flaggers by key id.
    pub trusted_flaggers: BTreeMap<String, TrustedFlagger>,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        ReportsConfig {
            per_reporter_per_hour: 20,
            per_item_per_hour: 100,
            hold_at: 3.0,
            accept_unsigned: false,
            platform_keys: BTreeMap::new(),
            trusted_flaggers: BTreeMap::new(),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: "127.0.0.1:8080".into(),
            max_page_size: 100,
            max_search_depth: 10_000,
            max_query_bytes: 512,
            max_body_bytes: 64 * 1024,
            outbox_interval_ms: 200,
            claim_lease_secs: 300,
            sign_ins_per_minute: 10,
            searches_per_second: 20,
            reports_per_second: 200,
            max_connections: 1024,
            max_connections_per_client: 64,
            header_timeout_secs: 10,
            body_timeout_secs: 10,
            request_timeout_secs: 10,
        }
    }
}

/// How moderators prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Argon2 passwords and session cookies.
    Password,
    /// A trusted single-sign-on proxy names the user.
    Proxy,
}

/// How moderators sign in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `password` (argon2 passwords, session cookies) or `proxy` (a trusted reverse proxy names
    /// the user in `proxy_header`; the account must exist and its role comes from Cordon).
    pub mode: AuthMode,
    /// The header the single-sign-on proxy sets to the signed-in user name (`proxy` mode).
    pub proxy_header: String,
    /// Peers allowed to set `proxy_header` and `X-Forwarded-For`, as addresses or CIDR ranges;
    /// the headers are ignored from anyone else.
    pub trusted_proxies: TrustedProxies,
    /// Hours a session lasts.
    pub session_hours: u64,
    /// Password hashes (sign-ins, password changes) that run at once; each takes ~19 MiB for
    /// a moment. More wait up to 5 s, then get 429.
    pub max_concurrent_hashes: usize,
    /// Mark the session cookie `Secure` (sent only over HTTPS; browsers also allow it on
    /// http://localhost). Turn off only for plain-HTTP test set-ups on other hosts.
    pub secure_cookies: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Password,
            proxy_header: "x-forwarded-user".into(),
            trusted_proxies: TrustedProxies(vec![
                IpNet::from(IpAddr::from([127, 0, 0, 1])),
                IpNet::from(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
            ]),
            session_hours: 12,
            max_concurrent_hashes: 2,
            secure_cookies: true,
        }
    }
}

/// The moderator console.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Seconds a keyboard decision waits before it is sent, so `u` can undo it.
    pub undo_secs: u64,
    /// Cases shown on the queue page.
    pub page_size: i64,
    /// Other items of the channel shown beside a case.
    pub channel_items: usize,
    /// Policy reason codes a moderator picks from when deciding.
    pub reasons: Vec<String>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            undo_secs: 5,
            page_size: 50,
            channel_items: 10,
            reasons: [
                "illegal_drugs",
                "illegal_weapons",
                "counterfeit",
                "stolen_data",
                "hacking_services",
                "other_illegal_trade",
                "not_illegal",
                "news_or_education",
                "legal_business",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// The HTTP role's settings.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// The `[api]` section.
    pub api: ApiConfig,
    /// The `[auth]` section.
    pub auth: AuthConfig,
    /// The `[reports]` section.
    pub reports: ReportsConfig,
    /// The `[console]` section.
    pub console: ConsoleConfig,
    /// The `[media]` section.
    pub media: MediaConfig,
    /// The topic moderators' decisions are published to.
    pub verdicts_topic: String,
    /// The topic reports arrive on.
    pub reports_topic: String,
    /// The topic reporters' notices (acknowledgements and outcomes) go to.
    pub outcomes_topic: String,
    /// The report consumers' group (`kafka.reports_group`).
    pub reports_group: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(entries: &[&str]) -> Result<TrustedProxies, String> {
        TrustedProxies::try_from(entries.iter().map(|e| e.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn trusted_proxies_are_addresses_and_ranges() {
        let p = proxies(&["10.1.0.0/16", "192.168.5.7", "fd00::/8"]).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(p.contains(ip("10.1.200.3")));
        assert!(
            p.contains(ip("::ffff:10.1.0.9")),
            "mapped addresses are canonical"
        );
        assert!(!p.contains(ip("10.2.0.1")));
        assert!(p.contains(ip("192.168.5.7")));
        assert!(!p.contains(ip("192.168.5.8")));
        assert!(p.contains(ip("fd12::1")));
        assert!(!p.contains(ip("fe80::1")));
        let defaults = AuthConfig::default().trusted_proxies;
        assert!(defaults.contains(ip("127.0.0.1")) && defaults.contains(ip("::1")));
        assert!(!defaults.contains(ip("127.0.0.2")));
        assert_eq!(
            Vec::<String>::from(p),
            ["10.1.0.0/16", "192.168.5.7/32", "fd00::/8"]
        );
    }

    #[test]
    fn a_malformed_trusted_proxy_is_refused() {
        for bad in ["10.0.0.0/33", "proxy.internal", "10.0.0", ""] {
            let err = proxies(&["127.0.0.1", bad]).unwrap_err();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
    }
}
