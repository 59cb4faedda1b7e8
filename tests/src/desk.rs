//! The queue connector's agent desktop driven outside the browser, as its
//! page drives it: a session cookie from signing in, the CSRF token sent
//! with every change, and the views of the server-sent event streams
//! (`/api/agent/events`, `/api/supervisor/events`).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A failure guard for each wait, never a measured time.
pub const WAIT: Duration = Duration::from_secs(30);

/// One signed-in desktop: what the page holds after signing in.
pub struct Desk {
    http: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

impl Desk {
    /// Signs `name` in at the desktop served at `base` (`http://host:port`).
    pub async fn sign_in(base: &str, name: &str, password: &str) -> anyhow::Result<Desk> {
        let http = reqwest::Client::builder().no_proxy().build()?;
        let response = http
            .post(format!("{base}/api/sessions"))
            .json(&json!({ "name": name, "password": password }))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("sign-in of {name}: {}", response.status());
        }
        let cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .context("a session cookie")?
            .to_owned();
        let body: Value = response.json().await?;
        assert!(
            !body.to_string().contains(&cookie),
            "the session id is never in the body"
        );
        let csrf = body["csrf_token"]
            .as_str()
            .context("a CSRF token")?
            .to_owned();
        Ok(Desk {
            http,
            base: base.to_owned(),
            cookie,
            csrf,
        })
    }

    /// A change as the page sends it, with its CSRF token.
    pub async fn change(
        &self,
        method: Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<StatusCode> {
        self.send_change(method, path, body, true).await
    }

    /// A change with the session cookie but without the CSRF token, as a
    /// forged cross-site request would send it.
    pub async fn change_without_csrf(
        &self,
        method: Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<StatusCode> {
        self.send_change(method, path, body, false).await
    }

    async fn send_change(
        &self,
        method: Method,
        path: &str,
        body: Value,
        csrf: bool,
    ) -> anyhow::Result<StatusCode> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .json(&body);
        if csrf {
            request = request.header("x-csrf-token", &self.csrf);
        }
        Ok(request.send().await?.status())
    }

    /// Sets the agent's state to `available`; fails unless it is accepted.
    pub async fn available(&self) -> anyhow::Result<()> {
        let status = self
            .change(
                Method::PUT,
                "/api/agent/state",
                json!({ "state": "available" }),
            )
            .await?;
        if !status.is_success() {
            bail!("available: {status}");
        }
        Ok(())
    }

    /// `GET path`: its status and, when it succeeded, its JSON body.
    pub async fn read(&self, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await?;
        let status = response.status();
        let body = if status.is_success() {
            response.json().await?
        } else {
            Value::Null
        };
        Ok((status, body))
    }

    /// Opens the event stream at `path` with this session, or the status
    /// that refused it.
    pub async fn views(&self, path: &str) -> anyhow::Result<Result<Views, StatusCode>> {
        Views::open(
            &self.http,
            &format!("{}{path}", self.base),
            Some(&self.cookie),
        )
        .await
    }

    /// The first view of the event stream at `path`, or the status that
    /// refused it.
    pub async fn first_view(&self, path: &str) -> anyhow::Result<Result<Value, StatusCode>> {
        match self.views(path).await? {
            Ok(mut views) => Ok(Ok(views.until(|_| true).await?)),
            Err(status) => Ok(Err(status)),
        }
    }

    /// Reads views of the event stream at `path` until one satisfies
    /// `wanted` (bounded by [`WAIT`]); that view.
    pub async fn view_until(
        &self,
        path: &str,
        wanted: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let mut views = self
            .views(path)
            .await?
            .map_err(|status| anyhow::anyhow!("{path} refused: {status}"))?;
        views.until(wanted).await
    }

    /// [`view_until`](Self::view_until) on the agent's own stream.
    pub async fn agent_view_until(&self, wanted: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
        self.view_until("/api/agent/events", wanted).await
    }
}

/// The first view of the event stream at `base` + `path` without any
/// session, or the status that refused it.
pub async fn anonymous_first_view(
    base: &str,
    path: &str,
) -> anyhow::Result<Result<Value, StatusCode>> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    match Views::open(&http, &format!("{base}{path}"), None).await? {
        Ok(mut views) => Ok(Ok(views.until(|_| true).await?)),
        Err(status) => Ok(Err(status)),
    }
}

