//! Headless Chromium behind chromedriver, driven through WebDriver, for
//! the tests of the agent desktop (shared by the test files that `mod
//! browser;` it).
// Not every test file that shares this module uses every helper.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use baton_tests::Service;
use baton_tests::desk::TenantDesk;
use fantoccini::{Client, ClientBuilder, Locator};
use tempfile::TempDir;

/// Every wait of the browser is bounded by this.
pub const WAIT: Duration = Duration::from_secs(30);
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Headless Chromium behind chromedriver on a free port; both end with
/// the test.
pub struct Browser {
    pub client: Client,
    _driver: tokio::process::Child,
    _profile: TempDir,
}

impl Browser {
    pub async fn start(log_dir: &Path) -> anyhow::Result<Browser> {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            if !Path::new(binary).exists() {
                bail!(
                    "{binary} is missing: install chromium and chromium-driver (tests/apt-packages.txt)"
                );
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::fs::File::create(log_dir.join("chromedriver.log"))?;
        let driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()?;
        let profile = tempfile::tempdir()?;
        let capabilities = serde_json::json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }
        });
        let capabilities = match capabilities {
            serde_json::Value::Object(map) => map,
            _ => bail!("capabilities must be an object"),
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + WAIT;
        let client = loop {
            let attempt =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(capabilities.clone())
                    .connect(&url)
                    .await;
            match attempt {
                Ok(client) => break client,
                Err(error) if tokio::time::Instant::now() > deadline => {
                    bail!("chromedriver did not start a session: {error}")
                }
                // chromedriver is still starting.
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        Ok(Browser {
            client,
            _driver: driver,
            _profile: profile,
        })
    }

    /// Starts a browser (the driver's log in `log_dir`), runs `flow` in
    /// it and closes it; when the flow fails, first saves a screenshot
    /// `failure_png` and prints the logs of `services`, to show where it
    /// stopped.
    pub async fn run(
        log_dir: &Path,
        failure_png: &str,
        services: &[&Service],
        flow: impl AsyncFnOnce(&Browser) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let browser = Browser::start(log_dir).await?;
        let result = flow(&browser).await;
        if result.is_err() {
            let _ = browser.screenshot(failure_png).await;
            for service in services {
                eprintln!("{} log:\n{}", service.name, service.logs());
            }
        }
        browser.client.clone().close().await?;
        result
    }

    /// As [`Browser::run`], at the tenants' `desk`: the driver's log in its
    /// directory, its processes' logs printed when the flow fails.
    pub async fn run_at(
        desk: &TenantDesk,
        failure_png: &str,
        flow: impl AsyncFnOnce(&Browser) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        Self::run(desk.dir.path(), failure_png, &desk.services(), flow).await
    }

    /// Signs `name` in with `password` at the desktop page at `base` and
    /// waits until it is ready for the next handoff.
    pub async fn sign_in(&self, base: &str, name: &str, password: &str) -> anyhow::Result<()> {
        self.client.goto(base).await?;
        self.fill("#agent-id", name).await?;
        self.fill("#password", password).await?;
        self.click("#sign-in").await?;
        self.wait_text("#idle", "Ready for the next handoff")
            .await?;
        Ok(())
    }

    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        let element = self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("no element {css}"))?;
        Ok(element.text().await?)
    }

    /// Waits until the element's text contains `needle`.
    pub async fn wait_text(&self, css: &str, needle: &str) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let text = self.text(css).await.unwrap_or_default();
            if text.contains(needle) {
                return Ok(text);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{css} never contained {needle:?}; last text {text:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn fill(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let input = self.client.find(Locator::Css(css)).await?;
        input.clear().await?;
        input.send_keys(text).await?;
        Ok(())
    }

    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await?
            .click()
            .await?;
        Ok(())
    }

    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let png = self.client.screenshot().await?;
        let path = baton_tests::artifacts_dir().join(name);
        std::fs::write(&path, png)?;
        Ok(path)
    }
}
