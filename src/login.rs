//! `patchbay login CONNECTION`: a person signs in to an OAuth connection once, as they would in
//! TeamCity, and the grant (a refresh token) lands in a Secret of their namespace that a
//! VcsAuthToken names. Where the provider has the device authorization grant (RFC 8628),
//! patchbay shows a code, the person approves it in any browser, and patchbay polls the
//! provider until they did. Otherwise (or with `--browser`) the authorization code flow with
//! PKCE (RFC 7636) on a loopback redirect (RFC 8252): patchbay prints the provider's sign-in
//! URL and takes the redirect back on 127.0.0.1.
//!
//! Everything goes through the person's own kubeconfig: they read the Connection (found up the
//! namespace tree from their namespace), the application's client secret when they may (else
//! the application is used as a public client, which providers allow for device flows), and
//! write the grant Secret in their namespace. Nothing here needs the operator.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use kube::{Client, ResourceExt};

use crate::api::{Connection, PARENT_LABEL};
use crate::hierarchy::Tree;
use crate::output::written_for_a_token;
use crate::providers::oauth::{DeviceCode, Poll};
use crate::providers::{self, EndpointPolicy, Env};

/// The label a grant Secret `patchbay login` wrote carries: the connection it is for.
pub const GRANT_LABEL: &str = "patchbay.dev/grant-for";
/// The field manager of the grant Secret's writes.
const FIELD_MANAGER: &str = "patchbay-login";
/// How many namespaces up the tree a connection is looked for.
const MAX_DEPTH: usize = 64;

/// What to sign in to and where the grant goes.
#[derive(Clone, Debug)]
pub struct LoginOptions {
    /// The Connection's name, looked up from `namespace` up the tree.
    pub connection: String,
    /// The namespace the grant Secret (and the token) live in.
    pub namespace: String,
    /// The namespace the Connection lives in, when the tree cannot be walked (no right to read
    /// Namespaces, or the root namespace has no label to find it by).
    pub connection_namespace: Option<String>,
    /// The grant Secret's name.
    pub secret: String,
    /// The key the refresh token is written to.
    pub key: String,
    /// The scope to ask for (default: the provider's; `offline_access` where a provider needs
    /// it for a refresh token).
    pub scope: Option<String>,
    /// The name of the VcsAuthToken printed at the end.
    pub token_name: String,
    /// Use the authorization code flow even where the provider has a device grant.
    pub browser: bool,
    /// The loopback address the authorization code flow's redirect comes back to (port 0: any
    /// free one; name a port when the application registered an exact redirect URI).
    pub listen: std::net::SocketAddr,
}

/// Signs in, writes the grant Secret, and returns the VcsAuthToken to apply (YAML). `say`
/// receives what the person must do (open a URL, type a code) and progress.
pub async fn login(
    client: Client,
    opts: &LoginOptions,
    say: &mut dyn FnMut(&str),
) -> Result<String, String> {
    let conn = find_connection(&client, opts).await?;
    let home = conn.namespace().unwrap_or_default();
    let at = format!("Connection {home}/{}", conn.name_any());
    let provider = providers::for_spec(&conn.spec).map_err(|e| e.message)?;
    let not_oauth = || {
        format!(
            "{at} is a {} connection; patchbay login signs in to OAuth applications \
             (githubOAuth, gitlab, bitbucketCloud, bitbucketServer, azureDevOpsOAuth, google, \
             jetbrainsSpace)",
            provider.kind().field_name()
        )
    };
    let probe = provider.sign_in(&conn, "").ok_or_else(not_oauth)?;
    let (_, reference) = probe
        .map_err(|e| format!("{at}: {}", e.message))?
        .client_secret;
    let client_secret = read_client_secret(&client, &home, reference, say).await;
    let sign_in = (provider.sign_in(&conn, &client_secret))
        .ok_or_else(not_oauth)?
        .map_err(|e| format!("{at}: {}", e.message))?;
    let tree = Tree::new("");
    let endpoints = EndpointPolicy::default();
    let env = Env {
        tree: &tree,
        connections: &[],
        allow_default_chain: false,
        endpoints: &endpoints,
        ca_bundle: None,
    };
    let app = &sign_in.app;
    let tokens = match (
        &sign_in.device_authorization_url,
        &sign_in.authorization_url,
    ) {
        (Some(device_url), _) if !opts.browser => {
            device_flow(app, &env, device_url, opts, say).await
        }
        (_, Some(authorize_url)) => code_flow(app, &env, authorize_url, opts, say).await,
        (Some(device_url), None) => device_flow(app, &env, device_url, opts, say).await,
        (None, None) => Err(format!(
            "{} offers neither a device grant nor a browser sign-in patchbay can use",
            app.provider
        )),
    }
    .map_err(|e| format!("{at}: {e}"))?;
    let Some(refresh_token) = tokens.refresh_token else {
        return Err(format!(
            "{at}: {} issued an access token but no refresh token, so there is nothing to keep \
             fresh; ask for offline access (--scope), or allow the application refresh tokens",
            sign_in.app.provider
        ));
    };
    write_grant(&client, opts, &conn.name_any(), &refresh_token).await?;
    say(&format!(
        "Signed in. The grant is in Secret {}/{} (key {}); apply the VcsAuthToken below.",
        opts.namespace, opts.secret, opts.key
    ));
    Ok(token_yaml(opts))
}

