//! Rate limits, injected faults, latency, the down switch, counters and shutdown.

use super::*;

#[tokio::test]
async fn every_response_carries_rate_limit_headers_and_the_limit_is_enforced() {
    let w = world().await;
    w.sim.set_rate_limit(3);
    let url = format!("{}/nowhere", w.sim.url());
    let mut remaining = Vec::new();
    for _ in 0..4 {
        let response = w.call(Method::GET, &url, "", None).await;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        for name in [
            "x-ratelimit-limit",
            "x-ratelimit-reset",
            "x-ratelimit-used",
            "x-ratelimit-resource",
            "date",
        ] {
            assert!(header(name).is_some(), "{name}");
        }
        remaining.push((
            response.status().as_u16(),
            header("x-ratelimit-remaining").unwrap_or_default(),
        ));
    }
    assert_eq!(
        remaining,
        [
            (404, "2".into()),
            (404, "1".into()),
            (404, "0".into()),
            (403, "0".into())
        ]
    );
}

#[tokio::test]
async fn injected_server_errors_fail_the_next_requests_then_stop() {
    let w = world().await;
    w.sim.fail_next(2, Fault::ServerError(502));
    let statuses = [
        w.as_app("/app").await.0,
        w.as_app("/app").await.0,
        w.as_app("/app").await.0,
    ];
    assert_eq!(
        statuses,
        [
            StatusCode::BAD_GATEWAY,
            StatusCode::BAD_GATEWAY,
            StatusCode::OK
        ]
    );
    assert_eq!(
        (w.sim.calls(route::GET_APP), w.sim.pending_faults()),
        (3, 0)
    );
}

#[tokio::test]
async fn rate_limit_faults_carry_githubs_headers() {
    let w = world().await;
    w.sim.fail_next(
        1,
        Fault::SecondaryRateLimited {
            status: 429,
            retry_after_secs: 30,
        },
    );
    w.sim.fail_next(
        1,
        Fault::RateLimited {
            status: 403,
            reset_after_secs: 90,
        },
    );
    let url = format!("{}/app", w.sim.url());
    for (status, retry_after, reset_after, message) in [
        (429, Some("30"), 30, "secondary rate limit"),
        (403, None, 90, "API rate limit exceeded"),
    ] {
        let t = w.sim.now();
        let response = w.call(Method::GET, &url, "", None).await;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(header("retry-after").as_deref(), retry_after);
        assert_eq!(header("x-ratelimit-remaining").as_deref(), Some("0"));
        let reset: i64 = header("x-ratelimit-reset")
            .and_then(|r| r.parse().ok())
            .expect("reset");
        assert!(
            (t + reset_after..=t + reset_after + 2).contains(&reset),
            "{reset}"
        );
        let body: Value = response.json().await.expect("json");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains(message)),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_fault_on_one_route_leaves_the_others_alone() {
    let w = world().await;
    w.sim
        .fail_next_on(route::CREATE_TOKEN, 1, Fault::ServerError(503));
    assert_eq!(w.as_app("/app").await.0, StatusCode::OK);
    assert_eq!(w.mint(json!({})).await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(w.mint(json!({})).await.0, StatusCode::CREATED);
    assert_eq!(
        (w.sim.mint_count(), w.sim.calls(route::CREATE_TOKEN)),
        (1, 2)
    );
}

#[tokio::test]
async fn a_disconnect_fault_drops_the_connection() {
    let w = world().await;
    w.sim.fail_next(1, Fault::Disconnect);
    let result = w.http.get(format!("{}/app", w.sim.url())).send().await;
    assert!(result.is_err(), "{result:?}");
    assert_eq!(w.as_app("/app").await.0, StatusCode::OK);
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let w = world().await;
    w.sim.set_latency(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(w.as_app("/app").await.0, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn the_down_switch_refuses_connections_answers_503_or_hangs() {
    let w = world().await;
    let url = format!("{}/app", w.sim.url());
    w.sim.set_down(Down::Refuse).await;
    let refused = w.http.get(&url).send().await.expect_err("refused");
    assert!(refused.is_connect(), "{refused:?}");
    w.sim.set_down(Down::Unavailable).await;
    assert_eq!(w.as_app("/app").await.0, StatusCode::SERVICE_UNAVAILABLE);
    w.sim.set_down(Down::Hang).await;
    let hung = w
        .http
        .get(&url)
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .expect_err("hangs");
    assert!(hung.is_timeout(), "{hung:?}");
    w.sim.set_down(Down::Up).await;
    assert_eq!(w.as_app("/app").await.0, StatusCode::OK);
}

#[tokio::test]
async fn counters_count_each_route_and_can_be_reset() {
    let w = world().await;
    let token = w.mint_token(json!({})).await;
    w.get("/installation/repositories", &format!("token {token}"))
        .await;
    w.as_app("/orgs/acme/installation").await;
    w.as_app("/orgs/acme/installation").await;
    let calls = w.sim.all_calls();
    assert_eq!(calls.get(route::ORG_INSTALLATION), Some(&2));
    assert_eq!(calls.get(route::INSTALLATION_REPOS), Some(&1));
    assert_eq!((w.sim.total_calls(), w.sim.mint_count()), (4, 1));
    w.sim.reset_counters();
    assert_eq!(
        (
            w.sim.total_calls(),
            w.sim.mint_count(),
            w.sim.tokens().len()
        ),
        (0, 0, 1)
    );
}

#[tokio::test]
async fn shutdown_stops_listening() {
    let w = world().await;
    let url = format!("{}/app", w.sim.url());
    let handle = w.sim.handle();
    w.sim.shutdown().await;
    assert!(w.http.get(&url).send().await.is_err());
    assert_eq!(handle.mint_count(), 0, "the handle outlives the server");
}
