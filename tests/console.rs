//! The moderator console and the review API's access control, end to end: a real broker, the
//! real PostgreSQL, `cordon` processes and a real headless Chromium.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result};
use cordon_e2e::{
    eventually, Browser, CordonProcess, Deployment, Session, REVIEW_EVERYTHING, TEST_PASSWORD,
};
use fantoccini::Locator;
use serde_json::{json, Value};

/// Decisions wait two seconds for an undo.
const UNDO: &str = "[console]\nundo_secs = 2\n";

/// Real XSS payloads, in every field the console shows.
const PAYLOADS: [&str; 6] = [
    "<script>window.__xss=1</script>",
    "<img src=x onerror=\"window.__xss=1\">",
    "\"><svg onload=window.__xss=1>",
    "</pre><iframe srcdoc='<script>parent.__xss=1</script>'></iframe>",
    "<a href=\"javascript:window.__xss=1\">click</a>",
    "{{constructor.constructor('window.__xss=1')()}}",
];

/// A word too long for any line, and characters that reverse or hide text.
const LONG_WORD_CHARS: usize = 3000;
const DECEIVING: &str = "abc\u{202E}fedcba\u{200B}zero-width";

/// A stand-in for a content author's media host: serves a PNG and keeps every request's headers,
/// so the test sees when, and with what, anyone fetched the media.
struct MediaHost {
    addr: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl MediaHost {
    async fn start() -> Result<MediaHost> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&requests);
        tokio::spawn(async move {
            // A 1x1 PNG.
            const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\xff\xff?\0\x05\xfe\x02\xfe\xa7\x35\x81\x84\0\0\0\0IEND\xaeB`\x82";
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = vec![0u8; 8192];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                if let Ok(mut r) = seen.lock() {
                    r.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    PNG.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(PNG).await;
            }
        });
        Ok(MediaHost { addr, requests })
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn hostile_item(n: usize, media: &str) -> Value {
    json!({
        "id": format!("xss:{n}"),
        "kind": "listing",
        "channel": {"id": "xss:shop", "username": PAYLOADS[1], "title": PAYLOADS[2], "subscribers": 5000},
        "title": PAYLOADS[0],
        "text": format!(
            "buy cocaine mephedrone fast delivery {n}\n{}\n{DECEIVING}\n{}",
            PAYLOADS.join("\n"),
            "w".repeat(LONG_WORD_CHARS)
        ),
        "lang": "en",
        "url": "javascript:window.__xss=1",
        "media": [{"kind": "image", "url": media}],
        "published_at": "2026-11-01T10:00:00Z",
        "indexed_at": "2026-11-01T10:00:01Z",
        "version": 1
    })
}

/// Starts a deployment (every role in one process) and feeds it `items` hostile items.
async fn queued_deployment(items: usize, media: &str) -> Result<(Deployment, CordonProcess)> {
    // The media host runs on this machine: let the proxy reach it.
    let d = Deployment::new(&format!(
        "{REVIEW_EVERYTHING}{UNDO}[media]\nallow_private_addresses = true\n"
    ))
    .await?;
    let cordon = d.start("all")?;
    d.wait_ready().await?;
    let feed = d.dir.path().join("hostile.jsonl");
    let lines: Vec<String> = (1..=items)
        .map(|n| hostile_item(n, media).to_string())
        .collect();
    std::fs::write(&feed, lines.join("\n") + "\n")?;
    d.command(&["produce", &feed.display().to_string()])?;
    Ok((d, cordon))
}

async fn wait_cases(d: &Deployment, n: usize) -> Result<Vec<Value>> {
    eventually(Duration::from_secs(60), "cases to be queued", || async {
        let (_, body) = d.get("/v1/cases?state=open").await?;
        let cases = body["cases"].as_array().cloned().unwrap_or_default();
        Ok((cases.len() == n).then_some(cases))
    })
    .await
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread")]
async fn review_api_needs_a_session_a_role_and_the_csrf_token() -> Result<()> {
    let (d, _cordon) = queued_deployment(2, "https://media.invalid/p.jpg").await?;
    let cases = wait_cases(&d, 2).await?;
    let base = format!("http://{}", d.api);
    let http = no_redirects();

    // Anonymous: public search works, review endpoints and pages do not.
    assert_eq!(
        http.get(format!("{base}/v1/search")).send().await?.status(),
        200
    );
    assert_eq!(
        http.get(format!("{base}/v1/cases")).send().await?.status(),
        401
    );
    assert_eq!(
        http.get(format!("{base}/v1/items/xss:1"))
            .send()
            .await?
            .status(),
        401
    );
    let page = http.get(format!("{base}/console/cases/1")).send().await?;
    assert_eq!(page.status(), 303);
    assert_eq!(
        page.headers()["location"],
        "/console/login?next=/console/cases/1"
    );
    let login = http.get(format!("{base}/console/login")).send().await?;
    let csp = login.headers()["content-security-policy"].to_str()?;
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));

    // Wrong passwords are refused; a moderator signs in.
    d.add_user("mia", "moderator")?;
    assert!(d.sign_in("mia", "not the password").await.is_err());
    let mia = d.sign_in("mia", TEST_PASSWORD).await?;

    // A state change without the CSRF token, or from another site, is refused.
    let claim = format!("{base}/v1/cases/claim");
    let cookie = mia_cookie(&d).await?;
    let bare = http
        .post(&claim)
        .header("cookie", &cookie)
        .json(&json!({}))
        .send()
        .await?;
    assert_eq!(bare.status(), 403);
    let wrong = http
        .post(&claim)
        .header("cookie", &cookie)
        .header("x-csrf-token", "0".repeat(64))
        .json(&json!({}))
        .send()
        .await?;
    assert_eq!(wrong.status(), 403);
    let cross = http
        .post(&claim)
        .header("cookie", &cookie)
        .header("x-csrf-token", &mia.csrf)
        .header("origin", "https://evil.example")
        .json(&json!({}))
        .send()
        .await?;
    assert_eq!(cross.status(), 403);

    // Identity comes from the session: a body naming someone else is refused outright.
    let (status, claimed) = mia.post("/v1/cases/claim", &json!({})).await?;
    assert_eq!(status, 200, "{claimed}");
    let case_id = claimed["case"]["id"].as_i64().context("case id")?;
    assert_eq!(claimed["case"]["claimed_by"], "mia");
    let (status, _) = mia
        .post(
            &format!("/v1/cases/{case_id}/decision"),
            &json!({"action": "suppress", "reason": "illegal_drugs", "moderator": "someone-else"}),
        )
        .await?;
    assert_eq!(status, 422);

    // Moderators do not manage accounts; admins do, and the new account can sign in.
    assert_eq!(mia.get("/v1/accounts").await?.0, 403);
    let admin = d.admin().await?;
    let (status, created) = admin
        .post(
            "/v1/accounts",
            &json!({"username": "sam", "role": "senior", "password": TEST_PASSWORD}),
        )
        .await?;
    assert_eq!(status, 200, "{created}");
    let sam = d.sign_in("sam", TEST_PASSWORD).await?;

    // Only seniors see escalated cases.
    let other = cases
        .iter()
        .filter_map(|c| c["id"].as_i64())
        .find(|id| *id != case_id)
        .context("second case")?;
    let (status, _) = mia
        .post(
            &format!("/v1/cases/{case_id}/escalate"),
            &json!({"note": "a senior should look"}),
        )
        .await?;
    assert_eq!(status, 200);
    assert_eq!(mia.get(&format!("/v1/cases/{case_id}")).await?.0, 403);
    assert_eq!(sam.get(&format!("/v1/cases/{case_id}")).await?.0, 200);
    let (_, listed) = mia.get("/v1/cases").await?;
    let ids: BTreeSet<i64> = listed["cases"]
        .as_array()
        .context("cases")?
        .iter()
        .filter_map(|c| c["id"].as_i64())
        .collect();
    assert_eq!(ids, BTreeSet::from([other]));

    // The senior decides; the audit log names each account that acted.
    let (status, decision) = sam
        .post(
            &format!("/v1/cases/{case_id}/decision"),
            &json!({"action": "suppress", "reason": "illegal_drugs"}),
        )
        .await?;
    assert_eq!(status, 200, "{decision}");
    assert_eq!(decision["moderator"], "sam");
    // The case was escalated: its trail is the seniors' to read, not mia's.
    let (_, hidden) = mia.get(&format!("/v1/audit?case_id={case_id}")).await?;
    assert_eq!(hidden["entries"], json!([]), "{hidden}");
    let (_, log) = sam.get(&format!("/v1/audit?case_id={case_id}")).await?;
    let actions: Vec<(String, String)> = log["entries"]
        .as_array()
        .context("entries")?
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap_or("").into(),
                e["action"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    for expected in [
        ("mia", "claim"),
        ("mia", "escalate"),
        ("sam", "decide:suppress"),
    ] {
        assert!(
            actions.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} missing from {actions:?}"
        );
    }

    // Disabling an account ends its sessions at once; signing out ends one's own.
    let (status, _) = admin
        .send(
            reqwest::Method::PATCH,
            "/v1/accounts/mia",
            Some(&json!({"disabled": true})),
        )
        .await?;
    assert_eq!(status, 200);
    assert_eq!(mia.get("/v1/session").await?.0, 401);
    assert_eq!(
        sam.send(reqwest::Method::DELETE, "/v1/session", None)
            .await?
            .0,
        200
    );
    assert_eq!(sam.get("/v1/cases").await?.0, 401);
    Ok(())
}

/// The raw session cookie of a fresh sign-in as `mia`.
async fn mia_cookie(d: &Deployment) -> Result<String> {
    let response = reqwest::Client::new()
        .post(format!("http://{}/v1/session", d.api))
        .json(&json!({"username": "mia", "password": TEST_PASSWORD}))
        .send()
        .await?;
    let cookie = response.headers()["set-cookie"].to_str()?.to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(
            cookie.contains(attribute),
            "{attribute} missing in {cookie}"
        );
    }
    Ok(cookie.split(';').next().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn single_sign_on_through_a_trusted_proxy_header() -> Result<()> {
    let d = Deployment::new("[auth]\nmode = \"proxy\"\nproxy_header = \"x-remote-user\"").await?;
    let _cordon = d.start("all")?;
    d.wait_ready().await?;
    d.add_user("mia", "senior")?;
    let http = no_redirects();
    let base = format!("http://{}", d.api);
    let as_user = |user: &str| {
        http.get(format!("{base}/v1/session"))
            .header("x-remote-user", user)
            .send()
    };
    let response = as_user("mia").await?;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("set-cookie"));
    let me: Value = response.json().await?;
    assert_eq!(
        (me["username"].as_str(), me["role"].as_str()),
        (Some("mia"), Some("senior"))
    );
    // Unknown users get nothing; passwords are off in proxy mode.
    assert_eq!(as_user("mallory").await?.status(), 401);
    let password = http
        .post(format!("{base}/v1/session"))
        .json(&json!({"username": "mia", "password": TEST_PASSWORD}))
        .send()
        .await?;
    assert_eq!(password.status(), 400);
    Ok(())
}

async fn wait_for_path(b: &Browser, prefix: &str) -> Result<String> {
    let path = eventually(
        Duration::from_secs(15),
        &format!("the browser at {prefix}"),
        || async {
            let url = b.client.current_url().await?;
            Ok(url
                .path()
                .starts_with(prefix)
                .then(|| url.path().to_string()))
        },
    )
    .await?;
    b.loaded().await?;
    Ok(path)
}

/// The case id of the case page the browser shows.
async fn shown_case(b: &Browser) -> Result<i64> {
    let path = wait_for_path(b, "/console/cases/").await?;
    path.rsplit('/')
        .next()
        .unwrap_or_default()
        .parse()
        .context("case id in the path")
}

async fn case_state(admin: &Session, id: i64) -> Result<String> {
    let (_, case) = admin.get(&format!("/v1/cases/{id}")).await?;
    Ok(case["state"].as_str().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn console_in_a_real_browser() -> Result<()> {
    let media = MediaHost::start().await?;
    let media_url = format!("http://{}/p.png", media.addr);
    let (d, _cordon) = queued_deployment(4, &media_url).await?;
    wait_cases(&d, 4).await?;
    d.add_user("mia", "moderator")?;
    let admin = d.admin().await?;
    let b = Browser::start().await?;
    let base = format!("http://{}", d.api);

    // Signing in: the console sends an anonymous visitor to the login page and back.
    b.client.goto(&format!("{base}/console")).await?;
    wait_for_path(&b, "/console/login").await?;
    // The redirect has landed when the form is there.
    b.client
        .wait()
        .for_element(Locator::Id("username"))
        .await?
        .send_keys("mia")
        .await
        .context("typing the user name")?;
    b.client
        .find(Locator::Id("password"))
        .await?
        .send_keys(TEST_PASSWORD)
        .await
        .context("typing the password")?;
    b.click("#sign-in").await?;
    eventually(Duration::from_secs(15), "the queue page", || async {
        Ok(b.client
            .current_url()
            .await?
            .path()
            .eq("/console")
            .then_some(()))
    })
    .await?;
    assert!(b.text("#queue-total").await?.starts_with("4 unresolved"));
    let language = b.text("select[name=language]").await?;
    assert!(language.contains("en (4)"), "{language}");
    // Filtering with the form (blank age fields included) keeps the matching cases.
    b.choose("select[name=language]", "en").await?;
    b.click("form.filters button").await?;
    eventually(Duration::from_secs(15), "the filtered queue", || async {
        let url = b.client.current_url().await?;
        Ok(url
            .query()
            .is_some_and(|q| q.contains("language=en"))
            .then_some(()))
    })
    .await?;
    let rows = b
        .eval("return document.querySelectorAll('table.cases tbody tr').length")
        .await?;
    assert_eq!(rows, json!(4));

    // `n` claims the next case and opens it.
    b.press('n').await?;
    let first = shown_case(&b).await?;
    b.client
        .wait()
        .for_element(Locator::Css("pre.text"))
        .await?;

    // Hostile content is shown as text and nothing of it runs or becomes markup.
    assert_eq!(
        b.eval("return typeof window.__xss").await?,
        json!("undefined")
    );
    let text = b.text("pre.text").await?;
    for payload in PAYLOADS {
        assert!(
            text.contains(payload),
            "payload not shown literally: {payload}"
        );
    }
    assert_eq!(b.text("h2.item-title").await?, PAYLOADS[0]);
    let injected = b
        .eval(
            "return document.querySelectorAll('svg, iframe, img:not(.blurred):not(.revealed), \
             [onerror], [onload], a[href^=\"javascript\"]').length \
             + document.querySelectorAll('script').length - 1",
        )
        .await?;
    assert_eq!(injected, json!(0), "content turned into markup");
    // Text that would deceive is isolated and shows its invisible characters; nothing, however
    // long, widens the page past the window or pushes the decision panel off it.
    assert!(b
        .eval("return document.querySelectorAll('bdi span.invisible').length")
        .await?
        .as_u64()
        .is_some_and(|n| n >= 2));
    let layout = b
        .eval(
            "const d = document.querySelector('section.decide').getBoundingClientRect(); \
             return [document.documentElement.scrollWidth, window.innerWidth, d.right]",
        )
        .await?;
    let (width, window, panel) = (layout[0].as_f64(), layout[1].as_f64(), layout[2].as_f64());
    assert!(
        width <= window && panel <= window,
        "page {width:?}, window {window:?}, panel {panel:?}"
    );
    // Media load only when the moderator asks, and then only through Cordon's proxy: the
    // author's host sees Cordon, never the moderator's browser, cookie or address.
    assert_eq!(
        b.eval("return document.querySelectorAll('div.media img').length")
            .await?,
        json!(0)
    );
    assert!(
        media.requests().is_empty(),
        "media fetched before anyone asked"
    );
    b.click("button.load-media").await?;
    eventually(Duration::from_secs(15), "the image to load through the proxy", || async {
        Ok(b.eval("const i = document.querySelector('div.media img'); return !!i && i.complete && i.naturalWidth > 0")
            .await?
            .as_bool()
            .unwrap_or(false)
            .then_some(()))
    })
    .await?;
    let fetched = media.requests();
    assert_eq!(fetched.len(), 1, "{fetched:?}");
    let request = fetched[0].to_ascii_lowercase();
    assert!(
        !request.contains("cookie") && !request.contains("referer") && !request.contains("chrome"),
        "{request}"
    );
    assert!(request.contains("cordon-media-proxy"), "{request}");
    // Blurred until clicked.
    let filter = "return getComputedStyle(document.querySelector('div.media img')).filter";
    assert!(b
        .eval(filter)
        .await?
        .as_str()
        .unwrap_or_default()
        .contains("blur"));
    b.click("div.media img").await?;
    assert_eq!(b.eval(filter).await?, json!("none"));

    // `s` suppresses after the undo window; the item leaves public search; the audit shows it.
    let (_, case) = admin.get(&format!("/v1/cases/{first}")).await?;
    let item = case["item_id"].as_str().context("item id")?.to_string();
    assert!(d.visible_ids().await?.contains(&item));
    b.press('s').await?;
    assert!(b.text("#status").await?.contains("press u to undo"));
    eventually(
        Duration::from_secs(20),
        "the case to be resolved",
        || async { Ok((case_state(admin, first).await? == "resolved").then_some(())) },
    )
    .await?;
    eventually(
        Duration::from_secs(20),
        "the item to leave public search",
        || async { Ok((!d.visible_ids().await?.contains(&item)).then_some(())) },
    )
    .await?;
    b.client
        .goto(&format!("{base}/console/audit?case_id={first}"))
        .await?;
    let audit = b.text("table.audit").await?;
    assert!(
        audit.contains("mia") && audit.contains("decide:suppress"),
        "{audit}"
    );

    // `u` within the undo window: nothing is sent.
    b.client.goto(&format!("{base}/console")).await?;
    b.press('n').await?;
    let second = shown_case(&b).await?;
    assert_ne!(second, first);
    b.client
        .wait()
        .for_element(Locator::Css("pre.text"))
        .await?;
    b.press('r').await?;
    b.press('u').await?;
    assert!(b.text("#status").await?.starts_with("Undone"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(case_state(admin, second).await?, "claimed");
    let (_, history) = admin
        .get(&format!("/v1/items/{}", case_id_item(admin, second).await?))
        .await?;
    assert_eq!(history["decisions"].as_array().map(Vec::len), Some(0));

    // Bulk: select every open case on the queue page and restore them.
    b.client.goto(&format!("{base}/console?state=open")).await?;
    b.click("#select-all").await?;
    b.choose("form#bulk select[name=action]", "restore").await?;
    b.click("form#bulk button[type=submit]").await?;
    eventually(Duration::from_secs(15), "the bulk restore", || async {
        let (_, open) = admin.get("/v1/cases?state=open").await?;
        Ok(open["cases"]
            .as_array()
            .is_some_and(|c| c.is_empty())
            .then_some(()))
    })
    .await?;

    // The stats page shows the queue.
    b.client.goto(&format!("{base}/console/stats")).await?;
    assert_eq!(b.text("#open-cases").await?, "1");
    b.close().await?;
    Ok(())
}

async fn case_id_item(admin: &Session, case_id: i64) -> Result<String> {
    let (_, case) = admin.get(&format!("/v1/cases/{case_id}")).await?;
    Ok(case["item_id"].as_str().context("item id")?.to_string())
}