/// The device authorization grant: show the code, poll until it is approved.
async fn device_flow(
    app: &providers::oauth::App<'_>,
    env: &Env<'_>,
    device_url: &str,
    opts: &LoginOptions,
    say: &mut dyn FnMut(&str),
) -> Result<providers::oauth::Tokens, String> {
    let device = (app
        .device_code(env, device_url, opts.scope.as_deref())
        .await)
        .map_err(|e| e.message)?;
    say(&instructions(&device));
    poll(app, env, &device).await
}

/// The PKCE challenge of a verifier: BASE64URL(SHA256(verifier)) without padding.
fn challenge(verifier: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(verifier.as_bytes());
    (crate::output::base64(&digest)
        .replace('+', "-")
        .replace('/', "_"))
    .trim_end_matches('=')
    .to_owned()
}

/// The authorization URL a person opens.
fn authorization_link(
    authorize_url: &str,
    client_id: &str,
    redirect: &str,
    scope: Option<&str>,
    state: &str,
    verifier: &str,
) -> String {
    let mut query = ::url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("response_type", "code");
    query.append_pair("client_id", client_id);
    query.append_pair("redirect_uri", redirect);
    if let Some(scope) = scope {
        query.append_pair("scope", scope);
    }
    query.append_pair("state", state);
    query.append_pair("code_challenge", &challenge(verifier));
    query.append_pair("code_challenge_method", "S256");
    let separator = if authorize_url.contains('?') {
        '&'
    } else {
        '?'
    };
    format!("{authorize_url}{separator}{}", query.finish())
}

/// The authorization code flow with PKCE on a loopback redirect.
async fn code_flow(
    app: &providers::oauth::App<'_>,
    env: &Env<'_>,
    authorize_url: &str,
    opts: &LoginOptions,
    say: &mut dyn FnMut(&str),
) -> Result<providers::oauth::Tokens, String> {
    let listener = (tokio::net::TcpListener::bind(opts.listen).await)
        .map_err(|e| format!("cannot listen on {}: {e}", opts.listen))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let redirect = format!("http://{bound}/callback");
    let (state, verifier) = (
        crate::loopback::random_hex(2),
        crate::loopback::random_hex(4),
    );
    let link = authorization_link(
        authorize_url,
        app.client_id,
        &redirect,
        opts.scope.as_deref(),
        &state,
        &verifier,
    );
    say(&format!("To sign in, open {link}"));
    let code = crate::loopback::wait_for_code(listener, None, state).await?;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let (tokens, _) = app.token_request(env, &form).await.map_err(|e| e.message)?;
    Ok(tokens)
}

/// What the person does: open the URL, type the code.
fn instructions(device: &DeviceCode) -> String {
    let minutes = device.expires_in.as_secs().div_ceil(60);
    let mut text = format!(
        "To sign in, open {} and enter the code {} (valid for {minutes} min).",
        device.verification_uri, device.user_code
    );
    if let Some(direct) = &device.verification_uri_complete {
        text.push_str(&format!("\nOr open {direct}"));
    }
    text
}

