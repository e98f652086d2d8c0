//! Bad input gets an API error Status, never a dropped connection, and the emulator keeps
//! serving afterwards.

use crate::with_widgets;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};

/// The response code, with every 2xx reported as 200 (kube's raw requests hide which).
async fn status_of(
    client: &kube::Client,
    method: &str,
    uri: &str,
    content_type: &str,
    body: &str,
) -> u16 {
    let req = hyper::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .body(body.as_bytes().to_vec())
        .unwrap();
    match client.request_text(req).await {
        Ok(_) => 200,
        Err(kube::Error::Api(s)) => s.code,
        Err(other) => panic!("{method} {uri} {body:?}: not an API error: {other:?}"),
    }
}

#[tokio::test]
async fn malformed_requests_are_answered_with_client_errors_and_the_server_keeps_working() {
    let (_emu, client) = with_widgets().await;
    let cms = "/api/v1/namespaces/default/configmaps";
    let ws = "/apis/example.com/v1/namespaces/default/widgets";
    let json = "application/json";
    let merge = "application/merge-patch+json";
    let cases: &[(&str, &str, &str, &str, &[u16])] = &[
        ("POST", cms, json, "{", &[400]),
        ("POST", cms, json, "[1,2]", &[400]),
        ("POST", cms, json, "\"text\"", &[400]),
        ("POST", cms, json, r#"{"metadata": "oops"}"#, &[422]),
        (
            "POST",
            cms,
            json,
            r#"{"metadata": {"name": "Bad_Name"}}"#,
            &[422],
        ),
        (
            "POST",
            cms,
            json,
            r#"{"kind": "Secret", "metadata": {"name": "x"}}"#,
            &[400],
        ),
        (
            "POST",
            cms,
            json,
            r#"{"metadata": {"name": "ok", "labels": "nope"}}"#,
            &[422],
        ),
        (
            "POST",
            cms,
            json,
            r#"{"metadata": {"name": "ok", "labels": {"k": "a/b"}, "finalizers": ["plain"]}}"#,
            &[422],
        ),
        (
            "POST",
            cms,
            json,
            r#"{"metadata": {"name": "ok"}, "data": 7}"#,
            &[200],
        ),
        (
            "PUT",
            &format!("{cms}/ok"),
            json,
            r#"{"metadata": {"name": "other"}}"#,
            &[400],
        ),
        (
            "PUT",
            &format!("{cms}/missing"),
            json,
            r#"{"metadata": {"name": "missing"}}"#,
            &[404],
        ),
        ("PATCH", &format!("{cms}/ok"), "text/plain", "{}", &[415]),
        ("PATCH", &format!("{cms}/ok"), merge, "not json", &[400]),
        (
            "PATCH",
            &format!("{cms}/ok"),
            "application/json-patch+json",
            r#"[{"op":"remove","path":"/nope/deeper"}]"#,
            &[422],
        ),
        (
            "PATCH",
            &format!("{cms}/ok"),
            "application/apply-patch+yaml",
            "a: [",
            &[400],
        ),
        (
            "PATCH",
            &format!("{cms}/ok?fieldManager=m"),
            "application/apply-patch+yaml",
            "metadata: {name: other}",
            &[400],
        ),
        (
            "GET",
            &format!("{cms}?labelSelector=a%20in%20b"),
            json,
            "",
            &[400],
        ),
        ("GET", &format!("{cms}?continue=garbage"), json, "", &[400]),
        (
            "GET",
            &format!("{cms}?watch=true&resourceVersion=abc"),
            json,
            "",
            &[400],
        ),
        ("GET", &format!("{ws}/w/scale"), json, "", &[404]),
        ("GET", "/apis/nope.io/v1/things", json, "", &[404]),
        ("DELETE", "/version", json, "", &[405]),
        (
            "POST",
            cms,
            "application/vnd.kubernetes.protobuf",
            "k8s\0\x0a",
            &[415],
        ),
        (
            "POST",
            ws,
            json,
            r#"{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "status": "weird"}"#,
            &[200],
        ),
        (
            "PUT",
            &format!("{ws}/w/status"),
            json,
            r#"{"metadata": {"name": "w"}, "status": "still weird"}"#,
            // The CRD's schema says status is an object: admission refuses it, as the real
            // server does.
            &[422],
        ),
        (
            "PUT",
            "/api/v1/namespaces/default/status",
            json,
            r#"{"metadata": {"name": "default"}, "status": "odd"}"#,
            &[200],
        ),
        ("DELETE", "/api/v1/namespaces/default", json, "", &[200]),
    ];
    for (method, uri, ct, body, expected) in cases {
        let code = status_of(&client, method, uri, ct, body).await;
        assert!(
            expected.contains(&code),
            "{method} {uri} {body:?}: got {code}, expected {expected:?}"
        );
    }
    let api: Api<ConfigMap> = Api::namespaced(client, "kube-system");
    assert!(
        api.list(&ListParams::default()).await.is_ok(),
        "still serving"
    );
}
