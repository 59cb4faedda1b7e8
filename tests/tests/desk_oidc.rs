//! Sign-in to the agent desktop through an OpenID Connect provider, end
//! to end: the test provider of the harness (`baton_tests::oidc_provider`,
//! a real checker of codes, client secrets and PKCE verifiers), a
//! `baton-connector-queue` with `[desk.oidc]` and local accounts off, and
//! a `baton-control` with an API key per tenant (acme, globex); real
//! headless Chromium signs in.
//!
//! Acme's agent signs in at the provider (RS256 token), gets a screen pop
//! of acme's handoff, is refused globex's and the supervisor stream, and
//! signs out; acme's supervisor, a supervisor by the provider's group
//! claim (ES256 token), sees the supervisor view. Outside the browser: a
//! callback is used once, a state of another browser is refused, and the
//! provider refuses a wrong PKCE verifier.

use anyhow::Context;
use baton_tests::desk::TenantDesk;
use baton_tests::oidc_provider::{OidcProvider, ProviderClient, ProviderUser, Signing};
use browser::{Browser, WAIT};
use fantoccini::Locator;

mod browser;

const ACME_SUMMARY: &str = "Acme customer: the invoice shows a double charge";
const GLOBEX_SUMMARY: &str = "Globex customer: asks for a new contract";
const CLIENT_ID: &str = "baton-desk";
const CLIENT_SECRET: &str = "desk-client-secret";

/// The provider and the tenants' desk, whose queue signs in through it.
struct Stack {
    desk: TenantDesk,
    provider: OidcProvider,
}

fn user(username: &str, group: &str, tenant: &str, signing: Signing) -> ProviderUser {
    ProviderUser {
        username: username.into(),
        password: format!("{username}-idp-pw"),
        name: format!("{username} at the IdP"),
        groups: vec![group.into(), "staff".into()],
        tenants: vec![tenant.into()],
        signing,
    }
}

impl Stack {
    async fn start() -> anyhow::Result<Stack> {
        let dir = tempfile::tempdir()?;
        // The redirect URL is registered at the provider before the queue
        // starts: the queue's port is chosen first.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let redirect_uri = format!("http://127.0.0.1:{port}/auth/oidc/callback");
        let provider = OidcProvider::start(
            ProviderClient {
                client_id: CLIENT_ID.into(),
                client_secret: CLIENT_SECRET.into(),
                redirect_uri: redirect_uri.clone(),
            },
            vec![
                user("ann", "desk-agents", "acme", Signing::Rs256),
                user("sue", "desk-supervisors", "acme", Signing::Es256),
                user("eve", "staff", "acme", Signing::Es256),
            ],
        )
        .await?;
        let secret_file = dir.path().join("oidc-client-secret");
        std::fs::write(&secret_file, format!("{CLIENT_SECRET}\n"))?;
        let queue = baton_tests::start_with_config(
            "baton-connector-queue",
            dir.path(),
            "queue.toml",
            &format!(
                "offer_timeout = \"2m\"\n\n[server]\ngrpc_listen = \"127.0.0.1:0\"\n\
                 http_listen = \"127.0.0.1:{port}\"\n\n[store]\ndata_dir = {:?}\n\n\
                 [[agents]]\nid = \"ann\"\nskills = [\"support\"]\n\n\
                 [desk]\nlocal_accounts = false\n\n[desk.oidc]\nissuer = {:?}\n\
                 display_name = \"Test IdP\"\nclient_id = {CLIENT_ID:?}\n\
                 client_secret_file = {:?}\nredirect_url = {redirect_uri:?}\n\n\
                 [desk.oidc.roles]\ndesk-agents = \"agent\"\ndesk-supervisors = \"supervisor\"\n",
                dir.path().join("queue").display().to_string(),
                provider.issuer,
                secret_file.display().to_string(),
            ),
            &[],
        )
        .await?;
        assert!(
            !queue.logs().contains(CLIENT_SECRET),
            "the client secret is never logged"
        );

        Ok(Stack {
            desk: TenantDesk::start(dir, queue).await?,
            provider,
        })
    }
}

/// The status of a request the page itself makes (with its cookie and, for
/// a change, its CSRF token).
async fn page_fetch(browser: &Browser, method: &str, path: &str) -> anyhow::Result<u64> {
    let script = "const [method, path] = arguments; \
        const headers = { 'Content-Type': 'application/json' }; \
        if (method !== 'GET' && desk) headers['X-CSRF-Token'] = desk.csrf_token; \
        return fetch(path, { method, headers, credentials: 'same-origin', \
          body: method === 'GET' ? undefined : '{}' }).then((r) => r.status);";
    let status = browser
        .client
        .execute(script, vec![method.into(), path.into()])
        .await?;
    status.as_u64().context("a status")
}

