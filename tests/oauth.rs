//! OAuth connections end to end, against a real authorization server nobody here wrote (panva's
//! oidc-provider, testkit::oauth_server) reached at each provider's own token path: a user's
//! grant (from a device flow approved as a person would) in a Secret gives every OAuth kind a
//! working access token in the format builds use; renewal rotates the grant and writes it back;
//! tokens sharing a grant refresh it once; a revoked grant asks for a new sign-in without a retry
//! loop and keeps the still-valid token; client credentials mint without a user. Against the
//! real controllers and a real kube-apiserver.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use patchbay::api::{Condition, ConditionStatus, VcsAuthToken};
use serde_json::{Value, json};
use support::cluster::{Cluster, ROOT, ready_message, reason};
use testkit::oauth_server::{Client, OAuthServer};

/// One application per kind: the server accepts each client with one authentication method,
/// the one that kind's provider uses.
const BASIC: Client = Client {
    id: "basic-app",
    secret: "basic-app-secret",
    method: "client_secret_basic",
};
const POST: Client = Client {
    id: "post-app",
    secret: "post-app-secret",
    method: "client_secret_post",
};

fn is_true(c: &Condition) -> bool {
    c.status == ConditionStatus::True
}

fn connection(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
        "metadata": {"name": name, "namespace": ROOT},
        "spec": spec,
    })
}

fn token(namespace: &str, name: &str, connection: &str, oauth: Value) -> Value {
    json!({
        "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"connection": connection, "oauth": oauth},
    })
}

fn grant_ref(secret: &str) -> Value {
    json!({"refreshToken": {"name": secret, "key": "refresh_token"}})
}

/// The client secret Secret every connection here names.
const CLIENT_SECRETS: &str = "oauth-apps";

/// A connection of `kind` at `server`, for `client`; `token_path` is where its provider sends
/// token requests (the server leads each to its standard endpoint).
fn kind_spec(kind: &str, server: &str) -> (Value, Client) {
    let secret = |key: &str| json!({"name": CLIENT_SECRETS, "key": key});
    match kind {
        "gitlab" => (
            json!({"gitlab": {"serverUrl": server, "applicationId": BASIC.id,
                "secret": secret("basic")}}),
            BASIC,
        ),
        "githubOAuth" => (
            json!({"githubOAuth": {"serverUrl": server, "clientId": POST.id,
                "clientSecret": secret("post")}}),
            POST,
        ),
        "bitbucketCloud" => (
            json!({"bitbucketCloud": {"serverUrl": server, "key": BASIC.id,
                "secret": secret("basic")}}),
            BASIC,
        ),
        "bitbucketServer" => (
            json!({"bitbucketServer": {"serverUrl": server, "clientId": POST.id,
                "clientSecret": secret("post")}}),
            POST,
        ),
        "google" => (
            json!({"google": {"serverUrl": server, "clientId": POST.id,
                "clientSecret": secret("post")}}),
            POST,
        ),
        "jetbrainsSpace" => (
            json!({"jetbrainsSpace": {"serverUrl": server, "clientId": BASIC.id,
                "clientSecret": secret("basic")}}),
            BASIC,
        ),
        "azureDevOpsOAuth" => (
            json!({"azureDevOpsOAuth": {"serverUrl": server, "tenantId": "contoso.example",
                "applicationId": POST.id, "scope": "openid offline_access",
                "clientSecret": secret("post")}}),
            POST,
        ),
        other => panic!("no such kind {other}"),
    }
}

/// Sends a form to the server as `client`, the way it authenticates.
async fn post_form(url: &str, client: &Client, form: &[(&str, &str)]) -> Value {
    let http = reqwest::Client::new();
    let mut fields: Vec<(&str, &str)> = form.to_vec();
    let mut request = http.post(url);
    if client.method == "client_secret_post" {
        fields.extend([("client_id", client.id), ("client_secret", client.secret)]);
    } else {
        request = request.basic_auth(client.id, Some(client.secret));
    }
    let answer = request
        .form(&fields)
        .send()
        .await
        .expect("the server answers");
    let body = answer.bytes().await.expect("a body");
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}

