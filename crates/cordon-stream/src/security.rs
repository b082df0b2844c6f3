//! How clients encrypt and authenticate (`[kafka.security]`), and the check at start that the
//! brokers accept them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cordon_secret::Secret;
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use serde::{Deserialize, Serialize};

use crate::{KafkaSettings, StreamError};

/// The transport and authentication to the brokers (librdkafka's `security.protocol`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    /// No encryption, no authentication.
    #[default]
    Plaintext,
    /// TLS, authenticated by a client certificate if one is set.
    Ssl,
    /// SASL authentication without encryption.
    SaslPlaintext,
    /// SASL authentication over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    fn as_librdkafka(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }

    fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
}

/// A SASL mechanism (librdkafka's `sasl.mechanism`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaslMechanism {
    /// Username and password in the clear (use it over TLS only).
    #[serde(rename = "PLAIN")]
    Plain,
    /// Salted challenge-response, SHA-256.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// Salted challenge-response, SHA-512.
    #[default]
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    /// OAuth 2 bearer tokens (librdkafka's OIDC client: set `sasl.oauthbearer.*` in
    /// `[kafka.client]`).
    #[serde(rename = "OAUTHBEARER")]
    OAuthBearer,
    /// Kerberos (Cyrus SASL; set `sasl.kerberos.*` in `[kafka.client]`).
    #[serde(rename = "GSSAPI")]
    Gssapi,
}

impl SaslMechanism {
    fn as_librdkafka(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
            SaslMechanism::Gssapi => "GSSAPI",
        }
    }

    fn uses_password(self) -> bool {
        matches!(
            self,
            SaslMechanism::Plain | SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512
        )
    }
}

/// `[kafka.security]`: encryption and authentication of every client.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSecurity {
    /// Transport and authentication.
    pub protocol: SecurityProtocol,
    /// PEM file of the certificate authorities that sign the brokers' certificates (unset: the
    /// system's). The broker's certificate must also name the host in `kafka.brokers`.
    pub ca_file: Option<PathBuf>,
    /// PEM file of this client's certificate, for brokers that authenticate clients by TLS.
    pub certificate_file: Option<PathBuf>,
    /// PEM file of that certificate's private key.
    pub key_file: Option<PathBuf>,
    /// SASL mechanism, with `protocol` `sasl_plaintext` or `sasl_ssl`.
    pub sasl_mechanism: SaslMechanism,
    /// SASL username (PLAIN, SCRAM).
    pub sasl_username: String,
    /// SASL password (PLAIN, SCRAM); never printed. Or `sasl_password_file`.
    pub sasl_password: Secret,
    /// File holding the SASL password (a mounted secret), instead of `sasl_password`.
    pub sasl_password_file: Option<PathBuf>,
}