/// Signs in at the provider's login form, once with a wrong password.
async fn provider_login(browser: &Browser, username: &str) -> anyhow::Result<()> {
    browser.click("#sign-in-oidc").await?;
    browser.fill("#username", username).await?;
    browser.fill("#password", "not-the-password").await?;
    browser.click("#login").await?;
    browser
        .wait_text("#login-error", "wrong username or password")
        .await?;
    browser.fill("#username", username).await?;
    browser
        .fill("#password", &format!("{username}-idp-pw"))
        .await?;
    browser.click("#login").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_and_supervisors_sign_in_through_the_identity_provider() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    Browser::run_at(&stack.desk, "desk-oidc-failure.png", async |browser| {
        browser_flow(&stack, browser).await
    })
    .await
}

async fn browser_flow(stack: &Stack, browser: &Browser) -> anyhow::Result<()> {
    let base = stack.desk.desktop();
    let tenants = &stack.desk.tenants;
    let globex_handoff = tenants
        .create(&tenants.globex_key, "globex-1", GLOBEX_SUMMARY)
        .await?;

    // The sign-in card offers the provider only: local accounts are off.
    browser.client.goto(&format!("{base}/")).await?;
    browser
        .wait_text("#sign-in-oidc", "Sign in with Test IdP")
        .await?;
    let form = browser.client.find(Locator::Css("#signin-form")).await?;
    assert!(!form.is_displayed().await?, "no password form");

    provider_login(browser, "ann").await?;
    browser
        .wait_text("#idle", "Ready for the next handoff")
        .await?;
    assert!(
        browser
            .text("#agent-label")
            .await?
            .contains("ann at the IdP")
    );
    assert_eq!(stack.provider.tokens_issued(), 1);

    // Acme's handoff pops on ann's desktop; globex's never does.
    let acme_handoff = tenants
        .create(&tenants.acme_key, "acme-1", ACME_SUMMARY)
        .await?;
    browser.wait_text("#pop-summary", ACME_SUMMARY).await?;
    let page = browser.client.source().await?;
    assert!(page.contains(&acme_handoff));
    assert!(!page.contains(GLOBEX_SUMMARY) && !page.contains(&globex_handoff));
    browser.screenshot("desk-oidc-screen-pop.png").await?;

    // The page's own session is refused globex's handoff and the
    // supervisor stream.
    let status = page_fetch(
        browser,
        "POST",
        &format!("/api/handoffs/{globex_handoff}/accept"),
    )
    .await?;
    assert!((400..500).contains(&status), "globex's handoff: {status}");
    assert_eq!(
        page_fetch(browser, "GET", "/api/supervisor/events").await?,
        403
    );
    assert_eq!(page_fetch(browser, "GET", "/api/sessions").await?, 200);

    // Ann stays signed in on a second desktop (outside the browser), so
    // that acme's customer stays offered to her when this one signs out.
    let http = http()?;
    let (pending, callback) = through_the_provider(&http, &base, "ann").await?;
    let second = http
        .get(&callback)
        .header("cookie", &pending)
        .send()
        .await?;
    assert_eq!(second.status(), reqwest::StatusCode::SEE_OTHER);

    // Signed out, the session works no more.
    browser.click("#sign-out").await?;
    browser
        .wait_text("#sign-in-oidc", "Sign in with Test IdP")
        .await?;
    assert_eq!(page_fetch(browser, "GET", "/api/sessions").await?, 401);

    // A supervisor by the provider's group claim sees acme's handoff on
    // the supervisor view, and nothing of globex.
    browser.client.goto(&format!("{base}/supervisor")).await?;
    provider_login(browser, "sue").await?;
    browser.wait_text("#contacts", &acme_handoff).await?;
    let current = browser.client.current_url().await?;
    assert_eq!(current.path(), "/supervisor");
    let page = browser.client.source().await?;
    assert!(!page.contains(&globex_handoff), "nothing of globex");
    browser.screenshot("desk-oidc-supervisor.png").await?;

    // Someone with no desk group is signed in at the provider but refused
    // by the desk.
    browser.click("#sign-out").await?;
    browser.client.goto(&format!("{base}/")).await?;
    provider_login(browser, "eve").await?;
    browser
        .wait_text("#signin-error", "no role on this desk")
        .await?;
    browser.client.goto(&format!("{base}/")).await?;
    browser
        .wait_text("#sign-in-oidc", "Sign in with Test IdP")
        .await?;
    assert_eq!(page_fetch(browser, "GET", "/api/sessions").await?, 401);
    Ok(())
}

/// A client that follows no redirect and keeps no cookie by itself.
fn http() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(WAIT)
        .build()?)
}

