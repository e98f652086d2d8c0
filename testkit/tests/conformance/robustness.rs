//! Bad input gets an API error Status, never a dropped connection, and the server keeps
//! serving afterwards. Runs on both servers.

use crate::Target;
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

async fn malformed_requests_are_answered_with_client_errors_and_the_server_keeps_working(
    t: Target,
) {
    let t = t.with_widgets().await;
    let client = t.client.clone();
    let ns = format!("/api/v1/namespaces/{}", t.ns());
    let cms = &format!("{ns}/configmaps");
    let ws = &format!("/apis/example.com/v1/namespaces/{}/widgets", t.ns());
    let json = "application/json";
    let merge = "application/merge-patch+json";
    let cases: &[(&str, &str, &str, &str, &[u16])] = &[
        ("POST", cms, json, "{", &[400]),
        ("POST", cms, json, "[1,2]", &[400]),
        ("POST", cms, json, "\"text\"", &[400]),
        ("POST", cms, json, r#"{"metadata": "oops"}"#, &[400]),
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
            &[400],
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
            &[400],
        ),
        (
            "POST",
            cms,
            json,
            r#"{"metadata": {"name": "ok"}, "data": {"a": "1"}}"#,
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
            "a: 1",
            // No fieldManager: invalid PatchOptions.
            &[422],
        ),
        (
            "PATCH",
            &format!("{cms}/ok?fieldManager=m"),
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
            // The real server answers 500 (its parse error is not typed as a bad request).
            &[400, 500],
        ),
        ("GET", &format!("{ws}/w/scale"), json, "", &[404]),
        ("GET", "/apis/nope.io/v1/things", json, "", &[404]),
        ("DELETE", "/version", json, "", &[405]),
        (
            "POST",
            cms,
            "application/vnd.kubernetes.protobuf",
            "k8s\0\x0a",
            &[400],
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
            // A custom object must name its kind.
            r#"{"metadata": {"name": "w"}, "status": {"ready": true}}"#,
            &[400],
        ),
        (
            "PUT",
            &format!("{ws}/w/status"),
            json,
            // A custom object is updated from the resourceVersion it was read at.
            r#"{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "status": {"ready": true}}"#,
            &[422],
        ),
        (
            "PUT",
            &format!("{ns}/status"),
            json,
            &format!(
                r#"{{"metadata": {{"name": "{}"}}, "status": "odd"}}"#,
                t.ns()
            ),
            &[400],
        ),
        ("DELETE", "/api/v1/namespaces/default", json, "", &[403]),
        ("DELETE", &ns, json, "", &[200]),
    ];
    let mut unexpected = Vec::new();
    for (method, uri, ct, body, expected) in cases {
        let code = status_of(&client, method, uri, ct, body).await;
        if !expected.contains(&code) {
            unexpected.push(format!(
                "{method} {uri} {body:?}: got {code}, expected {expected:?}"
            ));
        }
    }
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n"));
    let api: Api<ConfigMap> = Api::namespaced(client, "kube-public");
    assert!(
        api.list(&ListParams::default()).await.is_ok(),
        "still serving"
    );
}
on_both!(malformed_requests_are_answered_with_client_errors_and_the_server_keeps_working);
