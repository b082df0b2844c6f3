//! A whole deployment for a test: broker, database, index, config file, processes.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::session::is_public;
use crate::{
    cordon_bin, eventually, free_port, http_client, repo_root, run_with_input, succeeded, Broker,
    CordonProcess, Session, TestDb, LOCAL_CONFIG, TEST_PASSWORD, TEST_REPORT_KEY,
    TEST_REPORT_KEY_ID,
};

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

impl Deployment {
    /// Starts a broker and creates a database, and writes a config whose `extra` TOML is appended
    /// (e.g. policy thresholds or worker settings). Tests page through whole result sets and sign many accounts in from one address, so the
    /// config lifts the search depth and the per-client search and sign-in limits; a test of a
    /// limit sets it again (an environment override wins).
    ///
    /// The context stage is off, as by default (the fast model decides every item); a process
    /// started with `CORDON_CONTEXT__ENABLED=true` turns it on.
    pub async fn new(extra: &str) -> Result<Deployment> {
        Deployment::on(Broker::start()?, extra).await
    }

    /// [`Deployment::new`] on a broker the test started (with TLS or authentication, say;
    /// `extra` then carries the matching `[kafka.security]`).
    pub async fn on(broker: Broker, extra: &str) -> Result<Deployment> {
        let db = TestDb::create().await?;
        let dir = tempfile::tempdir()?;
        let api = format!("127.0.0.1:{}", free_port());
        let config = dir.path().join("cordon.toml");
        std::fs::write(
            &config,
            format!(
                "{LOCAL_CONFIG}brokers = \"{}\"\n{}[database]\nurl = \"{}\"\n[index]\ndir = \"{}\"\ncommit_interval_ms = 100\n\
                 [api]\nlisten = \"{api}\"\noutbox_interval_ms = 100\nmax_search_depth = 1000000\n\
                 searches_per_second = 1000000\nsign_ins_per_minute = 1000000\n\
                 [reports.platform_keys]\n{TEST_REPORT_KEY_ID} = \"{TEST_REPORT_KEY}\"\n\
                 [log]\nfilter = \"info,cordon=debug\"\n{extra}\n",
                broker.addr(),
                // The mock broker takes no admin requests; it made the topics.
                if broker.mock { "create_topics = false\n" } else { "" },
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
        let output = run_with_input(
            Command::new(cordon_bin())
                .arg("--config")
                .arg(&self.config)
                .args(["user", "add", username, "--role", role]),
            &format!("{TEST_PASSWORD}\n"),
        )?;
        succeeded(&format!("cordon user add {username}"), output)?;
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
        Ok(String::from_utf8(
            succeeded(&format!("cordon {args:?}"), output)?.stdout,
        )?)
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
        let last = std::sync::Mutex::new(None);
        eventually(Duration::from_secs(30), "the API to be ready", || async {
            let answer = self.get("/readyz").await.ok();
            let ready = answer.as_ref().is_some_and(|(s, _)| *s == 200);
            *last.lock().unwrap_or_else(|e| e.into_inner()) = answer;
            Ok(ready.then_some(()))
        })
        .await
        .with_context(|| {
            format!(
                "the last /readyz answer: {:?}",
                last.lock().map(|l| l.clone())
            )
        })
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

/// A deployment for the sample feed, with thresholds that spread its items over all three
/// actions.
pub struct SampleFeed {
    /// The deployment (nothing started yet).
    pub d: Deployment,
    /// `examples/sample-feed.jsonl`.
    pub feed: PathBuf,
    /// The action `cordon classify` expects for each item that reaches the pipeline (the
    /// malformed line never does).
    pub expected: std::collections::HashMap<String, String>,
    /// Each of those items' version.
    pub versions: std::collections::BTreeMap<String, u64>,
}

impl SampleFeed {
    /// Prepares the deployment and reads what the feed should do.
    pub async fn deploy() -> Result<SampleFeed> {
        let d = Deployment::new("").await?;
        let feed = repo_root().join("examples/sample-feed.jsonl");
        d.spread_policy(&feed)?;
        let mut expected = d.expected_actions(&feed)?;
        expected.retain(|id, _| !id.ends_with("broken"));
        let versions = feed_versions(&feed)?
            .into_iter()
            .filter(|(id, _)| expected.contains_key(id))
            .collect();
        Ok(SampleFeed {
            d,
            feed,
            expected,
            versions,
        })
    }

    /// Starts a worker and a search process (indexer and API, with `api_env`), produces the
    /// feed and waits until the index applied all of it: `[worker, search]`.
    pub async fn run(&self, api_env: &[(&str, &str)]) -> Result<[CordonProcess; 2]> {
        let worker = self.d.start("worker")?;
        let search = self.d.start_with_env("indexer,api", api_env)?;
        self.d.wait_ready().await?;
        let feed = self.feed.display().to_string();
        self.d.command(&["produce", "--no-validate", &feed])?;
        wait_applied(&self.d, &self.versions, Duration::from_secs(120))
            .await
            .with_context(|| search.log())?;
        Ok([worker, search])
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

/// The version of every item in a JSON-lines feed, by id.
pub fn feed_versions(file: &Path) -> Result<std::collections::BTreeMap<String, u64>> {
    let mut out = std::collections::BTreeMap::new();
    for line in std::fs::read_to_string(file)?.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        if let (Some(id), Some(version)) = (v["id"].as_str(), v["version"].as_u64()) {
            out.insert(id.to_string(), version);
        }
    }
    Ok(out)
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