fn location(response: &reqwest::Response) -> anyhow::Result<String> {
    Ok(response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .context("a Location")?
        .to_owned())
}

/// `name=value` of the response's `Set-Cookie` named `name`.
fn cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")) && !pair.ends_with('='))
        .map(str::to_owned)
}

/// Starts a sign-in at the desk and logs in at the provider: the
/// pre-session cookie and the callback URL the provider sends back.
async fn through_the_provider(
    http: &reqwest::Client,
    base: &str,
    username: &str,
) -> anyhow::Result<(String, String)> {
    let start = http.get(format!("{base}/auth/oidc/start")).send().await?;
    assert_eq!(start.status(), reqwest::StatusCode::SEE_OTHER);
    let pending = cookie(&start, "baton_desk_oidc").context("a pre-session cookie")?;
    let authorize = reqwest::Url::parse(&location(&start)?)?;
    let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    assert!(form.contains(&("code_challenge_method".into(), "S256".into())));
    form.push(("username".into(), username.into()));
    form.push(("password".into(), format!("{username}-idp-pw")));
    let mut post = authorize.clone();
    post.set_query(None);
    let login = http.post(post).form(&form).send().await?;
    assert_eq!(login.status(), reqwest::StatusCode::SEE_OTHER);
    Ok((pending, location(&login)?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_is_used_once_by_its_own_browser_and_the_provider_checks_pkce()
-> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let base = stack.desk.desktop();
    let http = http()?;

    // The right browser's callback signs in once; replayed, it is refused.
    let (pending, callback) = through_the_provider(&http, &base, "ann").await?;
    let done = http
        .get(&callback)
        .header("cookie", &pending)
        .send()
        .await?;
    assert_eq!(done.status(), reqwest::StatusCode::SEE_OTHER);
    assert_eq!(location(&done)?, "/");
    let session = cookie(&done, "baton_desk_session").context("a session cookie")?;
    let set_cookie: Vec<_> = done.headers().get_all("set-cookie").iter().collect();
    assert!(
        set_cookie.iter().any(|c| c
            .to_str()
            .is_ok_and(|c| c.contains("HttpOnly") && c.contains("SameSite=Strict"))),
        "{set_cookie:?}"
    );
    let me = http
        .get(format!("{base}/api/sessions"))
        .header("cookie", &session)
        .send()
        .await?;
    assert_eq!(me.status(), reqwest::StatusCode::OK);
    let me: serde_json::Value = me.json().await?;
    assert_eq!(me["name"], "ann");
    assert_eq!(me["role"], "agent");
    assert_eq!(me["tenants"], serde_json::json!(["acme"]));
    let replay = http
        .get(&callback)
        .header("cookie", &pending)
        .send()
        .await?;
    assert_eq!(replay.status(), reqwest::StatusCode::BAD_REQUEST);
    assert!(cookie(&replay, "baton_desk_session").is_none());

    // Another browser's callback (its own pre-session cookie, someone
    // else's code and state) is refused, and without a cookie too.
    let (_, victims_callback) = through_the_provider(&http, &base, "sue").await?;
    let (attackers_pending, _) = through_the_provider(&http, &base, "ann").await?;
    let crossed = http
        .get(&victims_callback)
        .header("cookie", &attackers_pending)
        .send()
        .await?;
    assert_eq!(crossed.status(), reqwest::StatusCode::BAD_REQUEST);
    let bare = http.get(&victims_callback).send().await?;
    assert_eq!(bare.status(), reqwest::StatusCode::BAD_REQUEST);
    assert_eq!(stack.provider.tokens_issued(), 1, "no code was exchanged");

    // The provider itself refuses a wrong verifier, then the used code.
    let issuer = stack.provider.issuer.clone();
    let (_, callback) = through_the_provider(&http, &base, "ann").await?;
    let code = reqwest::Url::parse(&callback)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .context("a code")?;
    let redirect_uri = format!("{base}/auth/oidc/callback");
    let exchange = |verifier: &str| {
        http.post(format!("{issuer}/token"))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", redirect_uri.as_str()),
                ("code_verifier", verifier),
            ])
            .send()
    };
    let wrong = exchange("a-verifier-that-is-not-the-one-whose-hash-was-sent").await?;
    assert_eq!(wrong.status(), reqwest::StatusCode::BAD_REQUEST);
    let body: serde_json::Value = wrong.json().await?;
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        stack.provider.refusals().iter().any(|r| r.contains("PKCE")),
        "{:?}",
        stack.provider.refusals()
    );
    let again = exchange("dBjftJeZ4CVP-mJ0kc7AXA5OM2B1b1Gk9pRDOLfKJTo").await?;
    assert_eq!(
        again.status(),
        reqwest::StatusCode::BAD_REQUEST,
        "a code is used once"
    );
    Ok(())
}
