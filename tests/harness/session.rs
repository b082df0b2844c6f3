//! HTTP clients and signed-in sessions, signed reports and appeals.

use anyhow::Result;
use std::time::Duration;

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

/// `<key id>:hex(HMAC-SHA256(secret, message))`, as the platform's backend signs.
pub fn sign(key_id: &str, secret: &str, message: &str) -> String {
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(message.as_bytes());
    format!("{key_id}:{}", hex::encode(mac.finalize().into_bytes()))
}

/// The signature of a report of `item_id` by `reporter` with the key `key_id` = `secret`.
pub fn report_signature(key_id: &str, secret: &str, item_id: &str, reporter: &str) -> String {
    sign(
        key_id,
        secret,
        &format!("cordon-report-v1\n{item_id}\n{reporter}"),
    )
}

/// The platform's signature for reading report `id`'s status (`GET /v1/reports/{id}`), with
/// the test platform key.
pub fn report_status_signature(id: i64) -> String {
    status_signature(TEST_REPORT_KEY_ID, TEST_REPORT_KEY, id)
}

/// The signature for reading report `id`'s status with the key `key_id` = `secret`.
pub fn status_signature(key_id: &str, secret: &str, id: i64) -> String {
    sign(key_id, secret, &format!("cordon-report-status-v1\n{id}"))
}

/// An appeal of statement `statement_id` for `channel_id` by `appellant`, signed with the test
/// platform key: `hex(HMAC-SHA256(key, "cordon-appeal-v1\n" + statement_id + "\n" + channel_id
/// + "\n" + appellant))`.
pub fn signed_appeal(
    statement_id: i64,
    channel_id: &str,
    appellant: &str,
    grounds: &str,
) -> serde_json::Value {
    serde_json::json!({
        "statement_id": statement_id,
        "channel_id": channel_id,
        "appellant": appellant,
        "grounds": grounds,
        "signature": sign(
            TEST_REPORT_KEY_ID,
            TEST_REPORT_KEY,
            &format!("cordon-appeal-v1\n{statement_id}\n{channel_id}\n{appellant}"),
        ),
    })
}

/// The test platform key's signature for reading appeal `id`'s outcome (`GET /v1/appeals/{id}`).
pub fn appeal_status_signature(id: i64) -> String {
    sign(
        TEST_REPORT_KEY_ID,
        TEST_REPORT_KEY,
        &format!("cordon-appeal-status-v1\n{id}"),
    )
}

/// Paths anyone may call without signing in.
pub(crate) fn is_public(path: &str) -> bool {
    ["/v1/search", "/v1/reports", "/readyz", "/healthz"]
        .iter()
        .any(|p| path.starts_with(p))
}

/// A signed-in console account: sends its session cookie and CSRF token with every request.
#[derive(Debug, Clone)]
pub struct Session {
    pub(crate) api: String,
    pub(crate) cookie: String,
    /// The session's CSRF token.
    pub csrf: String,
    pub(crate) client: reqwest::Client,
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
