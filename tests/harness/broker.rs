//! The broker: a tansu process with its durable SQLite store (or, for benchmarks only,
//! librdkafka's mock cluster in a process of its own).

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, succeeded, wait_for_port, Issued};

/// The local broker's configuration, `deploy/local.toml` (only a `[kafka]` table), which every
/// deployment's configuration starts with, as the quick start's does.
pub const LOCAL_CONFIG: &str = include_str!("../../deploy/local.toml");

/// The consumers' fetch wait (`kafka.fetch_wait_max_ms`) of [`LOCAL_CONFIG`], for the tests'
/// own clients: tansu holds a fetch for its whole wait when nothing is new, so the default 500
/// ms would put half a second on every hop (see `cordon_stream::DEFAULT_FETCH_WAIT_MAX_MS`).
pub fn local_fetch_wait_max_ms() -> u64 {
    let config: toml::Table = LOCAL_CONFIG.parse().expect("deploy/local.toml parses");
    config["kafka"]["fetch_wait_max_ms"]
        .as_integer()
        .and_then(|ms| u64::try_from(ms).ok())
        .expect("deploy/local.toml sets kafka.fetch_wait_max_ms")
}

/// A tansu broker process on a free loopback port with a durable SQLite store.
///
/// With [`Broker::tls`] set, clients reach it through TLS: tansu 0.6.0 cannot serve TLS itself
/// (its command line refuses `--cert` together with `--key`, and needs both), so `socat`
/// terminates TLS on the public port and forwards to tansu on a loopback port of its own, and
/// tansu advertises the public one. Authentication (`--authentication`) is tansu's own.
pub struct Broker {
    child: Option<Child>,
    tls_proxy: Option<Child>,
    port: u16,
    /// Where tansu itself listens when a TLS proxy is in front of it.
    inner_port: u16,
    store: PathBuf,
    /// The certificate the broker serves TLS with, if any.
    pub tls: Option<Issued>,
    /// Whether the broker requires SASL authentication (tansu: SCRAM users, see
    /// [`Broker::add_scram_user`]; its PLAIN accepts any password).
    pub authentication: bool,
    /// Whether it is librdkafka's mock cluster ([`Broker::mock`]) instead of tansu.
    pub mock: bool,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// Starts a broker.
    pub fn start() -> Result<Broker> {
        let dir = tempfile::tempdir()?;
        let store = dir.path().join("tansu.db");
        let mut broker = Broker {
            child: None,
            tls_proxy: None,
            port: free_port(),
            inner_port: free_port(),
            store,
            tls: None,
            authentication: false,
            mock: false,
            _dir: dir,
        };
        broker.restart()?;
        Ok(broker)
    }

    /// Starts librdkafka's mock cluster as a broker process (`bin`: the `cordon-mock-broker`
    /// binary, `env!("CARGO_BIN_EXE_cordon-mock-broker")` in this package's benches) with
    /// `topics` created: a broker that is not the bottleneck, for benchmarks only — it keeps
    /// nothing, compacts nothing and takes no admin requests (set `kafka.create_topics = false`).
    pub fn mock(bin: &str, topics: &[&str]) -> Result<Broker> {
        use std::io::BufRead;
        let mut child = Command::new(bin)
            .args(topics)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting the mock broker `{bin}`"))?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().context("its output")?).read_line(&mut line)?;
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("the mock broker's address: {line:?}"))?;
        let dir = tempfile::tempdir()?;
        Ok(Broker {
            child: Some(child),
            tls_proxy: None,
            port,
            inner_port: port,
            store: dir.path().join("mock"),
            tls: None,
            authentication: false,
            mock: true,
            _dir: dir,
        })
    }

    /// The bootstrap address.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's operating-system process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the broker (and its TLS proxy) with SIGKILL.
    pub fn kill(&mut self) {
        for mut child in [self.child.take(), self.tls_proxy.take()]
            .into_iter()
            .flatten()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Where tansu itself listens: the public address, or behind a TLS proxy its own.
    fn inner_addr(&self) -> String {
        match self.tls {
            Some(_) => format!("127.0.0.1:{}", self.inner_port),
            None => self.addr(),
        }
    }

    /// Starts the broker again on the same port and store.
    pub fn restart(&mut self) -> Result<()> {
        anyhow::ensure!(!self.mock, "the mock broker keeps nothing to restart with");
        self.kill();
        let bin = std::env::var("CORDON_TANSU").unwrap_or_else(|_| "tansu".into());
        let listener = format!("tcp://{}", self.inner_addr());
        let advertised = format!("tcp://{}", self.addr());
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.store.with_extension("log"))?;
        let mut command = Command::new(&bin);
        command.args([
            "broker",
            "--listener-url",
            &listener,
            "--advertised-listener-url",
            &advertised,
        ]);
        if self.authentication {
            command.arg("--authentication");
        }
        let child = command
            // tansu resolves the sqlite:// path relative to its working directory.
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(self.store.parent().expect("store directory"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting the broker `{bin}` (run scripts/setup.sh)"))?;
        self.child = Some(child);
        wait_for_port(&self.inner_addr(), Duration::from_secs(20))?;
        if let Some(tls) = &self.tls {
            let listen = format!(
                "OPENSSL-LISTEN:{},bind=127.0.0.1,reuseaddr,fork,cert={},key={},verify=0",
                self.port,
                tls.cert.display(),
                tls.key.display()
            );
            let proxy = Command::new("socat")
                .arg(listen)
                .arg(format!("TCP:{}", self.inner_addr()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting socat, the TLS proxy (run scripts/setup.sh)")?;
            self.tls_proxy = Some(proxy);
            wait_for_port(&self.addr(), Duration::from_secs(20))?;
        }
        Ok(())
    }

    /// Creates a SCRAM-SHA-512 user with `tansu user create`, which speaks plaintext without
    /// authentication: call it before turning on [`Broker::authentication`] and restarting
    /// (the user is kept in the store).
    ///
    /// A broker that has just opened its port may still reset the connection: tried up to five
    /// times.
    pub fn add_scram_user(&self, name: &str, password: &str) -> Result<()> {
        let bin = std::env::var("CORDON_TANSU").unwrap_or_else(|_| "tansu".into());
        let mut attempt = 1;
        loop {
            let output = Command::new(&bin)
                .args(["user", "create", "--broker"])
                .arg(format!("tcp://{}", self.inner_addr()))
                .args(["--mechanism", "scram512", name, password])
                .output()
                .context("running tansu user create")?;
            match succeeded("tansu user create", output) {
                Ok(_) => return Ok(()),
                Err(e) if attempt == 5 => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
            attempt += 1;
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}