/// Polls until the code is approved, denied or expired.
async fn poll(
    app: &providers::oauth::App<'_>,
    env: &Env<'_>,
    device: &DeviceCode,
) -> Result<providers::oauth::Tokens, String> {
    let deadline = Instant::now() + device.expires_in;
    let mut interval = device.interval;
    loop {
        tokio::time::sleep(interval).await;
        if Instant::now() >= deadline {
            return Err("the code expired before it was approved; run patchbay login again".into());
        }
        match app.poll_device(env, device).await {
            Ok(Poll::Pending) => {}
            Ok(Poll::SlowDown) => interval += Duration::from_secs(5),
            Ok(Poll::Done(tokens)) => return Ok(tokens),
            Err(e) if !e.permanent && e.reason != providers::oauth::REAUTHORIZATION_REQUIRED => {
                // A transient failure: keep polling until the code expires.
                interval = (interval * 2).min(providers::oauth::MAX_POLL_INTERVAL);
            }
            Err(e) => return Err(e.message),
        }
    }
}

/// The client secret, when the person may read it; empty (a public client) otherwise.
async fn read_client_secret(
    client: &Client,
    namespace: &str,
    reference: &crate::api::SecretKeyRef,
    say: &mut dyn FnMut(&str),
) -> String {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let value = match api.get_opt(&reference.name).await {
        Ok(Some(secret)) => (secret.data.unwrap_or_default().remove(&reference.key))
            .and_then(|v| String::from_utf8(v.0).ok()),
        _ => None,
    };
    value.map(|v| v.trim().to_owned()).unwrap_or_else(|| {
        say(&format!(
            "Cannot read the application's client secret (Secret {namespace}/{}); signing in \
             as a public client.",
            reference.name
        ));
        String::new()
    })
}

