//! Test harness for Cordon's tests against real components: a throw-away PostgreSQL database, a
//! real Kafka-protocol broker process (tansu with its durable SQLite engine), and `cordon`
//! processes started, killed and restarted like in production.
//!
//! Environment:
//! - `CORDON_TEST_PG_URL`: an admin connection used to create and drop test databases
//!   (default `postgres://postgres@127.0.0.1:5432/postgres`).
//! - `CORDON_TANSU`: the broker binary (default `tansu` on `PATH`).
//! - `CORDON_BIN`: the `cordon` binary (default: next to the test executable's directory).
//! - `ORT_DYLIB_PATH`: the ONNX Runtime library, passed on to `cordon`.
//! - `CORDON_CHROMEDRIVER`, `CORDON_CHROMIUM`: the browser for console tests (default
//!   `/usr/bin/chromedriver` and `/usr/bin/chromium`, Debian's packages).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The admin connection string for creating test databases.
pub fn admin_url() -> String {
    std::env::var("CORDON_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    // Below the kernel's ephemeral range (32768 and up by default), so that no outgoing
    // connection takes the port between this check and the process binding it; handed out in
    // turn, so that tests running at once never get the same one.
    const FIRST: u16 = 20_000;
    const SPAN: u16 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = (std::process::id() % u32::from(SPAN)) as u16;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed) as u16;
        let port = FIRST + (start.wrapping_add(n)) % SPAN;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!(
        "no free port on loopback between {FIRST} and {}",
        FIRST + SPAN
    )
}

fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    )
}

/// A PostgreSQL database created for one test and dropped when this value is dropped.
pub struct TestDb {
    name: String,
    /// Connection string of the test database.
    pub url: String,
}

impl TestDb {
    /// Creates a fresh, empty database.
    pub async fn create() -> Result<TestDb> {
        let admin = admin_url();
        let name = unique_name("cordon_test");
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
            .await
            .with_context(|| format!("connecting to PostgreSQL at {admin}"))?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        Ok(TestDb {
            url: format!("{base}/{name}"),
            name,
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin = admin_url();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await?;
                anyhow::Ok(())
            })
        })
        .join();
    }
}

/// Waits until `addr` accepts TCP connections.
pub fn wait_for_port(addr: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nothing listens on {addr} after {timeout:?}")
}

/// A headless Chromium driven through chromedriver (WebDriver), for console tests.
pub struct Browser {
    /// The WebDriver client.
    pub client: fantoccini::Client,
    driver: Child,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium session.
    pub async fn start() -> Result<Browser> {
        let driver_bin =
            std::env::var("CORDON_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let chromium =
            std::env::var("CORDON_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let port = free_port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!("starting {driver_bin} (scripts/setup.sh installs chromium and chromium-driver)")
            })?;
        wait_for_port(&format!("127.0.0.1:{port}"), Duration::from_secs(20))?;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-background-networking", "--disable-component-update",
                         "--window-size=1280,1000"],
            }),
        );
        let client = fantoccini::ClientBuilder::new(
            hyper_util::client::legacy::connect::HttpConnector::new(),
        )
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .context("opening a Chromium session")?;
        Ok(Browser { client, driver })
    }

    /// Waits until the current page has loaded, scripts included.
    pub async fn loaded(&self) -> Result<()> {
        eventually(Duration::from_secs(15), "the page to load", || async {
            let state = self.eval("return document.readyState").await?;
            Ok((state == "complete").then_some(()))
        })
        .await
    }

    /// Presses and releases one key, as a person would, once the page has loaded.
    pub async fn press(&self, key: char) -> Result<()> {
        self.loaded().await?;
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let keys = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
        self.client.perform_actions(keys).await?;
        Ok(())
    }

    /// Ends the browser session (Chromium exits) and stops chromedriver.
    pub async fn close(self) -> Result<()> {
        self.client.clone().close().await?;
        Ok(())
    }

    /// Clicks the element `css` selects.
    pub async fn click(&self, css: &str) -> Result<()> {
        self.element(css)
            .await?
            .click()
            .await
            .with_context(|| format!("clicking {css}"))
    }

    /// Chooses the option `value` of the `<select>` that `css` selects.
    pub async fn choose(&self, css: &str, value: &str) -> Result<()> {
        self.element(css)
            .await?
            .select_by_value(value)
            .await
            .with_context(|| format!("choosing {value} in {css}"))
    }

    /// The text of the element `css` selects.
    pub async fn text(&self, css: &str) -> Result<String> {
        Ok(self.element(css).await?.text().await?)
    }

    async fn element(&self, css: &str) -> Result<fantoccini::elements::Element> {
        self.client
            .find(fantoccini::Locator::Css(css))
            .await
            .with_context(|| format!("finding {css}"))
    }

    /// Runs a script in the page and returns its JSON result.
    pub async fn eval(&self, script: &str) -> Result<serde_json::Value> {
        Ok(self.client.execute(script, Vec::new()).await?)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

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

/// A whole Cordon deployment for a test: broker, database, index directory, a config file, and
/// `cordon` processes started from it.
pub struct Deployment {
    /// The broker.
    pub broker: Broker,
    /// The review database.
    pub db: TestDb,
    /// Working directory (config, index, logs).
    pub dir: tempfile::TempDir,
    /// The config file every process uses.
    pub config: PathBuf,
    /// The HTTP address of the API role.
    pub api: String,
    /// The session [`Deployment::get`] and [`Deployment::post`] use for review endpoints.
    admin: tokio::sync::OnceCell<Session>,
}

/// Policy thresholds that queue every item for review (only a score of exactly 1.0 suppresses).
pub const REVIEW_EVERYTHING: &str = "[policy.thresholds]
drugs = { review_at = 0.000001, suppress_at = 1.0 }
weapons = { review_at = 0.000001, suppress_at = 1.0 }
counterfeit = { review_at = 0.000001, suppress_at = 1.0 }
stolen_data = { review_at = 0.000001, suppress_at = 1.0 }
hacking = { review_at = 0.000001, suppress_at = 1.0 }
other_illegal = { review_at = 0.000001, suppress_at = 1.0 }
";

/// An HTTP client for tests. It keeps idle connections for less time than Cordon's
/// `api.header_timeout_secs`, after which the server closes them (a client that reuses a
/// connection the server just closed sees "connection closed before message completed").
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(3))
        .build()
        .expect("an HTTP client")
}