impl KafkaSecurity {
    /// Reads `sasl_password_file` into `sasl_password`, and checks that what the protocol needs
    /// is set.
    pub fn resolve(mut self) -> Result<KafkaSecurity, StreamError> {
        // An empty path (an environment override that unsets it) is no path.
        for file in [
            &mut self.ca_file,
            &mut self.certificate_file,
            &mut self.key_file,
            &mut self.sasl_password_file,
        ] {
            if file.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                *file = None;
            }
        }
        self.sasl_password = std::mem::take(&mut self.sasl_password)
            .or_file(
                "kafka.security.sasl_password",
                self.sasl_password_file.as_deref(),
            )
            .map_err(|e| StreamError::Settings(e.to_string()))?;
        self.sasl_password_file = None;
        if self.protocol.sasl()
            && self.sasl_mechanism.uses_password()
            && (self.sasl_username.is_empty() || self.sasl_password.is_empty())
        {
            return Err(StreamError::Settings(format!(
                "kafka.security.protocol {:?} with {} needs kafka.security.sasl_username and \
                 kafka.security.sasl_password (or sasl_password_file)",
                self.protocol.as_librdkafka(),
                self.sasl_mechanism.as_librdkafka()
            )));
        }
        if !self.protocol.tls() && (self.ca_file.is_some() || self.certificate_file.is_some()) {
            return Err(StreamError::Settings(format!(
                "kafka.security.ca_file and certificate_file need protocol \"ssl\" or \
                 \"sasl_ssl\" (it is {:?})",
                self.protocol.as_librdkafka()
            )));
        }
        Ok(self)
    }

    /// Sets the librdkafka properties.
    pub(crate) fn apply(&self, config: &mut ClientConfig) {
        config.set("security.protocol", self.protocol.as_librdkafka());
        if self.protocol.tls() {
            for (key, file) in [
                ("ssl.ca.location", &self.ca_file),
                ("ssl.certificate.location", &self.certificate_file),
                ("ssl.key.location", &self.key_file),
            ] {
                if let Some(path) = file {
                    config.set(key, path.display().to_string());
                }
            }
        }
        if self.protocol.sasl() {
            config.set("sasl.mechanism", self.sasl_mechanism.as_librdkafka());
            if self.sasl_mechanism.uses_password() {
                config.set("sasl.username", &self.sasl_username);
                config.set("sasl.password", self.sasl_password.expose());
            }
        }
    }
}

/// librdkafka properties whose values are secrets: `Debug` of the settings and
/// `cordon config` show them as [`cordon_secret::REDACTED`].
pub fn is_secret_property(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || key.ends_with(".pem")
        || key == "sasl.oauthbearer.config"
        || key.contains("token")
}

/// librdkafka properties an operator sets (`[kafka.client]`, `[kafka.producer]`,
/// `[kafka.consumer]`). `Debug` and serialization show secret values
/// ([`is_secret_property`]) as [`cordon_secret::REDACTED`].
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Properties(pub BTreeMap<String, String>);

impl Properties {
    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&String> {
        self.0.get(key)
    }

    pub(crate) fn apply(&self, config: &mut ClientConfig) {
        for (k, v) in &self.0 {
            config.set(k, v);
        }
    }

    fn shown(&self) -> BTreeMap<&str, &str> {
        self.0
            .iter()
            .map(|(k, v)| {
                let v = if is_secret_property(k) {
                    cordon_secret::REDACTED
                } else {
                    v.as_str()
                };
                (k.as_str(), v)
            })
            .collect()
    }
}

impl std::fmt::Debug for Properties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.shown().fmt(f)
    }
}

impl Serialize for Properties {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.shown().serialize(s)
    }
}

/// Remembers the last error librdkafka logged, and logs nothing itself: the check below turns
/// it into one error naming the setting. (Its error callback needs the client polled; its log
/// callback is called from the broker threads, where a failed handshake is logged.)
#[derive(Default)]
struct LastError(Mutex<Option<String>>);

impl LastError {
    fn set(&self, message: String) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(message);
    }
}

struct Checking(Arc<LastError>);

