//! `patchbay github-app create`: TeamCity's "register a GitHub App from a manifest in one go".
//!
//! ```text
//!  browser ──GET /──▶ patchbay (loopback): a form holding the manifest, posted at once to
//!  browser ──POST──▶ GitHub {web}/[organizations/{org}/]settings/apps/new?state=S  (the person confirms)
//!  browser ◀─302── GitHub: {redirect_url}?code=C&state=S
//!  browser ──GET /callback?code=C&state=S──▶ patchbay
//!  patchbay ──POST {api}/app-manifests/C/conversions──▶ GitHub: id, client secret, webhook secret, key
//!  patchbay ──kubeconfig──▶ Secret (key, secrets) and Connection (githubApp) in the namespace
//! ```
//!
//! The state is random and checked; the code is used once; GitHub's answer is untrusted input
//! (capped, the key parsed before anything is written). Nothing secret is printed.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::api::Connection;
use crate::output::written_for_a_token;
use crate::providers::{GithubEndpoints, github_endpoints, http};

/// The field manager of what this command writes.
const FIELD_MANAGER: &str = "patchbay-github-app-create";

/// What to register and where to keep it.
#[derive(Clone, Debug)]
pub struct CreateOptions {
    /// The app's name on GitHub (unique there).
    pub name: String,
    /// GitHub: `https://github.com` or a GitHub Enterprise Server.
    pub server_url: String,
    /// The organization that owns the app; `None`: the signed-in person's account.
    pub organization: Option<String>,
    /// Where the Secret and the Connection go.
    pub namespace: String,
    /// The Connection's name (the Secret is `<connection>-app`).
    pub connection: String,
    /// The app's permissions, e.g. `contents: read`.
    pub permissions: BTreeMap<String, String>,
    /// The loopback address the browser is sent to (port 0: any free one).
    pub listen: SocketAddr,
}

/// The app GitHub created, as far as patchbay keeps it.
#[derive(Clone, PartialEq, Eq)]
pub struct CreatedApp {
    /// The numeric App ID.
    pub id: u64,
    /// Its URL name.
    pub slug: String,
    /// The account that owns it.
    pub owner: String,
    /// The client ID.
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
    /// The webhook secret, when the app has a webhook.
    pub webhook_secret: Option<String>,
    /// The private key (PEM).
    pub pem: String,
}

impl std::fmt::Debug for CreatedApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApp")
            .field("id", &self.id)
            .field("slug", &self.slug)
            .field("owner", &self.owner)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The manifest GitHub registers: the name, no webhook, a private app, the permissions, and
/// the loopback callback.
pub fn manifest(opts: &CreateOptions, redirect_url: &str) -> Value {
    json!({
        "name": opts.name,
        "url": "https://github.com/patchbay-dev/patchbay",
        "redirect_url": redirect_url,
        "public": false,
        "hook_attributes": {"url": "https://example.invalid/patchbay-has-no-webhook", "active": false},
        "default_permissions": opts.permissions,
        "default_events": [],
    })
}

/// Where the browser posts the manifest.
fn registration_url(endpoints: &GithubEndpoints, opts: &CreateOptions, state: &str) -> String {
    match &opts.organization {
        Some(org) => format!(
            "{}/organizations/{org}/settings/apps/new?state={state}",
            endpoints.web
        ),
        None => format!("{}/settings/apps/new?state={state}", endpoints.web),
    }
}

/// `text` safe inside an HTML attribute or element.
fn html_escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c => c.to_string(),
        })
        .collect()
}

/// The page that posts the manifest to GitHub.
fn form_page(action: &str, manifest: &Value) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>patchbay: register a GitHub App</title></head>\
         <body><form id=\"register\" method=\"post\" action=\"{}\">\
         <input type=\"hidden\" name=\"manifest\" value=\"{}\">\
         <p>patchbay registers a GitHub App from a manifest. <button type=\"submit\">Continue to GitHub</button></p>\
         </form><script>document.getElementById('register').submit();</script></body></html>",
        html_escape(action),
        html_escape(&manifest.to_string())
    )
}

