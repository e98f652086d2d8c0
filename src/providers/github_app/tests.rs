use serde_json::json;
use testkit::keys::RsaKey;

use super::*;
use crate::providers::testing::{secrets, spec};
use crate::providers::validate;

fn app(extra: serde_json::Value) -> ConnectionSpec {
    let mut block = json!({"appId": "123456", "privateKey": {"name": "app", "key": "key.pem"}});
    block
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    spec(json!({ "githubApp": block }))
}

#[test]
fn github_com_in_any_spelling_uses_the_public_api() {
    for url in [
        "https://github.com",
        "https://github.com/",
        "https://www.github.com",
        "https://api.github.com",
    ] {
        let e = github_endpoints("f", url).unwrap();
        assert_eq!(
            (e.web.as_str(), e.api.as_str(), e.enterprise),
            ("https://github.com", "https://api.github.com", false)
        );
    }
}

#[test]
fn an_enterprise_server_api_lives_under_api_v3() {
    for url in [
        "https://ghe.example.com",
        "https://ghe.example.com/",
        "https://ghe.example.com/api/v3/",
    ] {
        let e = github_endpoints("f", url).unwrap();
        assert_eq!(e.api, "https://ghe.example.com/api/v3");
        assert_eq!(e.web, "https://ghe.example.com");
        assert!(e.enterprise);
    }
}

#[test]
fn the_owner_is_the_first_path_segment_on_the_same_server() {
    let e = github_endpoints("f", "https://github.com").unwrap();
    assert_eq!(
        owner_from_url(&e, "https://github.com/acme").unwrap(),
        "acme"
    );
    assert_eq!(
        owner_from_url(&e, "https://github.com/acme/").unwrap(),
        "acme"
    );
    let err = owner_from_url(&e, "https://gitlab.com/acme").unwrap_err();
    assert_eq!(err.reason, "InvalidOwnerUrl");
    assert!(owner_from_url(&e, "https://github.com/acme/repo").is_err());
    assert!(owner_from_url(&e, "https://github.com").is_err());
}

#[test]
fn pkcs1_and_pkcs8_keys_are_accepted() {
    let key = RsaKey::generate();
    for pem in [key.private_pkcs1_pem(), key.private_pkcs8_pem().to_string()] {
        let values = secrets(&[("app", "key.pem", &pem)]);
        let validated = validate(
            &app(json!({"ownerUrl": "https://github.com/acme"})),
            &values,
        )
        .unwrap();
        assert_eq!(
            validated.summary,
            "GitHub App 123456 at https://api.github.com, installed on acme"
        );
    }
}

#[test]
fn a_fake_key_is_an_invalid_private_key_without_echoing_it() {
    let fake =
        "-----BEGIN RSA PRIVATE KEY-----\nFAKE-KEY-REPLACE-ME\n-----END RSA PRIVATE KEY-----\n";
    let err = validate(&app(json!({})), &secrets(&[("app", "key.pem", fake)])).unwrap_err();
    assert_eq!(err.reason, "InvalidPrivateKey");
    assert!(
        err.message.starts_with("spec.githubApp.privateKey: "),
        "{}",
        err.message
    );
    assert!(!err.message.contains("FAKE-KEY"), "{}", err.message);
}

#[test]
fn a_missing_secret_or_key_is_reported_on_the_field() {
    let err = validate(&app(json!({})), &secrets(&[])).unwrap_err();
    assert_eq!(err.reason, "SecretNotFound");
    assert_eq!(
        err.message,
        "spec.githubApp.privateKey: Secret \"app\" does not exist in this namespace"
    );
    let err = validate(&app(json!({})), &secrets(&[("app", "other", "x")])).unwrap_err();
    assert_eq!(err.reason, "SecretKeyNotFound");
}

#[test]
fn permission_names_must_be_githubs() {
    let key = RsaKey::generate();
    let values = secrets(&[("app", "key.pem", key.private_pkcs8_pem())]);
    let err = validate(
        &app(json!({"maxPermissions": {"Contents": "read"}})),
        &values,
    )
    .unwrap_err();
    assert_eq!(err.reason, "InvalidPermissions");
    assert!(err.message.contains("spec.githubApp.maxPermissions"));
}

fn token_minted_at(endpoint: Option<&str>, accepted: Option<&str>) -> crate::api::VcsAuthToken {
    let mut token: crate::api::VcsAuthToken = serde_json::from_value(json!({
        "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
        "metadata": {"name": "t", "namespace": "ci"},
        "spec": {"connection": "github", "github": {"repositories": ["app"],
            "userToken": {"name": "me", "key": "token"}}},
    }))
    .unwrap();
    if let Some(api) = accepted {
        token.metadata.annotations =
            Some([(ACCEPT_API_ANNOTATION.to_string(), api.to_string())].into());
    }
    token.status = Some(crate::api::VcsAuthTokenStatus {
        issuer: endpoint.map(|e| crate::api::token::Issuer {
            kind: "githubApp".into(),
            endpoint: Some(e.into()),
        }),
        ..Default::default()
    });
    token
}

#[test]
fn a_user_token_goes_only_to_the_api_it_was_used_with_unless_its_owner_accepts_another() {
    let api = "https://api.github.com";
    let evil = "http://shadow.example/api/v3";
    assert!(
        user_token_stays(&token_minted_at(None, None), evil).is_ok(),
        "first use"
    );
    assert!(user_token_stays(&token_minted_at(Some(api), None), api).is_ok());
    let err = user_token_stays(&token_minted_at(Some(api), None), evil).unwrap_err();
    assert_eq!(err.reason, "UserTokenServerChanged");
    assert!(
        err.message.contains(evil) && err.message.contains(api),
        "{}",
        err.message
    );
    assert!(user_token_stays(&token_minted_at(Some(api), Some(evil)), evil).is_ok());
    // A credential whose issuer the status lost: where it was minted is unknown, so refused.
    let mut lost = token_minted_at(None, None);
    lost.status.as_mut().unwrap().token_id = Some("sha256:0123456789abcdef".into());
    let err = user_token_stays(&lost, evil).unwrap_err();
    assert_eq!(err.reason, "UserTokenServerChanged");
    let mut accepted = token_minted_at(None, Some(evil));
    accepted.status.as_mut().unwrap().token_id = Some("sha256:0123456789abcdef".into());
    assert!(user_token_stays(&accepted, evil).is_ok());
    // A withdrawn credential leaves no issuer, but where the user token went is still recorded.
    let mut withdrawn = token_minted_at(Some(api), None);
    let status = withdrawn.status.as_mut().unwrap();
    status.last_issuer = status.issuer.take();
    status.revision = 1;
    let err = user_token_stays(&withdrawn, evil).unwrap_err();
    assert_eq!(err.reason, "UserTokenServerChanged");
    assert!(user_token_stays(&withdrawn, api).is_ok());
    // Minted before, from a kind that records no GitHub API: not a first use either.
    let mut elsewhere = token_minted_at(None, None);
    elsewhere.status.as_mut().unwrap().revision = 2;
    assert!(user_token_stays(&elsewhere, evil).is_err());
}