/// A user's grant, as `patchbay login` obtains it: a device flow that `account` approves.
/// Returns the refresh token.
async fn device_grant(server: &OAuthServer, client: &Client, account: &str) -> String {
    let url = server.device_authorization_url();
    let started = post_form(&url, client, &[("scope", "openid offline_access")]).await;
    let user_code = started["user_code"].as_str().expect("a user code");
    let device_code = started["device_code"].as_str().expect("a device code");
    server.approve(user_code, account).await.expect("approved");
    let grant = "urn:ietf:params:oauth:grant-type:device_code";
    let tokens = post_form(
        &server.token_url(),
        client,
        &[("grant_type", grant), ("device_code", device_code)],
    )
    .await;
    (tokens["refresh_token"].as_str())
        .unwrap_or_else(|| panic!("a refresh token: {tokens}"))
        .to_owned()
}

/// What the server's introspection endpoint says of `token`: `(active, sub)`.
async fn introspect(server: &OAuthServer, client: &Client, token: &str) -> (bool, Option<String>) {
    let url = format!("{}/token/introspection", server.url());
    let answer = post_form(&url, client, &[("token", token)]).await;
    let sub = answer["sub"].as_str().map(str::to_owned);
    (answer["active"] == json!(true), sub)
}

async fn secret_data(cluster: &Cluster, namespace: &str, name: &str) -> Value {
    let data = cluster
        .secret_text(namespace, name)
        .await
        .expect("the Secret exists");
    serde_json::to_value(data).unwrap()
}

async fn start(ttl: Duration) -> (OAuthServer, Cluster) {
    let server = OAuthServer::start(&[BASIC, POST], ttl)
        .await
        .expect("the OAuth server starts");
    let cluster = Cluster::start().await;
    cluster.namespace("team", Some(ROOT)).await;
    let secrets = [("basic", BASIC.secret), ("post", POST.secret)];
    cluster.secret(ROOT, CLIENT_SECRETS, &secrets).await;
    (server, cluster)
}

