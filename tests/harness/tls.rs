//! A certificate authority made for one test, with the `openssl` command line (installed by
//! `scripts/setup.sh`): a CA, and server certificates it signs for a host name or address.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::succeeded;

/// A test certificate authority in a directory of its own.
pub struct TestCa {
    /// The CA's certificate (PEM): what clients trust.
    pub cert: PathBuf,
    key: PathBuf,
    dir: tempfile::TempDir,
}

/// A certificate and its private key (PEM files).
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate.
    pub cert: PathBuf,
    /// Its private key (PKCS#8).
    pub key: PathBuf,
}

fn openssl(args: &[&str], dir: &Path) -> Result<()> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .context("running openssl (run scripts/setup.sh)")?;
    succeeded(&format!("openssl {args:?}"), output)?;
    Ok(())
}

impl TestCa {
    /// A new CA named `name`, valid for two days.
    pub fn new(name: &str) -> Result<TestCa> {
        let dir = tempfile::tempdir()?;
        let subject = format!("/CN={name}");
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                &subject,
            ],
            dir.path(),
        )?;
        Ok(TestCa {
            cert: dir.path().join("ca.pem"),
            key: dir.path().join("ca.key"),
            dir,
        })
    }

    /// A server certificate for `host` (an IP address or a DNS name), signed by this CA.
    pub fn issue(&self, host: &str) -> Result<Issued> {
        let dir = self.dir.path();
        let stem = host.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        let (key, csr, cert, ext) = (
            format!("{stem}.key"),
            format!("{stem}.csr"),
            format!("{stem}.pem"),
            format!("{stem}.ext"),
        );
        let san = if host.parse::<std::net::IpAddr>().is_ok() {
            format!("subjectAltName=IP:{host}")
        } else {
            format!("subjectAltName=DNS:{host}")
        };
        std::fs::write(dir.join(&ext), san)?;
        let subject = format!("/CN={host}");
        openssl(
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &subject,
            ],
            dir,
        )?;
        let (ca_cert, ca_key) = (
            self.cert.display().to_string(),
            self.key.display().to_string(),
        );
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_cert,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-out",
                &cert,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
            dir,
        )?;
        Ok(Issued {
            cert: dir.join(cert),
            key: dir.join(key),
        })
    }
}
