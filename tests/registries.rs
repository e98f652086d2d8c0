//! End to end against real registries: the CNCF distribution registry (Debian's
//! `docker-registry`, testkit::registry) with htpasswd and with token authentication, and
//! verdaccio (testkit::verdaccio), an npm registry server. The real clients accept what
//! patchbay writes: crane pushes and pulls with the `.dockerconfigjson`, npm answers `whoami`
//! with the `.npmrc`. Against the real controllers and a real kube-apiserver.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use patchbay::api::{Condition, ConditionStatus, VcsAuthToken};
use serde_json::{Value, json};
use support::cluster::{Cluster, ROOT, eventually, reason};
use testkit::registry::{Auth, Registry, TokenService};
use testkit::verdaccio::Verdaccio;

fn is_true(c: &Condition) -> bool {
    c.status == ConditionStatus::True
}

fn is_false(c: &Condition) -> bool {
    c.status == ConditionStatus::False
}

fn connection(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
        "metadata": {"name": name, "namespace": ROOT},
        "spec": spec,
    })
}

fn token(namespace: &str, name: &str, connection: &str, request: Value) -> Value {
    let mut spec = json!({"connection": connection});
    for (k, v) in request.as_object().into_iter().flatten() {
        spec[k] = v.clone();
    }
    json!({
        "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

fn registry(url: &str, secret: &str) -> Value {
    json!({"dockerRegistry": {"url": url, "username": "ci",
        "password": {"name": secret, "key": "password"}}})
}

/// The crane binary: `$PATCHBAY_CRANE`, else what `scripts/crane` built.
fn crane() -> PathBuf {
    testkit::peer::installed("PATCHBAY_CRANE", "crane")
        .expect("crane: run scripts/crane, or set PATCHBAY_CRANE")
}

/// A directory holding `config.json` = `dockerconfigjson`, as `DOCKER_CONFIG` takes it.
fn docker_config(dir: &Path, name: &str, dockerconfigjson: &str) -> PathBuf {
    let config = dir.join(name);
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.json"), dockerconfigjson).unwrap();
    config
}

/// Runs crane with `config` as its docker config; the output, or the error output. crane runs
/// off the test's runtime thread, which serves the token service crane talks to, and is given
/// a minute.
async fn run_crane(config: &Path, args: &[&str]) -> Result<String, String> {
    let mut command = Command::new(crane());
    command
        .args(args)
        .arg("--insecure")
        .env("DOCKER_CONFIG", config)
        .env_remove("HTTPS_PROXY")
        .env_remove("HTTP_PROXY");
    let run = tokio::task::spawn_blocking(move || command.output().expect("crane runs"));
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .map_err(|_| format!("crane {args:?} did not finish within 60 s"))?
        .expect("crane's thread");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match out.status.success() {
        true => Ok(text(&out.stdout)),
        false => Err(text(&out.stderr)),
    }
}

/// A one-file layer to push.
fn layer(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("hello.txt"), "built by patchbay's tests\n").unwrap();
    let tarball = dir.join("layer.tar.gz");
    let status = Command::new("tar")
        .args([
            "czf",
            tarball.to_str().unwrap(),
            "-C",
            dir.to_str().unwrap(),
            "hello.txt",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    tarball
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("patchbay-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn dockerconfigjson(cluster: &Cluster, namespace: &str, name: &str) -> String {
    let data = cluster
        .secret_text(namespace, name)
        .await
        .expect("the Secret exists");
    data[".dockerconfigjson"].clone()
}

fn status(t: &VcsAuthToken) -> &patchbay::api::VcsAuthTokenStatus {
    t.status.as_ref().expect("status")
}

#[tokio::test]
async fn a_registry_login_is_tested_live_and_its_dockerconfigjson_pushes_with_crane() {
    let users = vec![("ci".to_string(), "good-password".to_string())];
    let reg = Registry::start(Auth::Htpasswd(users))
        .await
        .expect("the registry starts");
    let cluster = Cluster::start().await;
    let dir = scratch("htpasswd");
    cluster
        .secret(ROOT, "good", &[("password", "good-password")])
        .await;
    cluster.secret(ROOT, "bad", &[("password", "wrong")]).await;
    cluster
        .apply(connection("registry", registry(&reg.url(), "good")))
        .await;
    cluster
        .apply(connection("wrong", registry(&reg.url(), "bad")))
        .await;

    let ok = cluster.connection_verified(ROOT, "registry", is_true).await;
    assert!(ok.message.contains("basic auth"), "{}", ok.message);
    let bad = cluster.connection_verified(ROOT, "wrong", is_false).await;
    assert_eq!(bad.reason, "AuthenticationFailed", "{}", bad.message);
    assert!(bad.message.contains("\"ci\""), "{}", bad.message);

    // The registry enforces the login: crane without it is refused.
    let image = format!("{}/team/app:v1", reg.host());
    let tarball = layer(&dir);
    let empty = docker_config(&dir, "empty", "{}");
    let refused = run_crane(
        &empty,
        &["append", "-f", tarball.to_str().unwrap(), "-t", &image],
    )
    .await;
    assert!(refused.is_err(), "a push without the login must fail");

    cluster
        .apply(token(ROOT, "push", "registry", json!({})))
        .await;
    let t = cluster.token_ready(ROOT, "push", is_true).await;
    assert_eq!(status(&t).expires_at, None, "a login does not expire");
    let login = docker_config(
        &dir,
        "login",
        &dockerconfigjson(&cluster, ROOT, "push").await,
    );
    run_crane(
        &login,
        &["append", "-f", tarball.to_str().unwrap(), "-t", &image],
    )
    .await
    .expect("crane pushes with the projected login");
    let tags = run_crane(&login, &["ls", &format!("{}/team/app", reg.host())])
        .await
        .unwrap();
    assert_eq!(tags.trim(), "v1");

    // No token service: a scoped token cannot be had, and the token says why.
    cluster
        .apply(token(
            ROOT,
            "scoped",
            "registry",
            json!({"registry": {"scopes": ["repository:team/app:pull"]}}),
        ))
        .await;
    cluster
        .token_ready(ROOT, "scoped", reason("TokenServiceNotAvailable"))
        .await;
    assert!(cluster.operator_running());
    cluster.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_token_registry_issues_scoped_short_lived_tokens_that_crane_uses_and_patchbay_renews() {
    let service = TokenService::new(&[("ci", "good-password")], Duration::from_secs(30));
    let reg = Registry::start(Auth::Token(service.clone()))
        .await
        .expect("the registry starts");
    let cluster = Cluster::start().await;
    cluster.namespace("team", Some(ROOT)).await;
    let dir = scratch("token");
    cluster
        .secret(ROOT, "good", &[("password", "good-password")])
        .await;
    cluster.secret(ROOT, "bad", &[("password", "wrong")]).await;
    cluster
        .apply(connection("registry", registry(&reg.url(), "good")))
        .await;
    cluster
        .apply(connection("wrong", registry(&reg.url(), "bad")))
        .await;
    let ok = cluster.connection_verified(ROOT, "registry", is_true).await;
    assert!(ok.message.contains("token service"), "{}", ok.message);
    let bad = cluster.connection_verified(ROOT, "wrong", is_false).await;
    assert_eq!(bad.reason, "AuthenticationFailed", "{}", bad.message);

    // The login itself: crane does the token dance with it and pushes.
    let image = format!("{}/team/app:v1", reg.host());
    let tarball = layer(&dir);
    cluster
        .apply(token(ROOT, "login", "registry", json!({})))
        .await;
    cluster.token_ready(ROOT, "login", is_true).await;
    let login = docker_config(
        &dir,
        "login",
        &dockerconfigjson(&cluster, ROOT, "login").await,
    );
    run_crane(
        &login,
        &["append", "-f", tarball.to_str().unwrap(), "-t", &image],
    )
    .await
    .expect("crane pushes with the projected login");

    // A child namespace may not have the login, but may have a scoped, short-lived token.
    cluster
        .apply(token("team", "login", "registry", json!({})))
        .await;
    cluster
        .token_ready("team", "login", reason("CopyNotAllowed"))
        .await;
    let pull = json!({"registry": {"scopes": ["repository:team/app:pull"]}});
    cluster.apply(token("team", "pull", "registry", pull)).await;
    let t = cluster.token_ready("team", "pull", is_true).await;
    let s = status(&t);
    let lifetime = s
        .expires_at
        .as_ref()
        .unwrap()
        .0
        .duration_since(s.issued_at.as_ref().unwrap().0);
    assert!(
        (28..=31).contains(&lifetime.as_secs()),
        "the service's expiry: {lifetime:?}"
    );
    assert_eq!(
        s.permissions.get("repository:team/app").as_deref(),
        Some("pull")
    );
    let config = dockerconfigjson(&cluster, "team", "pull").await;
    let parsed: Value = serde_json::from_str(&config).unwrap();
    assert!(
        parsed["auths"][reg.host()]["registrytoken"].is_string(),
        "{parsed}"
    );
    assert!(
        !config.contains("good-password"),
        "the login never leaves its namespace"
    );
    let bearer = docker_config(&dir, "bearer", &config);
    let manifest = run_crane(&bearer, &["manifest", &image])
        .await
        .expect("crane pulls with the token");
    assert!(manifest.contains("schemaVersion"), "{manifest}");
    let pushed = run_crane(
        &bearer,
        &[
            "append",
            "-f",
            tarball.to_str().unwrap(),
            "-t",
            &format!("{}/team/app:v2", reg.host()),
        ],
    )
    .await;
    assert!(pushed.is_err(), "a pull-only token cannot push");

    // Renewed before the service's expiry, from that expiry.
    eventually(40, "the scoped token is renewed", || async {
        let t: VcsAuthToken = cluster.api("team").get("pull").await.ok()?;
        (status(&t).revision >= 2).then_some(())
    })
    .await;
    assert!(
        service
            .issued()
            .iter()
            .any(|s| s == "repository:team/app:pull")
    );
    assert!(cluster.operator_running());
    cluster.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_npm_token_is_tested_with_whoami_and_its_npmrc_works_with_npm() {
    let verdaccio = Verdaccio::start().await.expect("verdaccio starts");
    let npm_token = verdaccio
        .add_user("ci-publisher", "a-good-password")
        .await
        .unwrap();
    let cluster = Cluster::start().await;
    let dir = scratch("npm");
    cluster
        .secret(
            ROOT,
            "npm",
            &[("token", &npm_token), ("bad", "not-a-token")],
        )
        .await;
    let npm = |key: Option<&str>| {
        let mut block = json!({"registryUrl": verdaccio.url()});
        if let Some(key) = key {
            block["accessToken"] = json!({"name": "npm", "key": key});
        }
        json!({"npmRegistry": block})
    };
    cluster.apply(connection("npm", npm(Some("token")))).await;
    cluster.apply(connection("npm-bad", npm(Some("bad")))).await;
    cluster.apply(connection("npm-anonymous", npm(None))).await;
    let ok = cluster.connection_verified(ROOT, "npm", is_true).await;
    assert!(ok.message.contains("ci-publisher"), "{}", ok.message);
    let bad = cluster.connection_verified(ROOT, "npm-bad", is_false).await;
    assert_eq!(bad.reason, "AuthenticationFailed", "{}", bad.message);
    let anonymous = cluster
        .connection_verified(ROOT, "npm-anonymous", is_true)
        .await;
    assert!(
        anonymous.message.contains("anonymous"),
        "{}",
        anonymous.message
    );

    cluster.apply(token(ROOT, "npmrc", "npm", json!({}))).await;
    cluster.token_ready(ROOT, "npmrc", is_true).await;
    let npmrc = cluster.secret_text(ROOT, "npmrc").await.unwrap()[".npmrc"].clone();
    let file = dir.join(".npmrc");
    std::fs::write(&file, &npmrc).unwrap();
    let out = Command::new("npm")
        .args(["whoami", "--userconfig", file.to_str().unwrap()])
        .env_remove("NPM_CONFIG_REGISTRY")
        .env_remove("npm_config_registry")
        .current_dir(&dir)
        .output()
        .expect("npm runs");
    assert!(
        out.status.success(),
        "npm whoami: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ci-publisher");
    assert!(cluster.operator_running());
    cluster.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}
