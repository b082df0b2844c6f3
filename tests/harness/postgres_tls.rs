//! A second PostgreSQL server for one test, serving TLS with a certificate from a [`TestCa`]
//! and accepting only TLS connections over TCP: `initdb` on a free port as the `postgres` user
//! (PostgreSQL refuses to run as root), stopped when dropped.
//!
//! [`TestCa`]: crate::TestCa

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{free_port, succeeded, wait_for_port, Issued};

/// A throw-away PostgreSQL server with `ssl = on`.
pub struct TlsPostgres {
    /// Its port on 127.0.0.1.
    pub port: u16,
    data: PathBuf,
    bin: PathBuf,
    _dir: tempfile::TempDir,
}

/// The newest PostgreSQL's programs (`CORDON_PG_BINDIR` overrides).
fn bindir() -> Result<PathBuf> {
    if let Ok(dir) = std::env::var("CORDON_PG_BINDIR") {
        return Ok(dir.into());
    }
    let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .context("no /usr/lib/postgresql (set CORDON_PG_BINDIR)")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    let newest = versions
        .last()
        .context("no PostgreSQL under /usr/lib/postgresql")?;
    Ok(format!("/usr/lib/postgresql/{newest}/bin").into())
}

/// Runs a command as the `postgres` user.
fn as_postgres(program: &Path, args: &[&str]) -> Result<()> {
    let output = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(args)
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    succeeded(&format!("{} {args:?}", program.display()), output)?;
    Ok(())
}

/// Runs `program` with `args` and `path` (as root), failing with what it printed.
fn on_path(program: &str, args: &[&str], path: &Path) -> Result<()> {
    let output = Command::new(program).args(args).arg(path).output()?;
    succeeded(&format!("{program} {args:?} {}", path.display()), output)?;
    Ok(())
}

fn chown_postgres(path: &Path) -> Result<()> {
    on_path("chown", &["-R", "postgres:postgres"], path)
}

impl TlsPostgres {
    /// Starts a server with `cert` (whose key it keeps private); `trust` authentication, TCP
    /// connections only with TLS (`hostssl`).
    pub fn start(cert: &Issued) -> Result<TlsPostgres> {
        let bin = bindir()?;
        let dir = tempfile::tempdir()?;
        chown_postgres(dir.path())?;
        let data = dir.path().join("data");
        let data_arg = data.display().to_string();
        as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                &data_arg,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        )?;
        std::fs::copy(&cert.cert, data.join("server.crt"))?;
        std::fs::copy(&cert.key, data.join("server.key"))?;
        let port = free_port();
        let mut conf = std::fs::read_to_string(data.join("postgresql.conf"))?;
        conf.push_str(&format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
            dir.path().display()
        ));
        std::fs::write(data.join("postgresql.conf"), conf)?;
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        )?;
        chown_postgres(&data)?;
        on_path("chmod", &["600"], &data.join("server.key"))?;
        let log = dir.path().join("postgres.log").display().to_string();
        as_postgres(
            &bin.join("pg_ctl"),
            &["-D", &data_arg, "-l", &log, "-w", "start"],
        )?;
        wait_for_port(
            &format!("127.0.0.1:{port}"),
            std::time::Duration::from_secs(20),
        )?;
        Ok(TlsPostgres {
            port,
            data,
            bin,
            _dir: dir,
        })
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        let _ = as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", &data, "-m", "immediate", "stop"],
        );
    }
}