async fn ask_renewal(cluster: &Cluster, namespace: &str, name: &str, at: &str) {
    let api: Api<VcsAuthToken> = cluster.api(namespace);
    let ask = json!({"metadata": {"annotations": {"patchbay.dev/renew-requested-at": at}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&ask))
        .await
        .unwrap();
}

fn token_id(t: &VcsAuthToken) -> String {
    t.status
        .as_ref()
        .and_then(|s| s.token_id.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn every_oauth_kind_turns_a_users_grant_into_a_working_access_token_in_its_format() {
    let (server, cluster) = start(Duration::from_secs(600)).await;
    let kinds = [
        ("gitlab", Some("oauth2")),
        ("githubOAuth", Some("x-access-token")),
        ("bitbucketCloud", Some("x-token-auth")),
        ("bitbucketServer", None),
        ("google", None),
        ("jetbrainsSpace", None),
        ("azureDevOpsOAuth", None),
    ];
    for (kind, _) in kinds {
        let (spec, client) = kind_spec(kind, server.url());
        let name = kind.to_lowercase();
        cluster.apply(connection(&name, spec)).await;
        let rt = device_grant(&server, &client, &format!("user-of-{name}")).await;
        // Stored as `kubectl create secret --from-file` would: with a trailing newline.
        let stored = format!("{rt}\n");
        cluster
            .secret(
                "team",
                &format!("{name}-grant"),
                &[("refresh_token", &stored)],
            )
            .await;
        let grant = grant_ref(&format!("{name}-grant"));
        cluster.apply(token("team", &name, &name, grant)).await;
    }
    for (kind, username) in kinds {
        let name = kind.to_lowercase();
        let (_, client) = kind_spec(kind, server.url());
        let verified = cluster.connection_verified(ROOT, &name, is_true).await;
        assert!(
            verified.message.contains("accepted the client credentials")
                || verified.message.contains("issued a token"),
            "{kind}: {}",
            verified.message
        );
        let t = cluster.token_ready("team", &name, is_true).await;
        let data = secret_data(&cluster, "team", &name).await;
        let access = data["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        let (active, sub) = introspect(&server, &client, &access).await;
        assert!(
            active,
            "{kind}: the server knows the access token patchbay wrote"
        );
        assert_eq!(
            sub.as_deref(),
            Some(format!("user-of-{name}").as_str()),
            "{kind}"
        );
        match username {
            Some(user) => {
                assert_eq!(data["username"], json!(user), "{kind}");
                assert_eq!(data["password"], json!(access), "{kind}");
            }
            None => assert_eq!(
                data["authorization"],
                json!(format!("Bearer {access}")),
                "{kind}"
            ),
        }
        let status = t.status.as_ref().unwrap();
        let lifetime = status
            .expires_at
            .as_ref()
            .unwrap()
            .0
            .duration_since(status.issued_at.as_ref().unwrap().0);
        assert!(
            (595..=600).contains(&lifetime.as_secs()),
            "{kind}: {lifetime:?}"
        );
        // The grant was rotated and the new one stored, with the access token beside it.
        let grant = secret_data(&cluster, "team", &format!("{name}-grant")).await;
        assert_eq!(grant["refresh_token.access-token"], json!(access), "{kind}");
        let late = ready_message(&t).contains("renewed late");
        assert_eq!(
            late,
            matches!(kind, "gitlab" | "githubOAuth"),
            "{kind}: {}",
            ready_message(&t)
        );
    }
    let (refreshed, _) = server.token_requests("refresh_token").await.unwrap();
    assert_eq!(refreshed, kinds.len() as u64, "one refresh per token");
    assert!(cluster.operator_running());
    cluster.stop().await;
}

#[tokio::test]
async fn tokens_sharing_a_grant_refresh_it_once_and_follow_each_renewal() {
    let (server, mut cluster) = start(Duration::from_secs(600)).await;
    let (spec, client) = kind_spec("gitlab", server.url());
    cluster.apply(connection("gitlab", spec)).await;
    let rt = device_grant(&server, &client, "alice").await;
    cluster
        .secret("team", "alice", &[("refresh_token", &rt)])
        .await;
    cluster
        .apply(token("team", "build", "gitlab", grant_ref("alice")))
        .await;
    cluster
        .apply(token("team", "deploy", "gitlab", grant_ref("alice")))
        .await;
    let build = cluster.token_ready("team", "build", is_true).await;
    let deploy = cluster.token_ready("team", "deploy", is_true).await;
    assert_eq!(
        token_id(&build),
        token_id(&deploy),
        "one access token for both"
    );
    let refreshes = async || server.token_requests("refresh_token").await.unwrap().0;
    assert_eq!(refreshes().await, 1, "one refresh for both");

    // A renewal of one refreshes the grant once more; the other follows without a refresh.
    ask_renewal(&cluster, "team", "build", "2026-12-02T10:00:00Z").await;
    let before = token_id(&build);
    let what = "both tokens on the renewed access token";
    let (build, deploy) = testkit::wait::observe(30, what, || async {
        let b = cluster.token_ready("team", "build", is_true).await;
        let d = cluster.token_ready("team", "deploy", is_true).await;
        match token_id(&b) != before && token_id(&b) == token_id(&d) {
            true => Ok((b, d)),
            false => Err(format!("build {} deploy {}", token_id(&b), token_id(&d))),
        }
    })
    .await;
    assert_eq!(refreshes().await, 2, "one more refresh for both");
    let data = secret_data(&cluster, "team", "deploy").await;
    let (active, _) = introspect(&server, &client, data["password"].as_str().unwrap()).await;
    assert!(active);

    // A restarted operator finds everything in place: no refresh, no write.
    let revisions = (
        build.status.unwrap().revision,
        deploy.status.unwrap().revision,
    );
    cluster.restart_controllers().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let b = cluster.token_ready("team", "build", is_true).await;
    let d = cluster.token_ready("team", "deploy", is_true).await;
    assert_eq!(
        (b.status.unwrap().revision, d.status.unwrap().revision),
        revisions
    );
    assert_eq!(refreshes().await, 2, "no refresh after a restart");
    assert!(cluster.operator_running());
    cluster.stop().await;
}

#[tokio::test]
async fn a_revoked_grant_asks_for_a_new_sign_in_once_and_keeps_the_still_valid_token() {
    let (server, cluster) = start(Duration::from_secs(600)).await;
    let (spec, client) = kind_spec("githubOAuth", server.url());
    cluster.apply(connection("github", spec)).await;
    let rt = device_grant(&server, &client, "bob").await;
    cluster
        .secret("team", "bob", &[("refresh_token", &rt)])
        .await;
    cluster
        .apply(token("team", "build", "github", grant_ref("bob")))
        .await;
    let ready = cluster.token_ready("team", "build", is_true).await;
    let before = secret_data(&cluster, "team", "build").await;

    // The user revokes the app's grant; GitHub's errors arrive with HTTP 200.
    let stored = secret_data(&cluster, "team", "bob").await;
    let current = stored["refresh_token"].as_str().unwrap();
    let url = format!("{}/token/revocation", server.url());
    post_form(
        &url,
        &client,
        &[("token", current), ("token_type_hint", "refresh_token")],
    )
    .await;
    let (_, refused_before) = server.token_requests("refresh_token").await.unwrap();

    ask_renewal(&cluster, "team", "build", "2026-12-02T11:00:00Z").await;
    let failing = cluster
        .token_ready("team", "build", reason("RenewalFailing"))
        .await;
    let message = ready_message(&failing);
    assert!(
        message.contains("ReauthorizationRequired") && message.contains("patchbay login"),
        "{message}"
    );
    assert!(message.contains("stays valid"), "{message}");
    let stalled = failing
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .cloned();
    assert_eq!(
        stalled.map(|c| c.reason),
        Some("ReauthorizationRequired".to_string())
    );
    assert_eq!(
        secret_data(&cluster, "team", "build").await,
        before,
        "the valid token stays"
    );
    assert_eq!(token_id(&failing), token_id(&ready));

    // No retry loop: the grant is not tried again until it changes.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let (_, refused) = server.token_requests("refresh_token").await.unwrap();
    assert_eq!(refused, refused_before + 1, "exactly one refused refresh");

    // A new sign-in stored in the Secret heals it at once.
    let fresh = device_grant(&server, &client, "bob").await;
    cluster
        .secret("team", "bob", &[("refresh_token", &fresh)])
        .await;
    let what = "the token on a new access token";
    testkit::wait::observe(30, what, || async {
        let t = cluster.token_ready("team", "build", is_true).await;
        let ok = ready_message(&t).starts_with("minted") && token_id(&t) != token_id(&ready);
        ok.then_some(()).ok_or_else(|| ready_message(&t))
    })
    .await;
    assert!(cluster.operator_running());
    cluster.stop().await;
}

#[tokio::test]
async fn client_credentials_mint_without_a_user_where_the_provider_offers_them() {
    let (server, cluster) = start(Duration::from_secs(300)).await;
    for kind in ["jetbrainsSpace", "bitbucketCloud", "azureDevOpsOAuth"] {
        let (mut spec, _) = kind_spec(kind, server.url());
        // The application's own identity goes below its namespace only where it says so.
        spec["copySecretToSubProjects"] = json!(true);
        let name = kind.to_lowercase();
        cluster.apply(connection(&name, spec)).await;
        cluster.apply(token("team", &name, &name, json!({}))).await;
    }
    let (spec, _) = kind_spec("jetbrainsSpace", server.url());
    cluster.apply(connection("space-home", spec)).await;
    cluster
        .apply(token("team", "borrowed", "space-home", json!({})))
        .await;
    cluster
        .apply(token(ROOT, "at-home", "space-home", json!({})))
        .await;
    let chosen = json!({"scope": "https://graph.microsoft.com/.default"});
    cluster
        .apply(token("team", "chosen", "azuredevopsoauth", chosen))
        .await;
    for kind in ["jetbrainsSpace", "bitbucketCloud", "azureDevOpsOAuth"] {
        let name = kind.to_lowercase();
        let (_, client) = kind_spec(kind, server.url());
        let verified = cluster.connection_verified(ROOT, &name, is_true).await;
        assert!(
            verified.message.contains("issued a token"),
            "{kind}: {}",
            verified.message
        );
        cluster.token_ready("team", &name, is_true).await;
        let data = secret_data(&cluster, "team", &name).await;
        let (active, sub) =
            introspect(&server, &client, data["access_token"].as_str().unwrap()).await;
        assert!(active, "{kind}");
        assert_eq!(sub, None, "{kind}: no user behind it");
    }
    cluster.token_ready(ROOT, "at-home", is_true).await;
    let borrowed = cluster
        .token_ready("team", "borrowed", reason("CopyNotAllowed"))
        .await;
    assert!(
        ready_message(&borrowed).contains("application's own token"),
        "{}",
        ready_message(&borrowed)
    );
    // A token cannot choose what the application's own token is for (in Entra ID the scope
    // names the service).
    let chosen = cluster
        .token_ready("team", "chosen", reason("InvalidSpec"))
        .await;
    assert!(
        ready_message(&chosen).starts_with("spec.oauth.scope:"),
        "{}",
        ready_message(&chosen)
    );
    // Kinds without client credentials say what they need instead.
    let (spec, _) = kind_spec("gitlab", server.url());
    cluster.apply(connection("gitlab", spec)).await;
    cluster
        .apply(token("team", "nouser", "gitlab", json!({})))
        .await;
    let refused = cluster
        .token_ready("team", "nouser", reason("InvalidSpec"))
        .await;
    assert!(
        ready_message(&refused).contains("spec.oauth.refreshToken"),
        "{}",
        ready_message(&refused)
    );
    assert!(
        ready_message(&refused).contains("patchbay login gitlab"),
        "{}",
        ready_message(&refused)
    );
    let secrets: Api<Secret> = cluster.api("team");
    assert!(secrets.get_opt("nouser").await.unwrap().is_none());
    assert!(cluster.operator_running());
    cluster.stop().await;
}

#[tokio::test]
async fn patchbay_login_completes_a_device_flow_and_the_token_it_prints_becomes_ready() {
    let (server, cluster) = start(Duration::from_secs(600)).await;
    let (spec, client) = kind_spec("gitlab", server.url());
    cluster.apply(connection("acme-gitlab", spec)).await;
    cluster
        .connection_verified(ROOT, "acme-gitlab", is_true)
        .await;
    let kubeconfig = (cluster.server)
        .kubeconfig_path(testkit::envtest::Identity::Admin)
        .expect("a kubeconfig for the test's server");
    let team = cluster.ns("team");
    let login = std::process::Command::new(env!("CARGO_BIN_EXE_patchbay"))
        .args([
            "login",
            "acme-gitlab",
            "--namespace",
            &team,
            "--secret",
            "carol-gitlab",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("patchbay login starts");
    // Carol approves the code in her browser once patchbay shows it.
    let approved = testkit::wait::observe(30, "a pending device code to approve", || async {
        match server.approve_client(client.id, "carol").await {
            Ok(true) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    approved.await;
    let out = tokio::task::spawn_blocking(move || login.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("To sign in, open http://127.0.0.1:"),
        "{stderr}"
    );
    assert!(stderr.contains("and enter the code "), "{stderr}");
    let printed: Value = serde_saphyr::from_str(&String::from_utf8_lossy(&out.stdout))
        .expect("patchbay login prints a VcsAuthToken");
    assert_eq!(
        printed["spec"]["oauth"]["refreshToken"]["name"],
        "carol-gitlab"
    );
    let grant = secret_data(&cluster, "team", "carol-gitlab").await;
    let refresh_token = grant["refresh_token"].as_str().unwrap();
    assert!(
        !refresh_token.is_empty() && !stderr.contains(refresh_token),
        "{stderr}"
    );

    // What it printed is what a person applies; patchbay keeps the token fresh from the grant.
    let mut token = printed.clone();
    token["metadata"]["namespace"] = json!("team");
    cluster.apply(token).await;
    cluster.token_ready("team", "acme-gitlab", is_true).await;
    let data = secret_data(&cluster, "team", "acme-gitlab").await;
    let (active, sub) = introspect(&server, &client, data["password"].as_str().unwrap()).await;
    assert!(active);
    assert_eq!(sub.as_deref(), Some("carol"));

    // A connection that is not an OAuth application is refused with what login is for.
    cluster
        .secret(ROOT, "slack", &[("bot-token", "xoxb-1")])
        .await;
    cluster
        .apply(connection(
            "slack",
            json!({"slack": {"clientId": "c",
            "clientSecret": {"name": "slack", "key": "bot-token"},
            "botToken": {"name": "slack", "key": "bot-token"}}}),
        ))
        .await;
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_patchbay"))
        .args(["login", "slack", "--namespace", &team])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("is a slack connection; patchbay login signs in to OAuth"),
        "{stderr}"
    );
    cluster.stop().await;
}

/// A ValidatingAdmissionPolicy, bound cluster-wide, that refuses every update of Secret `name`
/// in `namespace` (real name) that changes its `refresh_token` key: the in-flight marker goes
/// in, a rotated grant does not, as the API server would refuse writes in an outage or under a
/// policy. Returns the binding's name for removal.
async fn refuse_new_refresh_tokens(cluster: &Cluster, namespace: &str, name: &str) -> String {
    let keeps = "has(oldObject.data) && has(object.data) && 'refresh_token' in object.data \
        && object.data['refresh_token'] == oldObject.data['refresh_token']";
    refuse_updates(cluster, namespace, name, keeps).await
}

/// Refuses an update of Secret `name` in `namespace` unless `allowed` (a CEL expression over
/// `object` and `oldObject`) holds.
async fn refuse_updates(cluster: &Cluster, namespace: &str, name: &str, allowed: &str) -> String {
    let policy = format!("freeze-{namespace}-{name}");
    let rule = format!(
        "object.metadata.namespace != '{namespace}' || object.metadata.name != '{name}' || ({allowed})"
    );
    let objects = [
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": policy},
            "spec": {"failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                    "operations": ["UPDATE"], "resources": ["secrets"]}]},
                "validations": [{"expression": rule, "message": "this Secret is frozen"}]}}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": policy},
            "spec": {"policyName": policy, "validationActions": ["Deny"]}}),
    ];
    for object in objects {
        support::cluster::apply_as(&cluster.client, &object)
            .await
            .unwrap();
    }
    // In force once a dry-run update that changes the refresh token is refused.
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), namespace);
    testkit::wait::observe(30, "the policy to take effect", || async {
        let mut secret = secrets.get(name).await.map_err(|e| e.to_string())?;
        let data = secret.data.get_or_insert_with(Default::default);
        data.insert(
            "refresh_token".into(),
            k8s_openapi::ByteString(b"dry-run".to_vec()),
        );
        let dry = kube::api::PostParams {
            dry_run: true,
            ..Default::default()
        };
        match secrets.replace(name, &dry, &secret).await {
            Err(kube::Error::Api(e)) if e.message.contains("frozen") => Ok(()),
            other => Err(format!("{:?}", other.map(|_| "allowed"))),
        }
    })
    .await;
    policy
}

#[tokio::test]
async fn a_rotated_grant_that_cannot_be_stored_is_kept_and_stored_before_the_grant_is_used_again() {
    let (server, cluster) = start(Duration::from_secs(600)).await;
    let (spec, client) = kind_spec("gitlab", server.url());
    cluster.apply(connection("gitlab", spec)).await;
    let rt = device_grant(&server, &client, "dave").await;
    cluster
        .secret("team", "dave", &[("refresh_token", &rt)])
        .await;
    cluster
        .apply(token("team", "build", "gitlab", grant_ref("dave")))
        .await;
    let ready = cluster.token_ready("team", "build", is_true).await;
    let refreshes = async || server.token_requests("refresh_token").await.unwrap().0;
    assert_eq!(refreshes().await, 1);
    let before = secret_data(&cluster, "team", "build").await;

    // The API server refuses to store a new refresh token; a renewal is asked for.
    let policy = refuse_new_refresh_tokens(&cluster, &cluster.ns("team"), "dave").await;
    ask_renewal(&cluster, "team", "build", "2026-12-02T12:00:00Z").await;
    let failing = cluster
        .token_ready("team", "build", reason("RenewalFailing"))
        .await;
    let message = ready_message(&failing);
    assert!(message.contains("storing it failed"), "{message}");
    assert!(message.contains("kept in memory"), "{message}");
    assert_eq!(refreshes().await, 2, "the provider rotated the grant once");
    assert_eq!(
        secret_data(&cluster, "team", "build").await,
        before,
        "nothing new is published before the grant is stored"
    );
    // Retries try the write, never the provider with the refresh token it consumed.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(
        refreshes().await,
        2,
        "no second refresh while the write fails"
    );

    // The write goes through again: the kept grant is stored, and its access token published.
    let api: Api<kube::core::DynamicObject> = Api::all_with(
        cluster.client.clone(),
        &kube::discovery::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicyBinding",
        )),
    );
    api.delete(&policy, &Default::default()).await.unwrap();
    let what = "the renewed access token published";
    let renewed = testkit::wait::observe(60, what, || async {
        let t = cluster.token_ready("team", "build", |_| true).await;
        let ok = ready_message(&t).starts_with("minted") && token_id(&t) != token_id(&ready);
        ok.then_some(t.clone()).ok_or_else(|| ready_message(&t))
    })
    .await;
    assert_eq!(
        refreshes().await,
        2,
        "the stored grant's access token, no new refresh"
    );
    let grant = secret_data(&cluster, "team", "dave").await;
    assert_ne!(
        grant["refresh_token"],
        json!(rt),
        "the rotated grant is stored"
    );
    let data = secret_data(&cluster, "team", "build").await;
    assert_eq!(grant["refresh_token.access-token"], data["password"]);
    let (active, _) = introspect(&server, &client, data["password"].as_str().unwrap()).await;
    assert!(active);
    // And the stored grant works: one more renewal refreshes with it.
    ask_renewal(&cluster, "team", "build", "2026-12-02T12:05:00Z").await;
    let what = "a renewal with the stored grant";
    testkit::wait::observe(60, what, || async {
        let t = cluster.token_ready("team", "build", is_true).await;
        let ok = token_id(&t) != token_id(&renewed) && ready_message(&t).starts_with("minted");
        ok.then_some(()).ok_or_else(|| ready_message(&t))
    })
    .await;
    assert_eq!(refreshes().await, 3);
    assert!(cluster.operator_running());
    cluster.stop().await;
}