/// The password every test account gets.
pub const TEST_PASSWORD: &str = "correct horse battery staple";

/// The id of the platform key every test deployment trusts for signed reporters.
pub const TEST_REPORT_KEY_ID: &str = "test";
/// The secret of that key.
pub const TEST_REPORT_KEY: &str = "a test key that is long enough to sign reports";

/// A report of `item_id` by `reporter`, signed as the platform's backend signs it:
/// `<key id>:hex(HMAC-SHA256(key, "cordon-report-v1\n" + item_id + "\n" + reporter))`.
pub fn signed_report(item_id: &str, reporter: &str, reason: &str) -> serde_json::Value {
    serde_json::json!({
        "item_id": item_id,
        "reason": reason,
        "reporter": reporter,
        "signature": report_signature(TEST_REPORT_KEY_ID, TEST_REPORT_KEY, item_id, reporter),
    })
}

/// The signature of a report of `item_id` by `reporter` with the key `key_id` = `secret`.
pub fn report_signature(key_id: &str, secret: &str, item_id: &str, reporter: &str) -> String {
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("cordon-report-v1\n{item_id}\n{reporter}").as_bytes());
    format!("{key_id}:{}", hex::encode(mac.finalize().into_bytes()))
}

/// Paths anyone may call without signing in.
fn is_public(path: &str) -> bool {
    ["/v1/search", "/v1/reports", "/readyz", "/healthz"]
        .iter()
        .any(|p| path.starts_with(p))
}

/// A signed-in console account: sends its session cookie and CSRF token with every request.
#[derive(Debug, Clone)]
pub struct Session {
    api: String,
    cookie: String,
    /// The session's CSRF token.
    pub csrf: String,
    client: reqwest::Client,
}

impl Session {
    /// Sends a request with the session cookie and CSRF token; returns status and JSON body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, serde_json::Value)> {
        let mut request = self
            .client
            .request(method, format!("http://{}{path}", self.api))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        ))
    }

    /// The `cookie` header value carrying the session.
    pub fn cookie(&self) -> &str {
        &self.cookie
    }

    /// GETs a path as JSON.
    pub async fn get(&self, path: &str) -> Result<(u16, serde_json::Value)> {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// POSTs JSON.
    pub async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(u16, serde_json::Value)> {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }
}

