//! Minting, scoping, revocation, expiry, user permissions and the GHES layout.

use super::*;

#[tokio::test]
async fn a_minted_token_is_scoped_to_the_requested_repositories_and_permissions() {
    let w = world().await;
    let (status, body) = w
        .mint(json!({"repositories": ["widgets"], "permissions": {"contents": "read"}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["permissions"],
        json!({"contents": "read", "metadata": "read"})
    );
    assert_eq!(body["repository_selection"], "selected");
    assert_eq!(body["repositories"][0]["full_name"], "acme/widgets");
    let expires_at = body["expires_at"].as_str().expect("expires_at");
    assert!(
        expires_at.ends_with('Z') && expires_at.len() == 20,
        "{expires_at}"
    );
    let token = body["token"].as_str().expect("token");
    let (status, repos) = w
        .get("/installation/repositories", &format!("token {token}"))
        .await;
    assert_eq!(
        (status, repos["total_count"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    assert_eq!(
        w.get("/repos/acme/widgets", &format!("Bearer {token}"))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        w.get("/repos/acme/gadgets", &format!("token {token}"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let issued = w.sim.token(token).expect("known to the simulator");
    assert_eq!(issued.repositories, Some(vec!["widgets".to_string()]));
    assert_eq!(issued.expires_at - issued.issued_at, 3_600);
    assert_eq!(
        (w.sim.mint_count(), w.sim.calls(route::CREATE_TOKEN)),
        (1, 1)
    );
}

#[tokio::test]
async fn an_unscoped_mint_gets_everything_the_installation_has() {
    let w = world().await;
    let (status, body) = w.mint(json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        body["permissions"],
        json!({"contents": "write", "issues": "read", "metadata": "read"})
    );
    assert_eq!(body["repositories"].as_array().map(Vec::len), Some(2));
    let token = body["token"].as_str().expect("token");
    assert_eq!(w.sim.token(token).expect("issued").repositories, None);
    let by_id = w.sim.add_repo("acme", "widgets");
    let (status, body) = w.mint(json!({"repository_ids": [by_id]})).await;
    assert_eq!(
        (status, body["repositories"].as_array().map(Vec::len)),
        (StatusCode::CREATED, Some(1))
    );
}

#[tokio::test]
async fn mints_beyond_the_installation_are_refused_with_422() {
    let w = world().await;
    let repo = "There is at least one repository that does not exist or is not accessible to the parent installation.";
    let perms_msg = "The permissions requested are not granted to this installation.";
    let secret_id = w.sim.add_repo("acme", "secret");
    let cases = [
        (json!({"repositories": ["widgets", "secret"]}), repo),
        (json!({"repositories": ["nope"]}), repo),
        (json!({"repository_ids": [secret_id]}), repo),
        (json!({"permissions": {"contents": "admin"}}), perms_msg),
        (json!({"permissions": {"pull_requests": "read"}}), perms_msg),
    ];
    for (request, message) in cases {
        let (status, body) = w.mint(request.clone()).await;
        assert_eq!(
            (status, body["message"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(message)),
            "{request}"
        );
    }
    w.sim
        .set_installation_permissions(w.acme, perms([("contents", "read")]));
    let (status, body) = w.mint(json!({"permissions": {"contents": "write"}})).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some(perms_msg))
    );
    assert_eq!(
        (w.sim.mint_count(), w.sim.calls(route::CREATE_TOKEN)),
        (0, 6)
    );
}

#[tokio::test]
async fn bad_mint_requests_are_400_or_404() {
    let w = world().await;
    let auth = format!("Bearer {}", w.app_jwt());
    let url = format!("{}/app/installations/{}/access_tokens", w.sim.url(), w.acme);
    let response = w
        .http
        .post(&url)
        .header("authorization", &auth)
        .body("{\"repositories\":")
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.expect("json")["message"],
        "Problems parsing JSON"
    );
    let unknown = format!("{}/app/installations/77/access_tokens", w.sim.url());
    assert_eq!(
        w.call(Method::POST, &unknown, &auth, None).await.status(),
        StatusCode::NOT_FOUND
    );
    let other_key = RsaKey::generate();
    w.sim.add_app(AppSpec::new(7, "other", &other_key));
    let other = format!(
        "Bearer {}",
        app_jwt(other_key.private_pkcs8_pem(), 7, now()).expect("jwt")
    );
    assert_eq!(
        w.call(Method::POST, &url, &other, None).await.status(),
        StatusCode::NOT_FOUND,
        "another app's installation"
    );
}

#[tokio::test]
async fn a_revoked_token_stops_working() {
    let w = world().await;
    let token = w.mint_token(json!({"repositories": ["widgets"]})).await;
    let revoke = format!("{}/installation/token", w.sim.url());
    let auth = format!("token {token}");
    assert_eq!(
        w.call(Method::DELETE, &revoke, &auth, None).await.status(),
        StatusCode::NO_CONTENT
    );
    let (status, body) = w.get("/installation/repositories", &auth).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("Bad credentials"))
    );
    assert_eq!(
        w.call(Method::DELETE, &revoke, &format!("Bearer {token}"), None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        w.call(Method::DELETE, &revoke, "token ghs_unknown", None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(w.sim.token(&token).expect("issued").revoked);
    assert_eq!((w.sim.revoke_count(), w.sim.live_tokens().len()), (1, 0));
}

#[tokio::test]
async fn tokens_expire_after_the_configured_lifetime() {
    let w = world().await;
    w.sim.set_token_lifetime(Duration::from_secs(30));
    let token = w.mint_token(json!({})).await;
    let issued = w.sim.token(&token).expect("issued");
    assert_eq!(issued.expires_at - issued.issued_at, 30);
    assert!(w.sim.is_live(&token));
    w.sim.advance_clock(Duration::from_secs(31));
    assert!(!w.sim.is_live(&token));
    assert_eq!(
        w.get("/installation/repositories", &format!("token {token}"))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn suspending_or_uninstalling_stops_minting_and_kills_tokens() {
    let w = world().await;
    let token = w.mint_token(json!({})).await;
    w.sim.set_installation_suspended(w.acme, true);
    assert_eq!(w.mint(json!({})).await.0, StatusCode::FORBIDDEN);
    assert!(!w.sim.is_live(&token));
    w.sim.set_installation_suspended(w.acme, false);
    assert!(w.sim.remove_installation(w.acme));
    assert_eq!(
        w.as_app("/orgs/acme/installation").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(w.mint(json!({})).await.0, StatusCode::NOT_FOUND);
    assert!(!w.sim.is_live(&token));
}

#[tokio::test]
async fn a_users_repository_permissions_follow_their_role() {
    let w = world().await;
    let (status, body) = w.get("/repos/acme/widgets", &format!("token {PAT}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["permissions"],
        json!({"admin": false, "maintain": false, "push": true, "triage": true, "pull": true})
    );
    w.sim.grant(PAT, "acme", "gadgets", Role::Read);
    let (_, body) = w.get("/repos/acme/gadgets", &format!("Bearer {PAT}")).await;
    assert_eq!(
        (
            body["permissions"]["pull"].as_bool(),
            body["permissions"]["push"].as_bool()
        ),
        (Some(true), Some(false))
    );
    assert_eq!(
        w.get("/repos/acme/secret", &format!("token {PAT}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        w.get("/repos/acme/widgets", "token ghp_unknown").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        w.get("/repos/acme/widgets", "").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        w.get("/user", &format!("token {PAT}")).await.1["login"],
        "alice"
    );
}

#[tokio::test]
async fn the_ghes_listener_serves_the_api_only_under_api_v3() {
    let w = world().await;
    let auth = format!("Bearer {}", w.app_jwt());
    let status = |url: String| {
        let auth = auth.clone();
        let http = w.http.clone();
        async move {
            http.get(url)
                .header("authorization", auth)
                .send()
                .await
                .expect("answer")
                .status()
        }
    };
    assert_eq!(
        status(format!("{}/app", w.sim.ghes_api_url())).await,
        StatusCode::OK
    );
    assert_eq!(
        status(format!("{}/app", w.sim.ghes_url())).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(format!("{}/api/v3/app", w.sim.url())).await,
        StatusCode::OK
    );
    assert_ne!(w.sim.url(), w.sim.ghes_url());
    assert_eq!(w.sim.calls(route::GET_APP), 2);
    assert_eq!(w.sim.calls(route::UNMATCHED), 1);
}
