//! The quick start, `scripts/run-local.sh`, as a user runs it: a local broker, Cordon with the
//! sample feed, then Ctrl-C. Cordon must stop first — finishing its work while the broker still
//! answers — and the broker after it, so the log shows a clean stop and no storm of connection
//! errors, well within the shutdown deadline.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cordon_e2e::{free_port, repo_root, TestDb};

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_cordon_first_then_the_broker() -> Result<()> {
    let db = TestDb::create().await?;
    let state = tempfile::tempdir()?;
    let work = state.path().join("work");
    let broker_port = free_port();
    let api = format!("127.0.0.1:{}", free_port());
    let mut script = Command::new("bash");
    script
        .arg(repo_root().join("scripts/run-local.sh"))
        .env("CORDON_SKIP_SETUP", "1")
        .env("CORDON_LOCAL_STATE", state.path())
        .env("CORDON_LOCAL_DIR", &work)
        .env("CORDON_LOCAL_BROKER_PORT", broker_port.to_string())
        .env("CORDON_API__LISTEN", &api)
        .env("CORDON_OPS__LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("CORDON_DATABASE__URL", &db.url)
        .env_remove("CORDON_KAFKA__BROKERS")
        .env_remove("CORDON_CONFIG")
        // Its own process group, as a terminal's foreground job: Ctrl-C signals the group.
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = script.spawn().context("running scripts/run-local.sh")?;
    let (lines, said) = mpsc::channel();
    let stdout = child.stdout.take().context("stdout")?;
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut printed = Vec::new();
    let ready_by = Instant::now() + Duration::from_secs(120);
    while !printed
        .iter()
        .any(|l: &String| l.starts_with("Cordon is running"))
    {
        let left = ready_by.saturating_duration_since(Instant::now());
        match said.recv_timeout(left) {
            Ok(line) => printed.push(line),
            Err(_) => {
                let _ = child.kill();
                let stderr = std::io::read_to_string(child.stderr.take().context("stderr")?)?;
                bail!(
                    "the quick start did not come up:\n{}\n{stderr}",
                    printed.join("\n")
                );
            }
        }
    }
    let search = reqwest::get(format!("http://{api}/v1/search?q=delivery")).await?;
    assert_eq!(search.status(), 200);

    // Ctrl-C: SIGINT to the foreground process group. Spelled `-s INT -- -PGID`: procps' kill
    // reads `-INT -PGID` as options, and sent SIGINT to every process on the machine.
    let group = child.id();
    assert!(group > 1, "a process group of its own");
    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-s", "INT", "--", &format!("-{group}")])
        .status()?;
    assert!(status.success());
    let exited = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if signalled.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            bail!("the quick start did not stop within 60 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = signalled.elapsed();
    printed.extend(said.try_iter());
    let log = std::fs::read_to_string(work.join("cordon.log"))?;
    let shutdown = log
        .find("shutdown requested")
        .with_context(|| format!("cordon never saw the signal:\n{log}"))?;
    let after = &log[shutdown..];
    eprintln!(
        "[quick-start] stopped {took:?} after Ctrl-C ({exited}); the log after the signal:\n{after}"
    );
    let stopping_cordon = printed.iter().position(|l| l.contains("stopping cordon"));
    let stopping_broker = printed
        .iter()
        .position(|l| l.contains("stopping the broker"));
    assert!(
        matches!((stopping_cordon, stopping_broker), (Some(c), Some(b)) if c < b),
        "cordon first, then the broker:\n{}",
        printed.join("\n")
    );
    assert!(
        after.contains("stopped"),
        "cordon did not stop cleanly:\n{after}"
    );
    let errors: Vec<&str> = after
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("WARN"))
        .collect();
    assert!(
        errors.is_empty(),
        "errors while stopping:\n{}",
        errors.join("\n")
    );
    assert!(
        took < Duration::from_secs(15),
        "took {took:?}: the 30-second deadline, not a clean stop"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", broker_port)).is_err(),
        "the broker still runs"
    );
    Ok(())
}