/// The views (`data:` JSON of each server-sent event) of one open event
/// stream, in order.
pub struct Views {
    response: reqwest::Response,
    buffer: String,
}

impl Views {
    async fn open(
        http: &reqwest::Client,
        url: &str,
        cookie: Option<&str>,
    ) -> anyhow::Result<Result<Views, StatusCode>> {
        let mut request = http.get(url);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await?;
        if !response.status().is_success() {
            return Ok(Err(response.status()));
        }
        Ok(Ok(Views {
            response,
            buffer: String::new(),
        }))
    }

    /// The next view; `None` when the stream ended. Unbounded: a caller
    /// bounds it with [`until`](Self::until) or its own timeout.
    pub async fn next(&mut self) -> anyhow::Result<Option<Value>> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                if let Some(view) = event
                    .lines()
                    .find_map(|line| line.strip_prefix("data:"))
                    .and_then(|data| serde_json::from_str::<Value>(data.trim()).ok())
                {
                    return Ok(Some(view));
                }
            }
            let Some(chunk) = self.response.chunk().await? else {
                return Ok(None);
            };
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Reads views until one satisfies `wanted` (bounded by [`WAIT`]);
    /// that view.
    pub async fn until(&mut self, wanted: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
        let mut last = Value::Null;
        let found = tokio::time::timeout(WAIT, async {
            loop {
                let view = self.next().await?.context("the stream ended")?;
                if wanted(&view) {
                    return anyhow::Ok(view);
                }
                last = view;
            }
        })
        .await;
        match found {
            Ok(view) => view,
            Err(_) => bail!("no view matched in time; the last: {last}"),
        }
    }
}

/// A handoff of `key`'s tenant to the queue `support`, waiting up to five
/// minutes for an agent, its context's summary `summary`; its id.
pub async fn create_support_handoff(
    control: &crate::Service,
    key: &str,
    request_id: &str,
    summary: &str,
) -> anyhow::Result<String> {
    use baton_proto::types::v1 as pb;
    let mut client = crate::auth::client(control, Some(key)).await;
    let support = pb::target::Kind::Queue(pb::QueueTarget {
        name: "support".into(),
        skills: vec![],
    });
    let mut request = crate::sample_request(request_id, support);
    request.context.as_mut().context("a context")?.summary = summary.into();
    request.timeout = Some(Duration::from_secs(300).try_into()?);
    let handoff = client
        .create_handoff(request)
        .await?
        .into_inner()
        .handoff
        .context("no handoff")?;
    Ok(handoff.id)
}

/// An agent account of the tenant `default` (the control service's when
/// it takes no credentials) with the skill `support`, added to
/// `accounts_file` with `password`.
pub fn add_support_agent(accounts_file: &Path, name: &str, password: &str) -> anyhow::Result<()> {
    use baton_connector_queue::accounts::{Account, Role, add_account};
    let account = Account {
        name: name.into(),
        display_name: None,
        role: Role::Agent,
        tenants: vec!["default".into()],
        skills: vec!["support".into()],
        contact: String::new(),
        password: String::new(),
    };
    add_account(accounts_file, account, password).map_err(anyhow::Error::msg)
}

