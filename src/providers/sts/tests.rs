use std::time::Duration;

use super::errors::{Answer, Call, classify, code_in_body, scrub};
use super::*;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";

fn assume(role: &str) -> Call<'_> {
    Call {
        operation: "sts:AssumeRole",
        region: "eu-west-1",
        role_arn: Some(role),
    }
}

fn plain(operation: &'static str) -> Call<'static> {
    Call {
        operation,
        region: "eu-west-1",
        role_arn: None,
    }
}

fn answer<'a>(status: u16, code: &'a str, message: &'a str) -> Answer<'a> {
    Answer {
        status,
        code: Some(code),
        message: Some(message),
        retry_after: None,
    }
}

#[test]
fn access_denied_on_assume_role_points_at_the_trust_policy_and_external_id() {
    let role = "arn:aws:iam::123456789012:role/ci";
    let e = classify(assume(role), answer(403, "AccessDenied", "not authorized"));
    assert_eq!(e.reason(), "AssumeRoleDenied");
    let message = e.to_string();
    assert!(message.contains(role), "{message}");
    assert!(message.contains("trust policy"), "{message}");
    assert!(message.contains("External ID"), "{message}");
}

#[test]
fn access_denied_elsewhere_names_the_call() {
    let e = classify(
        plain("iam:CreateAccessKey"),
        answer(403, "AccessDenied", "no"),
    );
    assert_eq!(e.reason(), "AccessDenied");
    assert!(e.to_string().starts_with("iam:CreateAccessKey was denied"));
}

#[test]
fn credential_errors_say_which_half_of_the_key_pair_is_wrong() {
    let cases = [
        (
            "InvalidClientTokenId",
            "InvalidClientTokenId",
            "access key ID",
        ),
        (
            "UnrecognizedClientException",
            "InvalidClientTokenId",
            "access key ID",
        ),
        (
            "SignatureDoesNotMatch",
            "SignatureDoesNotMatch",
            "secret access key",
        ),
        (
            "InvalidSignatureException",
            "SignatureDoesNotMatch",
            "secret access key",
        ),
        ("ExpiredToken", "ExpiredToken", "expired"),
        ("ExpiredTokenException", "ExpiredToken", "expired"),
    ];
    for (code, reason, says) in cases {
        let e = classify(plain("sts:GetCallerIdentity"), answer(403, code, "x"));
        assert_eq!(e.reason(), reason, "{code}");
        assert!(e.to_string().contains(says), "{code}: {e}");
    }
}

#[test]
fn a_disabled_region_names_the_region() {
    let e = classify(
        plain("sts:GetSessionToken"),
        answer(403, "RegionDisabledException", "STS is not activated"),
    );
    assert_eq!(e.reason(), "UnknownRegion");
    assert!(e.to_string().contains("\"eu-west-1\""), "{e}");
}

#[test]
fn throttling_carries_retry_after_when_aws_sends_it() {
    let mut a = answer(400, "Throttling", "Rate exceeded");
    a.retry_after = Some("7");
    let e = classify(plain("sts:AssumeRole"), a);
    assert_eq!(e.reason(), "Throttled");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    assert!(e.is_transient());
    let e = classify(
        plain("ecr:GetAuthorizationToken"),
        answer(400, "ThrottlingException", ""),
    );
    assert_eq!(e.retry_after(), None);
}

#[test]
fn malformed_requests_are_invalid_requests_with_aws_code() {
    let e = classify(
        assume("arn:aws:iam::1:role/r"),
        answer(400, "PackedPolicyTooLarge", "tags too large"),
    );
    assert_eq!(e.reason(), "InvalidRequest");
    assert!(e.to_string().contains("PackedPolicyTooLarge"), "{e}");
    assert!(!e.is_transient());
}

#[test]
fn unknown_codes_and_codeless_answers_are_aws_errors() {
    let e = classify(plain("sts:AssumeRole"), answer(400, "Weird", "odd"));
    assert_eq!(e.reason(), "AwsError");
    let e = classify(
        plain("sts:AssumeRole"),
        Answer {
            status: 503,
            ..Answer::default()
        },
    );
    assert_eq!(e.reason(), "AwsError");
    assert!(e.to_string().contains("HTTP 503"), "{e}");
    assert!(e.is_transient());
}

#[test]
fn messages_never_carry_key_material() {
    let token = "FwoGZXIvYXdzEJr//////////wEaDKhY1vB8Iv1XHPm4ZyKkARz3sXr7DNu0cFo8q6";
    let text = format!("bad request for {SECRET} with token {token} by AKIAIOSFODNN7EXAMPLE");
    let e = classify(plain("sts:AssumeRole"), answer(400, "Weird", &text));
    let message = e.to_string();
    assert!(!message.contains(SECRET), "{message}");
    assert!(!message.contains(token), "{message}");
    assert!(message.contains("AKIAIOSFODNN7EXAMPLE"), "{message}");
    assert!(!format!("{e:?}").contains(SECRET));
}

#[test]
fn scrub_keeps_arns_and_caps_the_length() {
    let arn = "arn:aws:iam::123456789012:role/ci-deployer";
    let text = format!("User {arn} is not authorized");
    assert_eq!(scrub(&text), text);
    assert!(scrub(&"x ".repeat(400)).chars().count() <= 300);
}

#[test]
fn static_keys_debug_redacts_the_secret_and_the_session_token() {
    let keys = StaticKeys {
        session_token: Some("session-token-value".into()),
        ..StaticKeys::new("AKIAEXAMPLE", SECRET)
    };
    let debug = format!("{keys:?}");
    assert!(debug.contains("AKIAEXAMPLE"));
    assert!(!debug.contains(SECRET));
    assert!(!debug.contains("session-token-value"));
}

#[test]
fn static_keys_come_back_out_of_aws_credentials_for_chaining() {
    let credential = crate::output::Credential::Aws {
        access_key_id: "ASIA1".into(),
        secret_access_key: "s".into(),
        session_token: Some("t".into()),
        region: "eu-west-1".into(),
        expires_at: None,
    };
    let keys = StaticKeys::from_credential(&credential).expect("aws credential");
    assert_eq!(keys.session_token.as_deref(), Some("t"));
    let login = docker_login("QVdTOnB3", "r", None).unwrap();
    assert_eq!(StaticKeys::from_credential(&login), None);
}

#[test]
fn an_ecr_token_decodes_to_user_aws_and_its_password() {
    // base64("AWS:123456789012-auth-token"), as moto and ECR send it.
    let token = "QVdTOjEyMzQ1Njc4OTAxMi1hdXRoLXRva2Vu";
    let past = k8s_openapi::jiff::Timestamp::from_second(1_420_070_400).unwrap();
    let login = docker_login(token, "reg.example", Some(past)).unwrap();
    assert_eq!(
        login,
        crate::output::Credential::DockerLogin {
            registry: "reg.example".into(),
            username: "AWS".into(),
            password: "123456789012-auth-token".into(),
            expires_at: Some(past),
        }
    );
}

#[test]
fn base64_with_and_without_padding_decodes() {
    for (token, password) in [("QVdTOnA=", "p"), ("QVdTOnA", "p"), ("QVdTOnB3", "pw")] {
        match docker_login(token, "r", None).unwrap() {
            crate::output::Credential::DockerLogin { password: p, .. } => assert_eq!(p, password),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn broken_ecr_tokens_are_refused() {
    for token in ["not base64!", "QVdT", "OnB3", "QVdTOg==", "QQ==="] {
        assert!(docker_login(token, "r", None).is_err(), "{token}");
    }
}

#[test]
fn registry_host_strips_scheme_path_and_case() {
    let cases = [
        (
            "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
        ),
        ("https://Reg.Example:5000/v2/", Some("reg.example:5000")),
        ("reg.example", Some("reg.example")),
        ("https://", None),
    ];
    for (endpoint, host) in cases {
        assert_eq!(registry_host(endpoint).as_deref(), host, "{endpoint}");
    }
}

#[test]
fn endpoints_follow_the_partition() {
    assert_eq!(
        ecr_endpoint("eu-west-1"),
        "https://api.ecr.eu-west-1.amazonaws.com"
    );
    assert_eq!(
        ecr_endpoint("cn-north-1"),
        "https://api.ecr.cn-north-1.amazonaws.com.cn"
    );
    assert_eq!(
        ecr_public_endpoint(),
        "https://api.ecr-public.us-east-1.amazonaws.com"
    );
    assert_eq!(iam_endpoint("eu-west-1"), "https://iam.amazonaws.com");
    assert_eq!(iam_endpoint("cn-north-1"), "https://iam.amazonaws.com.cn");
    assert_eq!(iam_region("cn-northwest-1"), "cn-north-1");
    assert_eq!(iam_region("us-gov-east-1"), "us-gov-west-1");
    assert_eq!(iam_region("ap-south-1"), "us-east-1");
}

#[test]
fn codes_are_found_in_error_bodies_the_sdk_cannot_read() {
    let moto = "<?xml version=\"1.0\"?>\n<ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code>\
                <Message>The security token included in the request is invalid.</Message>\
                </Error></Errors></ErrorResponse>";
    assert_eq!(
        code_in_body(moto),
        (
            Some("InvalidClientTokenId"),
            Some("The security token included in the request is invalid.")
        )
    );
    let json =
        r#"{"__type": "com.amazon.coral.service#UnrecognizedClientException", "message": "bad"}"#;
    assert_eq!(
        code_in_body(json),
        (Some("UnrecognizedClientException"), Some("bad"))
    );
    assert_eq!(code_in_body("<html>500</html>"), (None, None));
}