/// The Connection, in `--connection-namespace` or found from the namespace up the tree.
async fn find_connection(client: &Client, opts: &LoginOptions) -> Result<Connection, String> {
    let get = |ns: &str| {
        let api: Api<Connection> = Api::namespaced(client.clone(), ns);
        let name = opts.connection.clone();
        async move { api.get_opt(&name).await }
    };
    if let Some(ns) = &opts.connection_namespace {
        return get(ns)
            .await
            .map_err(|e| format!("cannot read Connection {ns}/{}: {e}", opts.connection))?
            .ok_or_else(|| format!("no Connection {ns}/{}", opts.connection));
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut searched = Vec::new();
    let mut ns = opts.namespace.clone();
    for _ in 0..MAX_DEPTH {
        searched.push(ns.clone());
        let found = get(&ns)
            .await
            .map_err(|e| format!("cannot read Connection {ns}/{}: {e}", opts.connection))?;
        if let Some(conn) = found {
            return Ok(conn);
        }
        let parent = (namespaces.get_opt(&ns).await.ok().flatten())
            .and_then(|n| n.labels().get(PARENT_LABEL).cloned());
        match parent {
            Some(parent) if !searched.contains(&parent) => ns = parent,
            _ => break,
        }
    }
    Err(format!(
        "no Connection {:?} in {} (searched up the {PARENT_LABEL} labels); name its namespace \
         with --connection-namespace",
        opts.connection,
        searched.join(", ")
    ))
}

/// Writes the refresh token into the grant Secret (created if absent), and clears the access
/// token cached beside it from an earlier grant. A Secret patchbay writes for a token is
/// never used.
async fn write_grant(
    client: &Client,
    opts: &LoginOptions,
    connection: &str,
    refresh_token: &str,
) -> Result<(), String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &opts.namespace);
    let object = format!("Secret {}/{}", opts.namespace, opts.secret);
    let existing =
        (api.get_opt(&opts.secret).await).map_err(|e| format!("cannot read {object}: {e}"))?;
    if existing.as_ref().is_some_and(written_for_a_token) {
        return Err(format!(
            "{object} holds a credential patchbay writes for a VcsAuthToken; choose another \
             name with --secret"
        ));
    }
    let mut data = BTreeMap::new();
    data.insert(
        opts.key.clone(),
        ByteString(refresh_token.as_bytes().to_vec()),
    );
    for suffix in providers::oauth::GRANT_KEY_SUFFIXES {
        data.insert(format!("{}.{suffix}", opts.key), ByteString(Vec::new()));
    }
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(opts.secret.clone()),
            namespace: Some(opts.namespace.clone()),
            labels: Some(BTreeMap::from([(
                GRANT_LABEL.to_owned(),
                connection.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        type_: existing.is_none().then(|| "Opaque".to_owned()),
        data: Some(data),
        ..Secret::default()
    };
    let params = PatchParams::apply(FIELD_MANAGER).force();
    (api.patch(&opts.secret, &params, &Patch::Apply(&secret))
        .await)
        .map_err(|e| format!("cannot write {object}: {e}"))?;
    Ok(())
}

/// The VcsAuthToken that keeps an access token fresh from the grant.
fn token_yaml(opts: &LoginOptions) -> String {
    format!(
        "apiVersion: patchbay.dev/v1alpha1\nkind: VcsAuthToken\nmetadata:\n  name: {}\n  \
         namespace: {}\nspec:\n  connection: {}\n  oauth:\n    refreshToken:\n      name: {}\n      \
         key: {}\n",
        opts.token_name, opts.namespace, opts.connection, opts.secret, opts.key
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> LoginOptions {
        LoginOptions {
            connection: "acme-gitlab".into(),
            namespace: "team-a".into(),
            connection_namespace: None,
            secret: "alice-gitlab".into(),
            key: "refresh_token".into(),
            scope: None,
            token_name: "gitlab".into(),
            browser: false,
            listen: "127.0.0.1:0".parse().unwrap(),
        }
    }

    #[test]
    fn the_printed_token_names_the_grant_the_login_wrote() {
        let token: crate::api::VcsAuthToken =
            serde_saphyr::from_str(&token_yaml(&opts())).expect("valid YAML");
        let grant = token.spec.oauth.unwrap().refresh_token.unwrap();
        assert_eq!(
            (grant.name.as_str(), grant.key.as_str()),
            ("alice-gitlab", "refresh_token")
        );
        assert_eq!(token.spec.connection, "acme-gitlab");
        assert_eq!(token.metadata.namespace.as_deref(), Some("team-a"));
    }

    #[test]
    fn the_pkce_challenge_is_the_unpadded_base64url_sha256_of_the_verifier() {
        // Expected values from Python: base64.urlsafe_b64encode(hashlib.sha256(v).digest()).
        let verifier = "dBjftJeZ4CVP-mJ92ZuDVHXHwpP0owVtnEtZmhgZ5RA";
        assert_eq!(
            challenge(verifier),
            "rFrmUUwcACh1s6o40_FXj5QY8EKY_MSmE5rEe_KCypY"
        );
        assert_eq!(challenge(""), "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU");
        let link = authorization_link(
            "https://bitbucket.org/site/oauth2/authorize",
            "key 1",
            "http://127.0.0.1:4000/callback",
            None,
            "s1",
            verifier,
        );
        assert_eq!(
            link,
            "https://bitbucket.org/site/oauth2/authorize?response_type=code&client_id=key+1&redirect_uri=http%3A%2F%2F127.0.0.1%3A4000%2Fcallback&state=s1&code_challenge=rFrmUUwcACh1s6o40_FXj5QY8EKY_MSmE5rEe_KCypY&code_challenge_method=S256"
        );
    }

    #[test]
    fn the_instructions_name_the_url_the_code_and_how_long_it_lives() {
        let device = DeviceCode {
            device_code: "secret-device-code".into(),
            user_code: "WDJB-MJHT".into(),
            verification_uri: "https://gitlab.example.com/oauth/device".into(),
            verification_uri_complete: None,
            expires_in: Duration::from_secs(300),
            interval: Duration::from_secs(5),
        };
        let text = instructions(&device);
        assert_eq!(
            text,
            "To sign in, open https://gitlab.example.com/oauth/device and enter the code WDJB-MJHT (valid for 5 min)."
        );
        assert!(!text.contains("secret-device-code"));
    }
}
