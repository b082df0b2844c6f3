//! The media proxy: `GET /console/media/{n}/{item id}` fetches an item's n-th image for a
//! signed-in moderator, so the content's author never learns when or from where a moderator
//! looked, and can serve moderators nothing the checks below do not allow.
//!
//! Invariants:
//! - Only URLs the item itself carries are fetched (by position, never a URL from the request),
//!   so the proxy is no open relay.
//! - Nothing of the moderator's request goes out: no cookies, no client headers, no referrer;
//!   redirects are not followed.
//! - Private, loopback, link-local and other non-public addresses are refused — literal or
//!   resolved, checked on the addresses actually connected to — unless
//!   `media.allow_private_addresses` (test set-ups); hosts in `media.deny_hosts` are refused.
//! - At most `media.max_bytes` are read, at most `media.max_concurrent` fetches run at once, each
//!   within `media.timeout_secs`; only JPEG, PNG, GIF and WebP pass, recognised by their own
//!   bytes (never by the upstream's `Content-Type`), and are served with Cordon's own type,
//!   `nosniff` and a sandboxing CSP.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::auth::Viewer;
use crate::error::ApiError;
use crate::extract::Path;
use crate::settings::MediaConfig;
use crate::ApiState;

/// The proxy's HTTP client and its limits.
pub struct MediaProxy {
    client: reqwest::Client,
    config: MediaConfig,
    fetches: Semaphore,
}

/// Whether an address is on the public internet (not loopback, private, link-local, shared,
/// unspecified, multicast, broadcast or documentation space).
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (18..20).contains(&b)))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let segments = v6.segments();
                let first = segments[0];
                // NAT64 (64:ff9b::/96) reaches IPv4 behind it: judge the IPv4 address.
                if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                    let [a, b] = segments[6].to_be_bytes();
                    let [c, d] = segments[7].to_be_bytes();
                    return is_public(IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d)));
                }
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
                    || (first & 0xffc0) == 0xfec0)
            }
        },
    }
}

/// Resolves names for the proxy's client, keeping only public addresses (unless private ones
/// are allowed): the check happens on the addresses the client connects to, so a name that
/// resolves to an internal address (or re-resolves to one) is never reached.
struct PublicOnly {
    allow_private: bool,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{} has no public address", name.as_str()).into());
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// What the proxy serves: an image type recognised by its first bytes.
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

impl MediaProxy {
    /// The proxy for `config`.
    pub fn new(config: &MediaConfig) -> anyhow::Result<Arc<MediaProxy>> {
        let client = reqwest::Client::builder()
            // Never through an egress proxy from the environment: it would resolve and reach
            // the target itself, past the address checks below.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(config.timeout_secs))
            .connect_timeout(Duration::from_secs(config.timeout_secs))
            .user_agent("cordon-media-proxy")
            .dns_resolver(Arc::new(PublicOnly {
                allow_private: config.allow_private_addresses,
            }))
            .build()?;
        Ok(Arc::new(MediaProxy {
            client,
            config: config.clone(),
            fetches: Semaphore::new(config.max_concurrent.max(1)),
        }))
    }

    /// Fetches `url` within the limits; the image's type and bytes.
    async fn fetch(&self, url: &str) -> Result<(&'static str, Vec<u8>), ApiError> {
        let refuse = |status: StatusCode, why: String| ApiError::Refused(status, why);
        let parsed = reqwest::Url::parse(url)
            .map_err(|_| refuse(StatusCode::BAD_GATEWAY, "the media URL is not valid".into()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "only http(s) media are fetched".into(),
            ));
        }
        let host = parsed
            .host_str()
            .unwrap_or_default()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let denied = self
            .config
            .deny_hosts
            .iter()
            .any(|d| host == *d || host.ends_with(&format!(".{d}")));
        if denied {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                format!("media from {host} are denied"),
            ));
        }
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if literal.is_some_and(|ip| !is_public(ip)) && !self.config.allow_private_addresses {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "media on private addresses are not fetched".into(),
            ));
        }
        let _slot = tokio::time::timeout(
            Duration::from_secs(self.config.timeout_secs),
            self.fetches.acquire(),
        )
        .await
        .map_err(|_| {
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the media proxy is busy".into(),
            )
        })?
        .map_err(|_| {
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the media proxy is busy".into(),
            )
        })?;
        let mut response = self
            .client
            .get(parsed)
            .header(
                header::ACCEPT,
                "image/jpeg, image/png, image/gif, image/webp",
            )
            .send()
            .await
            .map_err(|e| {
                warn!(%host, error = %e, "fetching media failed");
                refuse(
                    StatusCode::BAD_GATEWAY,
                    format!("fetching the media from {host} failed"),
                )
            })?;
        if !response.status().is_success() {
            return Err(refuse(
                StatusCode::BAD_GATEWAY,
                format!("{host} answered {}", response.status().as_u16()),
            ));
        }
        let max = self.config.max_bytes;
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err(refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the media is over {max} bytes"),
            ));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|_| {
            refuse(
                StatusCode::BAD_GATEWAY,
                format!("reading the media from {host} failed"),
            )
        })? {
            if bytes.len() + chunk.len() > max {
                return Err(refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the media is over {max} bytes"),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        let kind = sniff(&bytes).ok_or_else(|| {
            refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the media is not a JPEG, PNG, GIF or WebP image".into(),
            )
        })?;
        Ok((kind, bytes))
    }
}

/// `GET /console/media/{n}/{item id}`: the item's n-th image, through the proxy.
pub async fn media(
    State(s): State<ApiState>,
    me: Viewer,
    Path((n, id)): Path<(usize, String)>,
) -> Result<Response, ApiError> {
    let item = crate::lookup(&s, &id).await?;
    let Some(url) = item
        .and_then(|i| i.content)
        .and_then(|c| c.media.into_iter().nth(n))
        .filter(|m| m.kind == cordon_domain::MediaKind::Image)
        .map(|m| m.url)
    else {
        return Err(ApiError::Refused(
            StatusCode::NOT_FOUND,
            format!("item {id} has no image {n}"),
        ));
    };
    let (kind, bytes) = s.media.fetch(&url).await?;
    info!(item_id = %id, moderator = %me.username, bytes = bytes.len(), "media proxied");
    Ok((
        [
            (header::CONTENT_TYPE, kind),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox",
            ),
            (header::CACHE_CONTROL, "private, max-age=300"),
            (header::CONTENT_DISPOSITION, "inline"),
        ],
        Body::from(bytes),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "224.0.0.1",
            "64:ff9b::a00:1",
            "192.0.0.8",
            "198.18.0.1",
            "240.0.0.1",
            "fec0::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "8.8.8.8",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn images_are_recognised_by_their_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff(b"GIF89a..."), Some("image/gif"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"<svg onload=alert(1)>"), None);
        assert_eq!(sniff(b"<html>"), None);
    }
}
