//! The GitHub simulator over HTTP, as a GitHub App client sees it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use testkit::github::{
    AccountType, AppSpec, Down, Fault, GithubSim, InstallationSpec, Role, SimConfig, app_jwt,
    perms, route,
};
use testkit::keys::RsaKey;

const APP: u64 = 4242;
const PAT: &str = "ghp_alice";

struct World {
    sim: GithubSim,
    key: RsaKey,
    acme: u64,
    http: reqwest::Client,
}

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    i64::try_from(secs).expect("fits")
}

/// acme (organization): widgets, gadgets, secret; the app sees widgets and gadgets with
/// `contents: write`, `issues: read`. alice (user): the app sees all of hers. alice's PAT has
/// write on acme/widgets.
async fn world() -> World {
    let sim = GithubSim::start(SimConfig::default())
        .await
        .expect("simulator starts");
    let key = RsaKey::generate();
    sim.add_app(AppSpec::new(APP, "patchbay-test", &key));
    sim.add_repo("acme", "secret");
    let spec = InstallationSpec::new(APP, "acme")
        .permissions([("contents", "write"), ("issues", "read")])
        .repositories(&["widgets", "gadgets"]);
    let acme = sim.add_installation(spec);
    sim.add_owner("alice", AccountType::User);
    sim.add_repo("alice", "dotfiles");
    sim.add_installation(InstallationSpec::new(APP, "alice"));
    sim.add_user(PAT, "alice");
    sim.grant(PAT, "acme", "widgets", Role::Write);
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    World {
        sim,
        key,
        acme,
        http,
    }
}

/// A JWT signed by jsonwebtoken, the library the operator uses.
fn jwt(key: &RsaKey, claims: Value) -> String {
    let encoding = EncodingKey::from_rsa_pem(key.private_pkcs8_pem().as_bytes()).expect("key");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &encoding).expect("signed")
}

impl World {
    fn app_jwt(&self) -> String {
        jwt(
            &self.key,
            json!({"iat": now() - 60, "exp": now() + 540, "iss": APP}),
        )
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        auth: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self.http.request(method, url);
        if !auth.is_empty() {
            request = request.header("authorization", auth);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("the simulator answers")
    }

    async fn get(&self, path: &str, auth: &str) -> (StatusCode, Value) {
        let response = self
            .call(
                Method::GET,
                &format!("{}{path}", self.sim.url()),
                auth,
                None,
            )
            .await;
        (
            response.status(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn as_app(&self, path: &str) -> (StatusCode, Value) {
        self.get(path, &format!("Bearer {}", self.app_jwt())).await
    }

    async fn mint(&self, body: Value) -> (StatusCode, Value) {
        let url = format!(
            "{}/app/installations/{}/access_tokens",
            self.sim.url(),
            self.acme
        );
        let auth = format!("Bearer {}", self.app_jwt());
        let response = self.call(Method::POST, &url, &auth, Some(body)).await;
        (
            response.status(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn mint_token(&self, body: Value) -> String {
        let (status, body) = self.mint(body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().expect("a token").to_string()
    }
}

#[path = "github_sim/faults.rs"]
mod faults;
#[path = "github_sim/minting.rs"]
mod minting;

#[tokio::test]
async fn a_valid_app_jwt_reads_the_app() {
    let w = world().await;
    let (status, body) = w.as_app("/app").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["id"].as_u64(), body["slug"].as_str()),
        (Some(APP), Some("patchbay-test"))
    );
    let helper = app_jwt(w.key.private_pkcs8_pem(), APP, now()).expect("signed");
    assert_eq!(
        w.get("/app", &format!("Bearer {helper}")).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn each_broken_jwt_rule_is_refused_with_githubs_message() {
    let w = world().await;
    let other = RsaKey::generate();
    let t = now();
    let cases = [
        (
            jwt(&w.key, json!({"iat": t - 660, "exp": t - 60, "iss": APP})),
            401,
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
        ),
        (
            jwt(&w.key, json!({"iat": t - 60, "iss": APP})),
            401,
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
        ),
        (
            jwt(&w.key, json!({"iat": t - 60, "exp": t + 600, "iss": APP})),
            401,
            "'Expiration time' claim ('exp') is too far in the future",
        ),
        (
            jwt(&w.key, json!({"iat": t + 120, "exp": t + 300, "iss": APP})),
            401,
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
        ),
        (
            jwt(
                &w.key,
                json!({"iat": t as f64 - 0.5, "exp": t + 300, "iss": APP}),
            ),
            401,
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
        ),
        (
            jwt(&w.key, json!({"iat": t - 60, "exp": t + 300})),
            401,
            "Missing 'issuer' claim ('iss') in assertion",
        ),
        (
            jwt(
                &w.key,
                json!({"iat": t - 60, "exp": t + 300, "iss": "app-42"}),
            ),
            401,
            "'Issuer' claim ('iss') must be an Integer",
        ),
        (
            jwt(&other, json!({"iat": t - 60, "exp": t + 300, "iss": APP})),
            401,
            "A JSON web token could not be decoded",
        ),
        (
            "not-a-jwt".to_string(),
            401,
            "A JSON web token could not be decoded",
        ),
        (
            jwt(&w.key, json!({"iat": t - 60, "exp": t + 300, "iss": 999})),
            404,
            "Integration not found",
        ),
    ];
    for (token, status, message) in cases {
        let (got, body) = w.get("/app", &format!("Bearer {token}")).await;
        assert_eq!(
            (got.as_u16(), body["message"].as_str()),
            (status, Some(message))
        );
        assert!(body["documentation_url"].is_string());
    }
    let (got, _) = w.get("/app", &format!("token {}", w.app_jwt())).await;
    assert_eq!(
        got,
        StatusCode::UNAUTHORIZED,
        "a JWT needs the Bearer scheme"
    );
    assert_eq!(w.sim.mint_count(), 0);
}

#[tokio::test]
async fn installations_are_found_by_organization_user_and_repository() {
    let w = world().await;
    let id = |body: &Value| body["id"].as_u64();
    let (status, body) = w.as_app("/orgs/acme/installation").await;
    assert_eq!((status, id(&body)), (StatusCode::OK, Some(w.acme)));
    assert_eq!(body["account"]["type"], "Organization");
    assert_eq!(body["repository_selection"], "selected");
    assert_eq!(
        body["permissions"],
        json!({"contents": "write", "issues": "read", "metadata": "read"})
    );
    assert_eq!(
        id(&w.as_app("/users/acme/installation").await.1),
        Some(w.acme)
    );
    assert_eq!(
        id(&w.as_app("/repos/ACME/Widgets/installation").await.1),
        Some(w.acme)
    );
    assert_eq!(
        id(&w.as_app(&format!("/app/installations/{}", w.acme)).await.1),
        Some(w.acme)
    );
    let (status, body) = w.as_app("/users/alice/installation").await;
    assert_eq!(
        (status, body["account"]["type"].as_str()),
        (StatusCode::OK, Some("User"))
    );
    assert_eq!(
        w.as_app("/app/installations")
            .await
            .1
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    for missing in [
        "/orgs/alice/installation",
        "/orgs/nobody/installation",
        "/repos/acme/secret/installation",
        "/repos/acme/nope/installation",
        "/app/installations/1",
    ] {
        let (status, body) = w.as_app(missing).await;
        assert_eq!(
            (status, body["message"].as_str()),
            (StatusCode::NOT_FOUND, Some("Not Found")),
            "{missing}"
        );
    }
}
