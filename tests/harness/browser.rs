//! A headless Chromium driven through chromedriver (WebDriver), for console tests.

use anyhow::{Context, Result};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{eventually, free_port, wait_for_port};

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

    /// Signs in to the console at `base` (`http://<api>`) as `username` with the test password
    /// through the login form, and waits for the queue.
    pub async fn sign_in(&self, base: &str, username: &str) -> Result<()> {
        use fantoccini::Locator;
        self.client.goto(&format!("{base}/console/login")).await?;
        self.client
            .wait()
            .for_element(Locator::Id("username"))
            .await?
            .send_keys(username)
            .await
            .context("typing the user name")?;
        self.client
            .find(Locator::Id("password"))
            .await?
            .send_keys(crate::TEST_PASSWORD)
            .await
            .context("typing the password")?;
        self.click("#sign-in").await?;
        eventually(Duration::from_secs(15), "the queue page", || async {
            let path = self.client.current_url().await?.path().to_string();
            Ok((path == "/console").then_some(()))
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