/// Runs the browser round trip: returns the conversion code once GitHub redirected back with
/// the right state. `say` receives what the person must do.
async fn browser_round_trip(
    opts: &CreateOptions,
    endpoints: &GithubEndpoints,
    say: &mut dyn FnMut(&str),
) -> Result<String, String> {
    let listener = (TcpListener::bind(opts.listen).await)
        .map_err(|e| format!("cannot listen on {}: {e}", opts.listen))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let state = crate::loopback::random_hex(2);
    let redirect = format!("http://{bound}/callback");
    let action = registration_url(endpoints, opts, &state);
    let page = form_page(&action, &manifest(opts, &redirect));
    say(&format!(
        "Open http://{bound}/ in a browser signed in to {} to register the app \"{}\".",
        endpoints.web, opts.name
    ));
    crate::loopback::wait_for_code(listener, Some(page), state).await
}

/// Exchanges the code for the app's credentials.
async fn convert(endpoints: &GithubEndpoints, code: &str) -> Result<CreatedApp, String> {
    let code: String = ::url::form_urlencoded::byte_serialize(code.as_bytes()).collect();
    let url = format!("{}/app-manifests/{code}/conversions", endpoints.api);
    let client = http::client(None).map_err(|e| e.message)?;
    let request = (client.post(&url))
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
        .header("user-agent", "patchbay");
    let answer = http::send(request, &endpoints.api)
        .await
        .map_err(|e| e.message)?;
    if answer.status.as_u16() != 201 && !answer.status.is_success() {
        return Err(answer.unexpected(&url).message);
    }
    read_conversion(&answer.json())
}

/// Reads GitHub's conversion answer; the key must parse as an RSA private key.
pub fn read_conversion(body: &Value) -> Result<CreatedApp, String> {
    let text = |key: &str| body[key].as_str().map(str::trim).filter(|t| !t.is_empty());
    let missing = |what: &str| format!("GitHub's answer has no {what}");
    let id = body["id"].as_u64().ok_or_else(|| missing("numeric id"))?;
    let pem = text("pem").ok_or_else(|| missing("private key"))?;
    jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes())
        .map_err(|_| "GitHub's answer holds a private key that is not an RSA PEM key".to_owned())?;
    Ok(CreatedApp {
        id,
        slug: http::printable(text("slug").ok_or_else(|| missing("slug"))?, 100),
        owner: http::printable(
            body["owner"]["login"]
                .as_str()
                .ok_or_else(|| missing("owner"))?,
            39,
        ),
        client_id: http::printable(text("client_id").ok_or_else(|| missing("client ID"))?, 100),
        client_secret: text("client_secret")
            .ok_or_else(|| missing("client secret"))?
            .to_owned(),
        webhook_secret: text("webhook_secret").map(str::to_owned),
        pem: pem.to_owned(),
    })
}

/// Registers the app and stores it: returns the installation link.
pub async fn create(
    client: Client,
    opts: &CreateOptions,
    say: &mut dyn FnMut(&str),
) -> Result<String, String> {
    let endpoints = github_endpoints("--server-url", &opts.server_url).map_err(|e| e.message)?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &opts.namespace);
    let secret_name = format!("{}-app", opts.connection);
    let existing = (secrets.get_opt(&secret_name).await).map_err(|e| e.to_string())?;
    let holds_a_key =
        |s: &Secret| (s.data.as_ref()).is_some_and(|d| d.contains_key("private-key.pem"));
    if existing.is_some_and(|s| written_for_a_token(&s) || holds_a_key(&s)) {
        return Err(format!(
            "Secret {}/{secret_name} exists already; choose another --connection",
            opts.namespace
        ));
    }
    let code = browser_round_trip(opts, &endpoints, say).await?;
    let app = convert(&endpoints, &code).await?;
    say(&format!(
        "GitHub created app {} ({}) owned by {}.",
        app.slug, app.id, app.owner
    ));
    write(client, opts, &endpoints, &app, &secret_name).await?;
    say(&format!(
        "Stored its key in Secret {ns}/{secret_name} and Connection {ns}/{}.",
        opts.connection,
        ns = opts.namespace
    ));
    Ok(format!(
        "{}/apps/{}/installations/new",
        endpoints.web, app.slug
    ))
}

