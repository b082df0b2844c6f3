//! `cordon` processes: started, killed and restarted like in production.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `cordon` binary under test.
pub fn cordon_bin() -> PathBuf {
    if let Ok(p) = std::env::var("CORDON_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test> -> target/<profile>/cordon
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("cordon"))
        .expect("target directory")
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf()
}

/// Runs `command` to completion with `input` on its standard input; captures its output.
pub fn run_with_input(command: &mut Command, input: &str) -> Result<Output> {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {command:?}"))?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(input.as_bytes())?;
    Ok(child.wait_with_output()?)
}

/// `output`, unless the command (`what`) failed: then an error with what it printed.
pub fn succeeded(what: &str, output: Output) -> Result<Output> {
    if !output.status.success() {
        bail!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}

/// A running `cordon run` process.
pub struct CordonProcess {
    child: Child,
    /// What the process was started with, for restarts.
    pub args: Vec<String>,
    /// Its environment overrides.
    pub env: Vec<(String, String)>,
    log: PathBuf,
}

impl CordonProcess {
    /// Starts `cordon` with `args` and environment overrides, logging to `log`.
    pub fn start(args: &[&str], env: &[(String, String)], log: &Path) -> Result<CordonProcess> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let child = Command::new(cordon_bin())
            .args(args)
            .envs(env.iter().cloned())
            .current_dir(repo_root())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting cordon (build it first: cargo build --release --bin cordon)")?;
        Ok(CordonProcess {
            child,
            args: args.iter().map(|s| s.to_string()).collect(),
            env: env.to_vec(),
            log: log.to_path_buf(),
        })
    }

    /// The operating-system process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits up to `timeout` for a clean exit; returns the exit code.
    pub fn terminate(&mut self, timeout: Duration) -> Result<Option<i32>> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.code());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
        bail!("cordon did not stop within {timeout:?} of SIGTERM")
    }

    /// Sends a signal (e.g. `HUP`) to the process.
    pub fn signal(&self, name: &str) -> Result<()> {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -{name} failed");
        Ok(())
    }

    /// Kills the process and starts it again with the same arguments.
    pub fn restart(&mut self) -> Result<()> {
        self.kill9();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        *self = CordonProcess::start(&args, &self.env, &self.log)?;
        Ok(())
    }

    /// The address this process serves its operations endpoints on (metrics and health).
    pub fn http(&self) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == "CORDON_OPS__LISTEN")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "127.0.0.1:9464".into())
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for CordonProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `check` until it returns `Some`, or fails after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    while Instant::now() < deadline {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match last_err {
        Some(e) => bail!("timed out after {timeout:?} waiting for {what}; last error: {e:#}"),
        None => bail!("timed out after {timeout:?} waiting for {what}"),
    }
}