impl Deployment {
    /// Starts a broker and creates a database, and writes a config whose `extra` TOML is appended
    /// (e.g. policy thresholds or worker settings). Tests page through whole result sets and sign many accounts in from one address, so the
    /// config lifts the search depth and the per-client search and sign-in limits; a test of a
    /// limit sets it again (an environment override wins).
    ///
    /// The context stage is off, as by default (the fast model decides every item); a process
    /// started with `CORDON_CONTEXT__ENABLED=true` turns it on.
    pub async fn new(extra: &str) -> Result<Deployment> {
        let broker = Broker::start()?;
        let db = TestDb::create().await?;
        let dir = tempfile::tempdir()?;
        let api = format!("127.0.0.1:{}", free_port());
        let config = dir.path().join("cordon.toml");
        std::fs::write(
            &config,
            format!(
                "[kafka]\nbrokers = \"{}\"\n[database]\nurl = \"{}\"\n[index]\ndir = \"{}\"\ncommit_interval_ms = 100\n\
                 [api]\nlisten = \"{api}\"\noutbox_interval_ms = 100\nmax_search_depth = 1000000\n\
                 searches_per_second = 1000000\nsign_ins_per_minute = 1000000\n\
                 [reports.platform_keys]\n{TEST_REPORT_KEY_ID} = \"{TEST_REPORT_KEY}\"\n\
                 [log]\nfilter = \"info,cordon=debug\"\n{extra}\n",
                broker.addr(),
                db.url,
                dir.path().join("index").display(),
            ),
        )?;
        Ok(Deployment {
            broker,
            db,
            dir,
            config,
            api,
            admin: tokio::sync::OnceCell::new(),
        })
    }

    /// Creates an account with `cordon user add` (password [`TEST_PASSWORD`]).
    pub fn add_user(&self, username: &str, role: &str) -> Result<()> {
        use std::io::Write;
        let mut child = Command::new(cordon_bin())
            .arg("--config")
            .arg(&self.config)
            .args(["user", "add", username, "--role", role])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("running cordon user add")?;
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(format!("{TEST_PASSWORD}\n").as_bytes())?;
        let output = child.wait_with_output()?;
        if !output.status.success() {
            bail!(
                "cordon user add {username} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// Signs in through `POST /v1/session`.
    pub async fn sign_in(&self, username: &str, password: &str) -> Result<Session> {
        let client = http_client();
        let response = client
            .post(format!("http://{}/v1/session", self.api))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await?;
        let status = response.status();
        let cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|c| c.to_str().ok())
            .and_then(|c| c.split(';').next())
            .map(String::from);
        let body: serde_json::Value = response.json().await?;
        let (Some(cookie), true) = (cookie, status.is_success()) else {
            bail!("sign-in as {username} refused ({status}): {body}");
        };
        Ok(Session {
            api: self.api.clone(),
            cookie,
            csrf: body["csrf_token"]
                .as_str()
                .context("csrf_token")?
                .to_string(),
            client,
        })
    }

    /// Creates an account (unless it exists) and signs in as it.
    pub async fn session(&self, username: &str, role: &str) -> Result<Session> {
        if let Err(e) = self.add_user(username, role) {
            if !format!("{e:#}").contains("exists") {
                return Err(e);
            }
        }
        self.sign_in(username, TEST_PASSWORD).await
    }

    /// The admin account `ann` the review requests of [`Deployment::get`] and
    /// [`Deployment::post`] are made as (created on first use).
    pub async fn admin(&self) -> Result<&Session> {
        self.admin
            .get_or_try_init(|| self.session("ann", "admin"))
            .await
    }

    /// Appends TOML to the config file (before any process starts).
    pub fn append_config(&self, toml: &str) -> Result<()> {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.config)?;
        writeln!(file, "\n{toml}")?;
        Ok(())
    }

    /// Sets uniform thresholds that split the texts of `file` (JSON lines with `id` and `text`)
    /// by their top score into thirds: suppressed, queued for review, allowed. The pipeline tests
    /// then exercise every action whatever the trained model's exact scores are.
    pub fn spread_policy(&self, file: &Path) -> Result<()> {
        let out = self.command(&["classify", &file.display().to_string()])?;
        let mut scores: Vec<f64> = out
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["top_score"].as_f64())
            .collect();
        scores.sort_by(|a, b| b.total_cmp(a));
        let cut = |target: usize| -> Result<f64> {
            (target.max(1)..scores.len())
                .find(|&i| scores[i - 1] > scores[i])
                .map(|i| (scores[i - 1] + scores[i]) / 2.0)
                .context("the scores do not spread")
        };
        let suppress_at = cut(scores.len() / 3)?;
        let review_at =
            cut(scores.iter().position(|s| *s < suppress_at).unwrap_or(0) + scores.len() / 3)?;
        let mut policy = String::from("[policy.thresholds]\n");
        for c in [
            "drugs",
            "weapons",
            "counterfeit",
            "stolen_data",
            "hacking",
            "other_illegal",
        ] {
            policy.push_str(&format!(
                "{c} = {{ review_at = {review_at}, suppress_at = {suppress_at} }}\n"
            ));
        }
        self.append_config(&policy)
    }