/// The queue connector with its desktop on ephemeral loopback ports: its
/// store under `dir/queue`, its desktop accounts in `accounts_file`, an
/// offer waiting two minutes for an answer; `extra` (TOML) ends its config.
pub async fn start_queue(
    dir: &Path,
    accounts_file: &Path,
    extra: &str,
) -> anyhow::Result<crate::Service> {
    let config = format!(
        "offer_timeout = \"2m\"\n\n[server]\ngrpc_listen = \"127.0.0.1:0\"\n\
         http_listen = \"127.0.0.1:0\"\n\n[store]\ndata_dir = {:?}\n\n\
         [desk]\naccounts_file = {:?}\n\n{extra}",
        dir.join("queue").display().to_string(),
        accounts_file.display().to_string(),
    );
    crate::start_with_config("baton-connector-queue", dir, "queue.toml", &config, &[]).await
}

/// The queue connector (as [`start_queue`] starts it, `extra` ending its
/// config) with `agent` (password `<agent>-pw`, see [`add_support_agent`])
/// at its desktop, and the control service in front of it, both under
/// `dir`: the queue, then the control service.
pub async fn start_queue_and_control(
    dir: &Path,
    agent: &str,
    extra: &str,
) -> anyhow::Result<(crate::Service, crate::Service)> {
    let accounts = dir.join("desk-accounts.toml");
    add_support_agent(&accounts, agent, &format!("{agent}-pw"))?;
    let queue = start_queue(dir, &accounts, extra).await?;
    let control = crate::control_with_connector("queue", &queue.endpoint("grpc"), &[], dir).await?;
    Ok((queue, control))
}

/// The `http://host:port` of `queue`'s desktop.
pub fn desktop_base(queue: &crate::Service) -> String {
    format!("http://{}", queue.addr("http"))
}

/// The control service in front of the queue connector, requiring API
/// keys: one for tenant acme, one for tenant globex (AI runtime role).
pub struct TenantControl {
    pub control: crate::Service,
    pub acme_key: String,
    pub globex_key: String,
}

impl TenantControl {
    /// Mints the keys into `dir/api-keys.toml` and starts the control
    /// service on `dir` in front of `queue`.
    pub async fn start(dir: &Path, queue: &crate::Service) -> anyhow::Result<TenantControl> {
        let keys = dir.join("api-keys.toml");
        let acme_key = crate::auth::new_key(&keys, "acme", &["ai_runtime"], "acme");
        let globex_key = crate::auth::new_key(&keys, "globex", &["ai_runtime"], "globex");
        let keys = keys.to_str().context("a UTF-8 path")?;
        let env = [
            ("BATON_AUTH__MODE", "required"),
            ("BATON_AUTH__API_KEYS_FILE", keys),
        ];
        let control =
            crate::control_with_connector("queue", &queue.endpoint("grpc"), &env, dir).await?;
        Ok(TenantControl {
            control,
            acme_key,
            globex_key,
        })
    }

    /// A handoff of `key`'s tenant to the queue `support`, its context's
    /// summary `summary`; its id.
    pub async fn create(
        &self,
        key: &str,
        request_id: &str,
        summary: &str,
    ) -> anyhow::Result<String> {
        create_support_handoff(&self.control, key, request_id, summary).await
    }
}

/// A queue connector that tenants acme and globex share, the control
/// service in front of it ([`TenantControl`]), and the directory where both
/// keep their state and logs.
pub struct TenantDesk {
    pub dir: tempfile::TempDir,
    pub queue: crate::Service,
    pub tenants: TenantControl,
}

impl TenantDesk {
    /// Starts the control service in front of `queue`, which keeps its
    /// state in `dir`.
    pub async fn start(
        dir: tempfile::TempDir,
        queue: crate::Service,
    ) -> anyhow::Result<TenantDesk> {
        let tenants = TenantControl::start(dir.path(), &queue).await?;
        Ok(TenantDesk {
            dir,
            queue,
            tenants,
        })
    }

    /// The `http://host:port` of the queue's desktop.
    pub fn desktop(&self) -> String {
        desktop_base(&self.queue)
    }

    /// Both processes, whose logs say what a failed test saw.
    pub fn services(&self) -> [&crate::Service; 2] {
        [&self.queue, &self.tenants.control]
    }
}
