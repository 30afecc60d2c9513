//! A real headless Chromium for browser tests, driven through WebDriver by a
//! chromedriver this process starts. Both come from Debian's packages
//! (`chromium`, `chromium-driver`; `./dev test` installs them), or from
//! `TODO_CHROMIUM` and `TODO_CHROMEDRIVER`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use fantoccini::{Client, ClientBuilder, Locator};
use tokio::process::{Child, Command};

pub use fantoccini::elements::Element;
pub use fantoccini::Locator as By;

/// A browser session; the browser and its driver stop when dropped.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    profile: PathBuf,
}

fn binary(var: &str, default: &str) -> anyhow::Result<String> {
    let path = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    anyhow::ensure!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: `./dev test` installs Debian's chromium and chromium-driver (or set {var})"
    );
    Ok(path)
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile and a
    /// 1400×1000 window. Chromium's own network features are off: this
    /// machine reaches nothing but localhost.
    pub async fn start() -> anyhow::Result<Self> {
        let chromium = binary("TODO_CHROMIUM", "/usr/bin/chromium")?;
        let chromedriver = binary("TODO_CHROMEDRIVER", "/usr/bin/chromedriver")?;
        let port = crate::process::closed_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {chromedriver}"))?;
        let profile = std::env::temp_dir().join(format!("todo-chromium-{}", crate::short_id()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("no WebDriver session from {chromedriver} on {url} in 30 s")
                    });
                }
            }
        };
        Ok(Self {
            client,
            driver,
            profile,
        })
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.client
            .goto(url)
            .await
            .with_context(|| format!("opening {url}"))
    }

    /// The first element matching `css`, waiting up to `within` for it.
    pub async fn wait_for(&self, css: &str, within: Duration) -> anyhow::Result<Element> {
        self.client
            .wait()
            .at_most(within)
            .every(Duration::from_millis(50))
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("no `{css}` within {within:?}"))
    }

    /// Every element matching `css` now.
    pub async fn all(&self, css: &str) -> anyhow::Result<Vec<Element>> {
        Ok(self.client.find_all(Locator::Css(css)).await?)
    }

    /// The text of every element matching `css` now.
    pub async fn texts(&self, css: &str) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in self.all(css).await? {
            out.push(e.text().await?);
        }
        Ok(out)
    }

    /// Saves a PNG of the window as `target/console-screenshots/{name}.png`
    /// and returns its path.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, self.client.screenshot().await?)?;
        Ok(path)
    }

    /// Ends the session and stops the browser.
    pub async fn close(mut self) -> anyhow::Result<()> {
        self.client.clone().close().await?;
        let _ = self.driver.kill().await;
        let _ = std::fs::remove_dir_all(&self.profile);
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.start_kill();
    }
}