    /// Starts `cordon run --role ROLE`, logging to `<role>.log` in the working directory. A
    /// process without the api role serves its metrics and health on a port of its own, see
    /// [`CordonProcess::http`].
    pub fn start(&self, role: &str) -> Result<CordonProcess> {
        self.start_with_env(role, &[])
    }

    /// [`Deployment::start`] with extra environment overrides (`CORDON_SECTION__KEY`).
    pub fn start_with_env(&self, role: &str, env: &[(&str, &str)]) -> Result<CordonProcess> {
        let config = self.config.display().to_string();
        let listen = if role.contains("api") || role == "all" {
            self.api.clone()
        } else {
            format!("127.0.0.1:{}", free_port())
        };
        let mut vars = vec![
            ("CORDON_API__LISTEN".to_string(), listen),
            (
                "CORDON_OPS__LISTEN".to_string(),
                format!("127.0.0.1:{}", free_port()),
            ),
        ];
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let log = self.dir.path().join(format!(
            "{}-{}.log",
            role.replace(',', "-"),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        CordonProcess::start(&["--config", &config, "run", "--role", role], &vars, &log)
    }

    /// Runs a `cordon` command to completion with this deployment's config and returns stdout.
    pub fn command(&self, args: &[&str]) -> Result<String> {
        let output = Command::new(cordon_bin())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .current_dir(repo_root())
            .output()
            .context("running cordon")?;
        if !output.status.success() {
            bail!(
                "cordon {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8(output.stdout)?)
    }

    /// The actions `cordon classify` (offline, same config) gives each JSON line of `file`.
    pub fn expected_actions(
        &self,
        file: &Path,
    ) -> Result<std::collections::HashMap<String, String>> {
        let out = self.command(&["classify", &file.display().to_string()])?;
        out.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l)?;
                Ok((
                    v["id"].as_str().context("id")?.to_string(),
                    v["action"].as_str().context("action")?.to_string(),
                ))
            })
            .collect()
    }

    /// GETs a path of the API as JSON: public paths anonymously, review paths as the admin.
    pub async fn get(&self, path: &str) -> Result<(u16, serde_json::Value)> {
        if !is_public(path) {
            return self.admin().await?.get(path).await;
        }
        let response = reqwest::get(format!("http://{}{path}", self.api)).await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await?))
    }

    /// POSTs JSON to a path of the API: public paths anonymously, review paths as the admin.
    pub async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(u16, serde_json::Value)> {
        if !is_public(path) {
            return self.admin().await?.post(path, body).await;
        }
        let response = http_client()
            .post(format!("http://{}{path}", self.api))
            .json(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await?))
    }

    /// Waits until the API answers `/readyz`.
    pub async fn wait_ready(&self) -> Result<()> {
        eventually(Duration::from_secs(30), "the API to be ready", || async {
            Ok(self
                .get("/readyz")
                .await
                .ok()
                .filter(|(s, _)| *s == 200)
                .map(|_| ()))
        })
        .await
    }

    /// Ids of every item public search returns.
    pub async fn visible_ids(&self) -> Result<std::collections::BTreeSet<String>> {
        let mut ids = std::collections::BTreeSet::new();
        for page in 1.. {
            let (_, body) = self
                .get(&format!("/v1/search?per_page=100&page={page}"))
                .await?;
            let items = body["items"].as_array().context("items")?;
            ids.extend(
                items
                    .iter()
                    .filter_map(|i| i["id"].as_str().map(String::from)),
            );
            if items.len() < 100 {
                break;
            }
        }
        Ok(ids)
    }
}

/// The ids whose expected action is one of `actions`.
pub fn ids_with(
    expected: &std::collections::HashMap<String, String>,
    actions: &[&str],
) -> std::collections::BTreeSet<String> {
    expected
        .iter()
        .filter(|(_, a)| actions.contains(&a.as_str()))
        .map(|(id, _)| id.clone())
        .collect()
}

/// How many review cases exist per (item id, version).
pub async fn cases(db_url: &str) -> Result<std::collections::BTreeMap<(String, i64), i64>> {
    let pool = sqlx::PgPool::connect(db_url).await?;
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT item_id, item_version, count(*) FROM cases GROUP BY item_id, item_version",
    )
    .fetch_all(&pool)
    .await?;
    Ok(rows.into_iter().map(|(i, v, n)| ((i, v), n)).collect())
}