#[tokio::test]
async fn patchbay_login_signs_in_through_the_browser_with_pkce_where_there_is_no_device_grant() {
    let (server, cluster) = start(Duration::from_secs(600)).await;
    let (spec, client) = kind_spec("bitbucketCloud", server.url());
    cluster.apply(connection("bitbucket", spec)).await;
    cluster.connection_ready(ROOT, "bitbucket", is_true).await;
    let kubeconfig = (cluster.server)
        .kubeconfig_path(testkit::envtest::Identity::Admin)
        .expect("a kubeconfig for the test's server");
    let team = cluster.ns("team");
    let mut login = std::process::Command::new(env!("CARGO_BIN_EXE_patchbay"))
        .args([
            "login",
            "bitbucket",
            "--namespace",
            &team,
            "--secret",
            "erin-bitbucket",
        ])
        .args(["--scope", "openid offline_access"])
        .env("KUBECONFIG", &kubeconfig)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("patchbay login starts");
    let stderr = login.stderr.take().unwrap();
    let (said, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = said.send(line);
        }
    });
    let url = loop {
        let line = lines.recv().await.expect("patchbay says where to sign in");
        if let Some(url) = line.strip_prefix("To sign in, open ") {
            break url.to_owned();
        }
    };
    assert!(
        url.starts_with(&format!("{}/site/oauth2/authorize?", server.url())),
        "{url}"
    );
    assert!(url.contains("code_challenge_method=S256"), "{url}");

    // Erin signs in through the server's own pages; her browser follows the redirect back.
    let back = server.authorize(&url, "erin").await.expect("signed in");
    assert!(
        back.starts_with("http://127.0.0.1:") && back.contains("/callback?code="),
        "{back}"
    );
    let forged = back.replace("state=", "state=x");
    assert_eq!(reqwest::get(&forged).await.unwrap().status(), 400);
    assert_eq!(reqwest::get(&back).await.unwrap().status(), 200);
    let out = tokio::task::spawn_blocking(move || login.wait_with_output().unwrap())
        .await
        .unwrap();
    let mut rest = Vec::new();
    while let Ok(line) = lines.try_recv() {
        rest.push(line);
    }
    assert!(out.status.success(), "{}", rest.join("\n"));
    let printed: Value = serde_saphyr::from_str(&String::from_utf8_lossy(&out.stdout))
        .expect("patchbay login prints a VcsAuthToken");
    let mut token = printed.clone();
    token["metadata"]["namespace"] = json!("team");
    cluster.apply(token).await;
    cluster.token_ready("team", "bitbucket", is_true).await;
    let data = secret_data(&cluster, "team", "bitbucket").await;
    assert_eq!(data["username"], "x-token-auth");
    let (active, sub) = introspect(&server, &client, data["password"].as_str().unwrap()).await;
    assert!(active);
    assert_eq!(sub.as_deref(), Some("erin"));
    cluster.stop().await;
}

