//! Secrets in the configuration: passwords, tokens and signing keys.
//!
//! A [`Secret`] is never printed: `Debug` and serialization (`cordon config`, logs, errors)
//! show [`REDACTED`] (an unset secret shows as empty, so defaults read back as unset). A secret can be given inline (in the file or through a `CORDON_*`
//! environment variable) or, for mounted Kubernetes secrets, in a file named by the option's
//! `*_file` twin ([`Secret::or_file`]).
//!
//! Architecture invariant: the only way to a secret's value is [`Secret::expose`], called where
//! the value is handed to the library that needs it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What a secret prints as.
pub const REDACTED: &str = "***";

/// A secret value from the configuration.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

/// Why a secret could not be read from its file.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be read.
    #[error("{option}: reading {path}: {source}")]
    Unreadable {
        /// The option naming the file.
        option: String,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Both the option and its `_file` twin are set.
    #[error("{option} and {option}_file are both set; set one")]
    Both {
        /// The inline option.
        option: String,
    },
}

impl Secret {
    /// A secret with this value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that hands it to the library that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn shown(&self) -> &'static str {
        if self.is_empty() {
            ""
        } else {
            REDACTED
        }
    }

    /// Whether no value is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// This secret, or when `file` is set the file's content (a trailing newline removed, as
    /// mounted secrets and `echo` leave one). `option` names the setting in errors.
    pub fn or_file(self, option: &str, file: Option<&Path>) -> Result<Secret, SecretError> {
        let Some(path) = file.filter(|p| !p.as_os_str().is_empty()) else {
            return Ok(self);
        };
        if !self.is_empty() {
            return Err(SecretError::Both {
                option: option.into(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| SecretError::Unreadable {
            option: format!("{option}_file"),
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Secret(text.trim_end_matches(['\n', '\r']).to_string()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.shown())
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.shown())
    }
}

/// A connection URL that may carry a password (`postgres://user:password@host/db`, or a
/// `password=` query parameter): `Debug`, `Display` and serialization show it with the password
/// as [`REDACTED`].
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ConnectionUrl(String);

impl ConnectionUrl {
    /// A URL.
    pub fn new(url: impl Into<String>) -> ConnectionUrl {
        ConnectionUrl(url.into())
    }

    /// The URL with its password, for the one place that connects with it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by [`REDACTED`].
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let mut out = match url.find("://") {
            Some(scheme_end) => {
                let rest = &url[scheme_end + 3..];
                let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
                let authority = &rest[..authority_end];
                match authority.rfind('@') {
                    Some(at) => match authority[..at].find(':') {
                        Some(colon) => format!(
                            "{}{}:{REDACTED}{}",
                            &url[..scheme_end + 3],
                            &authority[..colon],
                            &rest[at..]
                        ),
                        None => url.clone(),
                    },
                    None => url.clone(),
                }
            }
            None => url.clone(),
        };
        if let Some(query_start) = out.find('?') {
            let (head, query) = out.split_at(query_start + 1);
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => {
                        format!("{k}={REDACTED}")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            out = format!("{head}{}", query.join("&"));
        }
        out
    }
}

impl std::fmt::Debug for ConnectionUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl std::fmt::Display for ConnectionUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for ConnectionUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_url_prints_without_its_password() {
        for (url, shown) in [
            (
                "postgres://cordon:p%40ss:w@db.example:5432/cordon?sslmode=verify-full",
                "postgres://cordon:***@db.example:5432/cordon?sslmode=verify-full",
            ),
            (
                "postgres://cordon@db/cordon?password=hunter2&sslmode=require",
                "postgres://cordon@db/cordon?password=***&sslmode=require",
            ),
            (
                "postgres://postgres@127.0.0.1:5432/cordon",
                "postgres://postgres@127.0.0.1:5432/cordon",
            ),
        ] {
            let u = ConnectionUrl::new(url);
            assert_eq!(u.to_string(), shown);
            assert_eq!(format!("{u:?}"), shown);
            assert_eq!(u.expose(), url);
        }
    }

    #[test]
    fn a_secret_never_prints_its_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            format!("\"{REDACTED}\"")
        );
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(format!("{:?}", Secret::default()), "");
    }

    #[test]
    fn a_file_gives_the_value_without_its_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "from a file\n").unwrap();
        let s = Secret::default()
            .or_file("x.password", Some(&path))
            .unwrap();
        assert_eq!(s.expose(), "from a file");
        let both = Secret::new("inline").or_file("x.password", Some(&path));
        assert!(matches!(both, Err(SecretError::Both { .. })));
        let missing = Secret::default().or_file("x.password", Some(&dir.path().join("none")));
        let err = missing.unwrap_err().to_string();
        assert!(err.starts_with("x.password_file: reading"), "{err}");
        let unset = Secret::new("inline").or_file("x.password", None).unwrap();
        assert_eq!(unset.expose(), "inline");
    }
}