/// Waits up to `timeout` until every id has a verdict for `versions[id]` applied in the index.
pub async fn wait_applied(
    d: &Deployment,
    versions: &std::collections::BTreeMap<String, u64>,
    timeout: Duration,
) -> Result<()> {
    eventually(timeout, "every verdict to be applied", || async {
        for (id, version) in versions {
            let (status, item) = d.get(&format!("/v1/items/{id}")).await?;
            let applied = status == 200
                && item["content"]["version"].as_u64() == Some(*version)
                && item["verdict"]["item_version"].as_u64() == Some(*version);
            if !applied {
                return Ok(None);
            }
        }
        Ok(Some(()))
    })
    .await
}

/// Writes the items `range` built from the sample feed's texts (shifted by `shift`), with ids
/// `load/<n>`, 13 channels, and `version`.
pub fn write_items(
    path: &Path,
    range: std::ops::Range<usize>,
    version: u64,
    shift: usize,
) -> Result<()> {
    let texts: Vec<String> =
        std::fs::read_to_string(repo_root().join("examples/sample-feed.jsonl"))?
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["text"].as_str().map(String::from))
            .filter(|t| !t.contains("missing channel"))
            .collect();
    let mut out = String::new();
    for n in range {
        let item = serde_json::json!({
            "id": format!("load/{n}"),
            "kind": "channel_post",
            "channel": {"id": format!("c{}", n % 13)},
            "text": texts[(n + shift) % texts.len()],
            "published_at": "2026-11-20T10:00:00Z",
            "indexed_at": "2026-11-20T10:00:01Z",
            "version": version,
        });
        out.push_str(&item.to_string());
        out.push('\n');
    }
    std::fs::write(path, out)?;
    Ok(())
}

/// A TCP proxy on a free loopback port in front of a service, that a test can cut (`down`:
/// refuse new connections and drop open ones) and restore (`up`), to simulate an outage of, say,
/// PostgreSQL without stopping the machine's server.
pub struct OutageProxy {
    /// The address clients connect to.
    pub addr: String,
    target: String,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl OutageProxy {
    /// Starts forwarding a free port to `target`.
    pub async fn start(target: &str) -> Result<OutageProxy> {
        let proxy = OutageProxy {
            addr: format!("127.0.0.1:{}", free_port()),
            target: target.to_string(),
            tasks: Default::default(),
        };
        proxy.up().await?;
        Ok(proxy)
    }

    /// Accepts and forwards connections again.
    pub async fn up(&self) -> Result<()> {
        let listener = tokio::net::TcpListener::bind(&self.addr).await?;
        let target = self.target.clone();
        let tasks = std::sync::Arc::clone(&self.tasks);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                let conn = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                if let Ok(mut t) = tasks.lock() {
                    t.push(conn.abort_handle());
                }
            }
        });
        if let Ok(mut t) = self.tasks.lock() {
            t.push(accept.abort_handle());
        }
        Ok(())
    }

    /// Stops accepting and drops every open connection.
    pub fn down(&self) {
        if let Ok(mut t) = self.tasks.lock() {
            for task in t.drain(..) {
                task.abort();
            }
        }
    }
}

impl Drop for OutageProxy {
    fn drop(&mut self) {
        self.down();
    }
}

/// The sum of the samples of a process's `/metrics` (at `http`) whose line starts with `prefix`.
pub async fn metric_sum(http: &str, prefix: &str) -> Result<f64> {
    let text = reqwest::get(format!("http://{http}/metrics"))
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// The offsets an indexer at `http` reports as committed with its index
/// (`cordon_index_committed_offset`), summed per topic.
pub async fn index_offsets(http: &str) -> Result<std::collections::BTreeMap<String, i64>> {
    let text = reqwest::get(format!("http://{}/metrics", http))
        .await?
        .text()
        .await?;
    let mut out = std::collections::BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("cordon_index_committed_offset{"))
    {
        let topic = line
            .split("topic=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .context("topic label")?;
        let value: i64 = line.rsplit(' ').next().context("value")?.parse()?;
        *out.entry(topic.to_string()).or_default() += value;
    }
    Ok(out)
}

/// The worker's stages in `cordon_stage_seconds`.
pub const WORKER_STAGES: [&str; 6] = [
    "decode",
    "versions",
    "featurize",
    "infer",
    "publish",
    "queue",
];