#[tokio::test]
async fn an_operator_stopped_before_a_rotated_grant_was_stored_never_presents_the_consumed_token_again()
 {
    let (server, mut cluster) = start(Duration::from_secs(600)).await;
    let (spec, client) = kind_spec("gitlab", server.url());
    cluster.apply(connection("gitlab", spec)).await;
    let rt = device_grant(&server, &client, "frank").await;
    cluster
        .secret("team", "frank", &[("refresh_token", &rt)])
        .await;
    cluster
        .apply(token("team", "build", "gitlab", grant_ref("frank")))
        .await;
    let ready = cluster.token_ready("team", "build", is_true).await;
    let refreshes = async || server.token_requests("refresh_token").await.unwrap();
    let (granted, refused) = refreshes().await;
    assert_eq!(granted, 1);
    let before = secret_data(&cluster, "team", "build").await;

    // The grant Secret takes anything but a new refresh token: the in-flight marker is stored,
    // the provider rotates the grant, and its answer cannot be stored. Then the operator stops:
    // the answer, kept only in memory, is gone.
    let team = cluster.ns("team");
    let policy = refuse_new_refresh_tokens(&cluster, &team, "frank").await;
    ask_renewal(&cluster, "team", "build", "2026-12-02T14:00:00Z").await;
    cluster
        .token_ready("team", "build", reason("RenewalFailing"))
        .await;
    assert_eq!(refreshes().await.0, 2, "the provider rotated the grant");
    let marker = secret_data(&cluster, "team", "frank").await;
    assert!(
        marker["refresh_token.refreshing"]
            .as_str()
            .is_some_and(|m| m.starts_with("sha256:")),
        "{marker}"
    );
    cluster.restart_controllers().await;
    let api: Api<kube::core::DynamicObject> = Api::all_with(
        cluster.client.clone(),
        &kube::discovery::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicyBinding",
        )),
    );
    api.delete(&policy, &Default::default()).await.unwrap();

    // The restarted operator finds the marker for the very refresh token it would send: it
    // asks for a new sign-in instead of presenting a consumed token (which would make the
    // provider revoke the whole grant, the access token builds hold included).
    let what = "a new sign-in asked for";
    let stopped = testkit::wait::observe(30, what, || async {
        let t = cluster.token_ready("team", "build", |_| true).await;
        let m = ready_message(&t);
        m.contains("never stored").then_some(t).ok_or(m)
    })
    .await;
    let message = ready_message(&stopped);
    assert!(
        message.contains("ReauthorizationRequired") && message.contains("patchbay login"),
        "{message}"
    );
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(
        refreshes().await,
        (2, refused),
        "no refresh after the stop, none refused"
    );
    assert_eq!(secret_data(&cluster, "team", "build").await, before);
    let (active, _) = introspect(&server, &client, before["password"].as_str().unwrap()).await;
    assert!(
        active,
        "the access token in builds' hands was not revoked by a replay"
    );
    assert_eq!(token_id(&stopped), token_id(&ready));

    // A new sign-in heals it.
    let fresh = device_grant(&server, &client, "frank").await;
    cluster
        .secret("team", "frank", &[("refresh_token", &fresh)])
        .await;
    testkit::wait::observe(30, "the token on a new access token", || async {
        let t = cluster.token_ready("team", "build", |_| true).await;
        let ok = ready_message(&t).starts_with("minted") && token_id(&t) != token_id(&ready);
        ok.then_some(()).ok_or_else(|| ready_message(&t))
    })
    .await;
    assert!(cluster.operator_running());
    cluster.stop().await;
}