impl ClientContext for Checking {
    fn log(&self, level: RDKafkaLogLevel, _fac: &str, log_message: &str) {
        if (level as i32) <= RDKafkaLogLevel::Warning as i32 {
            self.0.set(log_message.to_string());
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.0.set(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for Checking {}

/// Connects to the brokers and asks for the cluster's metadata, within `timeout`: a wrong
/// address, a certificate the CA did not sign, or refused credentials fail here, at start, as
/// one error that names the setting to look at, instead of a client that retries forever.
pub async fn check_connection(
    settings: &KafkaSettings,
    timeout: Duration,
) -> Result<(), StreamError> {
    let last = Arc::new(LastError::default());
    let mut config = settings.config();
    // librdkafka's own level follows the `log` crate's, which Cordon does not use.
    config.set_log_level(RDKafkaLogLevel::Warning);
    let consumer: BaseConsumer<Checking> = config
        .create_with_context(Checking(Arc::clone(&last)))
        .map_err(|e| {
            StreamError::Settings(format!(
                "{} (check kafka.security and kafka.client)",
                StreamError::from(e)
            ))
        })?;
    // A broker that is down fails a request at once: ask again until `timeout`, so a broker
    // restarting while Cordon starts is waited for.
    let outcome = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match consumer.fetch_metadata(None, left) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    // Delivers the errors queued for the error callback.
                    let _ = consumer.poll(Duration::ZERO);
                    return Err(e);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(250).min(left)),
            }
        }
    })
    .await
    .map_err(|e| StreamError::Settings(format!("the connection check failed: {e}")))?;
    let Err(e) = outcome else { return Ok(()) };
    let cause = last
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .unwrap_or_else(|| e.to_string());
    let lower = cause.to_ascii_lowercase();
    let hint = if lower.contains("certificate") || lower.contains("ssl handshake") {
        "the broker's certificate was not accepted: check kafka.security.ca_file (the CA that \
         signed it) and that it names the host in kafka.brokers"
    } else if lower.contains("sasl") || lower.contains("authentic") {
        "the broker refused the credentials: check kafka.security.sasl_mechanism, \
         sasl_username and sasl_password (or sasl_password_file)"
    } else {
        "check kafka.brokers and kafka.security.protocol"
    };
    Err(StreamError::Unreachable {
        brokers: settings.brokers.clone(),
        cause,
        hint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_needs_credentials_and_reads_the_password_file() {
        let missing = KafkaSecurity {
            protocol: SecurityProtocol::SaslSsl,
            ..KafkaSecurity::default()
        };
        let err = missing.clone().resolve().unwrap_err().to_string();
        assert!(err.contains("kafka.security.sasl_username"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "s3cret\n").unwrap();
        let resolved = KafkaSecurity {
            sasl_username: "cordon".into(),
            sasl_password_file: Some(file),
            ..missing
        }
        .resolve()
        .unwrap();
        assert_eq!(resolved.sasl_password.expose(), "s3cret");
        let mut config = ClientConfig::new();
        resolved.apply(&mut config);
        assert_eq!(config.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(config.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(config.get("sasl.password"), Some("s3cret"));
        assert!(!format!("{resolved:?}").contains("s3cret"));
    }

    #[test]
    fn certificates_need_tls() {
        let err = KafkaSecurity {
            ca_file: Some("ca.pem".into()),
            ..KafkaSecurity::default()
        }
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(err.contains("kafka.security.ca_file"), "{err}");
    }

    #[test]
    fn a_configuration_error_never_shows_a_secret_value() {
        use rdkafka::types::RDKafkaConfRes;
        let error = |key: &str, value: &str| {
            StreamError::from(KafkaError::ClientConfig(
                RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
                format!("Invalid value \"{value}\" for configuration property \"{key}\""),
                key.into(),
                value.into(),
            ))
            .to_string()
        };
        let shown = error("sasl.oauthbearer.client.secret", "s3cret-value");
        assert!(
            !shown.contains("s3cret-value") && shown.contains("***"),
            "{shown}"
        );
        let shown = error("linger.ms", "soon");
        assert!(shown.contains("soon"), "other values stay: {shown}");
    }

    #[test]
    fn secret_properties_are_recognised() {
        for key in [
            "sasl.password",
            "ssl.key.password",
            "sasl.oauthbearer.client.secret",
            "ssl.key.pem",
            "sasl.oauthbearer.config",
        ] {
            assert!(is_secret_property(key), "{key}");
        }
        assert!(!is_secret_property("session.timeout.ms"));
        let properties = Properties(BTreeMap::from([
            ("sasl.password".to_string(), "s3cret".to_string()),
            ("linger.ms".to_string(), "20".to_string()),
        ]));
        let shown = format!("{properties:?}");
        assert!(!shown.contains("s3cret") && shown.contains("20"), "{shown}");
    }
}