/// Writes the Secret (key, client secret, webhook secret) and the Connection.
async fn write(
    client: Client,
    opts: &CreateOptions,
    endpoints: &GithubEndpoints,
    app: &CreatedApp,
    secret_name: &str,
) -> Result<(), String> {
    let mut data = BTreeMap::from([
        (
            "private-key.pem".to_owned(),
            ByteString(app.pem.clone().into_bytes()),
        ),
        (
            "client-secret".to_owned(),
            ByteString(app.client_secret.clone().into_bytes()),
        ),
    ]);
    if let Some(webhook) = &app.webhook_secret {
        data.insert(
            "webhook-secret".into(),
            ByteString(webhook.clone().into_bytes()),
        );
    }
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(secret_name.to_owned()),
            namespace: Some(opts.namespace.clone()),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Secret::default()
    };
    let params = PatchParams::apply(FIELD_MANAGER);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &opts.namespace);
    (secrets
        .patch(secret_name, &params, &Patch::Apply(&secret))
        .await)
        .map_err(|e| format!("cannot write Secret {}/{secret_name}: {e}", opts.namespace))?;
    let reference = |key: &str| json!({"name": secret_name, "key": key});
    let mut github_app = json!({
        "serverUrl": endpoints.web,
        "appId": app.id.to_string(),
        "clientId": app.client_id,
        "privateKey": reference("private-key.pem"),
        "clientSecret": reference("client-secret"),
        "ownerUrl": format!("{}/{}", endpoints.web, app.owner),
    });
    if app.webhook_secret.is_some() {
        github_app["webhookSecret"] = reference("webhook-secret");
    }
    let connection = json!({
        "apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
        "metadata": {"name": opts.connection, "namespace": opts.namespace},
        "spec": {"displayName": opts.name, "githubApp": github_app},
    });
    let connections: Api<Connection> = Api::namespaced(client, &opts.namespace);
    (connections
        .patch(&opts.connection, &params, &Patch::Apply(&connection))
        .await)
        .map_err(|e| {
            format!(
                "cannot write Connection {}/{}: {e}",
                opts.namespace, opts.connection
            )
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(org: Option<&str>) -> CreateOptions {
        CreateOptions {
            name: "ACME CI".into(),
            server_url: "https://github.com".into(),
            organization: org.map(str::to_owned),
            namespace: "ci".into(),
            connection: "acme-github".into(),
            permissions: BTreeMap::from([("contents".into(), "read".into())]),
            listen: "127.0.0.1:0".parse().unwrap(),
        }
    }

    #[test]
    fn the_manifest_asks_for_a_private_app_without_a_webhook_that_comes_back_to_loopback() {
        let m = manifest(&opts(None), "http://127.0.0.1:4000/callback");
        assert_eq!(m["redirect_url"], "http://127.0.0.1:4000/callback");
        assert_eq!(m["public"], false);
        assert_eq!(m["hook_attributes"]["active"], false);
        assert_eq!(m["default_permissions"]["contents"], "read");
    }

    #[test]
    fn organizations_register_under_their_settings_and_people_under_theirs() {
        let e = github_endpoints("f", "https://github.com").unwrap();
        assert_eq!(
            registration_url(&e, &opts(Some("acme")), "s1"),
            "https://github.com/organizations/acme/settings/apps/new?state=s1"
        );
        assert_eq!(
            registration_url(&e, &opts(None), "s1"),
            "https://github.com/settings/apps/new?state=s1"
        );
    }

    #[test]
    fn the_form_page_escapes_the_manifest_into_its_hidden_field() {
        let page = form_page("https://github.com/x?state=a&b", &json!({"name": "a\"<b>"}));
        assert!(
            page.contains("action=\"https://github.com/x?state=a&amp;b\""),
            "{page}"
        );
        assert!(
            page.contains("{&quot;name&quot;:&quot;a\\&quot;&lt;b&gt;&quot;}"),
            "{page}"
        );
    }

    #[test]
    fn a_conversion_answer_without_a_usable_key_is_refused_before_anything_is_written() {
        let body = json!({"id": 7, "slug": "acme-ci", "owner": {"login": "acme"},
            "client_id": "Iv1.x", "client_secret": "s", "pem": "not a key"});
        let e = read_conversion(&body).unwrap_err();
        assert!(e.contains("not an RSA PEM key"), "{e}");
        assert!(
            read_conversion(&json!({"pem": "x"}))
                .unwrap_err()
                .contains("numeric id")
        );
    }
}
