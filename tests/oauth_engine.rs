//! The OAuth engine's reading of token answers (patchbay::providers::oauth), proved against a
//! real authorization server nobody here wrote (panva's oidc-provider, testkit::oauth_server):
//! client credentials, a device grant approved as a person would, refresh-token rotation, and
//! the reuse of a rotated refresh token, which must read as `ReauthorizationRequired` so that
//! patchbay never retries it.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use patchbay::providers::ProviderError;
use patchbay::providers::http::{self, AUTHENTICATION_FAILED};
use patchbay::providers::oauth::{REAUTHORIZATION_REQUIRED, Tokens, read_answer};
use testkit::oauth_server::{Client, OAuthServer};

const CLIENT: Client = Client {
    id: "patchbay-ci",
    secret: "a-client-secret",
    method: "client_secret_basic",
};

/// Posts `form` to `url` as `client`, the way patchbay's providers do (client_secret_basic),
/// and reads the answer with the engine.
async fn token_request(
    url: &str,
    client: &Client,
    form: &[(&str, &str)],
) -> Result<Tokens, ProviderError> {
    let http_client = http::client(None).expect("a client");
    let request = (http_client.post(url))
        .basic_auth(client.id, Some(client.secret))
        .form(form);
    let answer = http::send(request, url).await?;
    read_answer(answer.status, &answer.body, "the token endpoint")
}

#[tokio::test]
async fn client_credentials_give_an_access_token_whose_expiry_counts_from_the_request() {
    let server = OAuthServer::start(&[CLIENT], Duration::from_secs(120))
        .await
        .expect("the OAuth server starts");
    let sent = Timestamp::now();
    let tokens = token_request(
        &server.token_url(),
        &CLIENT,
        &[("grant_type", "client_credentials")],
    )
    .await
    .expect("client credentials are granted");
    assert!(!tokens.access_token.is_empty());
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.expires_in, Duration::from_secs(120));
    assert_eq!(tokens.refresh_token, None, "no user, no refresh token");
    let lifetime = tokens.expires_at(sent).duration_since(sent);
    assert_eq!(lifetime.as_secs(), 120);

    let wrong = Client {
        secret: "not-the-secret",
        ..CLIENT
    };
    let refused = token_request(
        &server.token_url(),
        &wrong,
        &[("grant_type", "client_credentials")],
    )
    .await
    .unwrap_err();
    assert_eq!(refused.reason, AUTHENTICATION_FAILED, "{}", refused.message);
    assert!(refused.permanent);
    assert!(!refused.message.contains("not-the-secret"));
}

#[tokio::test]
async fn a_device_grant_refreshes_with_rotation_and_a_replayed_refresh_token_needs_a_new_sign_in() {
    let server = OAuthServer::start(&[CLIENT], Duration::from_secs(60))
        .await
        .expect("the OAuth server starts");
    let http_client = http::client(None).unwrap();
    let url = server.device_authorization_url();
    let request = (http_client.post(&url))
        .basic_auth(CLIENT.id, Some(CLIENT.secret))
        .form(&[("scope", "openid offline_access")]);
    let device = http::send(request, &url).await.unwrap().json();
    let (device_code, user_code) = (
        device["device_code"].as_str().unwrap().to_owned(),
        device["user_code"].as_str().unwrap().to_owned(),
    );
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", device_code.as_str()),
    ];

    // Before the person approves, the answer is an error to wait on, not a lost grant.
    let pending = token_request(&server.token_url(), &CLIENT, &poll)
        .await
        .unwrap_err();
    assert!(!pending.permanent, "{pending:?}");
    assert!(
        pending.message.contains("authorization_pending"),
        "{}",
        pending.message
    );

    server.approve(&user_code, "alice").await.unwrap();
    let first = token_request(&server.token_url(), &CLIENT, &poll)
        .await
        .expect("the approved device code gives tokens");
    let refresh = first.refresh_token.clone().expect("a refresh token");

    // Each refresh rotates the refresh token.
    let second = token_request(
        &server.token_url(),
        &CLIENT,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await
    .expect("the refresh token is accepted once");
    let rotated = second
        .refresh_token
        .clone()
        .expect("a rotated refresh token");
    assert_ne!(rotated, refresh);
    assert_ne!(second.access_token, first.access_token);

    // Replaying the old one is a lost grant: permanent, never retried, and it says what to do.
    let replayed = token_request(
        &server.token_url(),
        &CLIENT,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await
    .unwrap_err();
    assert_eq!(
        replayed.reason, REAUTHORIZATION_REQUIRED,
        "{}",
        replayed.message
    );
    assert!(replayed.permanent);
    assert!(
        replayed.message.contains("patchbay login"),
        "{}",
        replayed.message
    );
    assert!(!replayed.message.contains(&refresh));

    // Reuse detection revoked the whole family, the newest refresh token included.
    let family = token_request(
        &server.token_url(),
        &CLIENT,
        &[("grant_type", "refresh_token"), ("refresh_token", &rotated)],
    )
    .await
    .unwrap_err();
    assert_eq!(
        family.reason, REAUTHORIZATION_REQUIRED,
        "{}",
        family.message
    );
}
