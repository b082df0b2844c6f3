//! The broker: a tansu process with its durable SQLite store.

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, wait_for_port};

/// The consumers' fetch wait (`kafka.fetch_wait_max_ms`) of every deployment on this broker:
/// tansu holds a fetch for its whole wait when nothing is new, so the default 500 ms would put
/// half a second on every hop (see `cordon_stream::DEFAULT_FETCH_WAIT_MAX_MS`).
pub const LOCAL_FETCH_WAIT_MAX_MS: u64 = 20;

/// A tansu broker process on a free loopback port with a durable SQLite store.
pub struct Broker {
    child: Option<Child>,
    port: u16,
    store: PathBuf,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// Starts a broker.
    pub fn start() -> Result<Broker> {
        let dir = tempfile::tempdir()?;
        let store = dir.path().join("tansu.db");
        let mut broker = Broker {
            child: None,
            port: free_port(),
            store,
            _dir: dir,
        };
        broker.restart()?;
        Ok(broker)
    }

    /// The bootstrap address.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's operating-system process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the broker with SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port and store.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        let bin = std::env::var("CORDON_TANSU").unwrap_or_else(|_| "tansu".into());
        let url = format!("tcp://{}", self.addr());
        let log = std::fs::File::create(self.store.with_extension("log"))?;
        let child = Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            // tansu resolves the sqlite:// path relative to its working directory.
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(self.store.parent().expect("store directory"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting the broker `{bin}` (run scripts/setup.sh)"))?;
        self.child = Some(child);
        wait_for_port(&self.addr(), Duration::from_secs(20))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}
