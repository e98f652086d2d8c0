//! One process builds a Kubernetes client, an HTTP client, an AWS STS client, and signs a GitHub
//! App JWT with RS256 — the combination that panics when two TLS crypto backends are compiled in
//! or jsonwebtoken has none.

#[tokio::test]
async fn kube_client_http_clients_and_rs256_signing_coexist_in_one_process() {
    let config = kube::Config::new("https://127.0.0.1:6443".parse().unwrap());
    let _kube = kube::Client::try_from(config).expect("kube client builds");
    let _http = reqwest::Client::builder()
        .build()
        .expect("reqwest client builds");
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            "AKIDEXAMPLE",
            "not-a-real-secret",
            None,
            None,
            "test",
        ))
        .load()
        .await;
    let _sts = aws_sdk_sts::Client::new(&aws);

    let app_key = testkit::keys::RsaKey::generate();
    let pem = app_key.private_pkcs8_pem();
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).expect("PKCS#8 key parses");
    let claims = serde_json::json!({"iat": 1_700_000_000, "exp": 1_700_000_540, "iss": "123456"});
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .expect("RS256 signing works");
    assert_eq!(jwt.split('.').count(), 3);
}
