//! Every statically checkable rule of the API rejects a bad manifest with a message that names
//! the offending field — evaluated with the same schema and CEL admission an API server applies.

mod support;

use serde_json::{Value, json};

fn secret(name: &str, key: &str) -> Value {
    json!({"name": name, "key": key})
}

fn connection(spec: Value) -> Value {
    json!({
        "apiVersion": "patchbay.dev/v1alpha1",
        "kind": "Connection",
        "metadata": {"name": "example", "namespace": "ci"},
        "spec": spec,
    })
}

fn token(spec: Value) -> Value {
    json!({
        "apiVersion": "patchbay.dev/v1alpha1",
        "kind": "VcsAuthToken",
        "metadata": {"name": "build", "namespace": "team-a"},
        "spec": spec,
    })
}

fn github_app() -> Value {
    connection(json!({"githubApp": {
        "appId": "123456",
        "privateKey": secret("acme-github-app", "private-key.pem"),
        "ownerUrl": "https://github.com/acme",
        "maxPermissions": {"contents": "write", "pull_requests": "read"},
        "allowedRepositories": ["app-*", "lib"],
    }}))
}

fn aws_keys() -> Value {
    connection(json!({"aws": {
        "region": "eu-west-1",
        "credentials": {"accessKeys": {
            "accessKeyId": secret("aws-keys", "access-key-id"),
            "secretAccessKey": secret("aws-keys", "secret-access-key"),
        }},
    }}))
}

fn aws_role() -> Value {
    connection(json!({"aws": {
        "region": "eu-west-1",
        "credentials": {"iamRole": {
            "connection": "aws-ci-keys",
            "roleArn": "arn:aws:iam::123456789012:role/ci-deployer",
        }},
    }}))
}

fn ecr() -> Value {
    connection(json!({"ecr": {"region": "eu-west-1", "credentials": {"defaultChain": {}}}}))
}

fn simple(block: &str, body: Value) -> Value {
    connection(json!({ block: body }))
}

fn github_token() -> Value {
    token(json!({
        "connection": "acme-github",
        "github": {"repositories": ["app-backend", "lib"], "permissions": {"contents": "read"}},
        "secret": {"format": "basic-auth"},
        "renewBefore": "20m",
    }))
}

fn aws_token() -> Value {
    token(json!({
        "connection": "aws-deployer",
        "aws": {"durationSeconds": 3600, "sessionTags": {"cost-center": "42"}},
    }))
}

/// A bad manifest, the field its error must name, and why it is bad.
struct Case {
    why: &'static str,
    manifest: Value,
    field: &'static str,
}

fn case(
    why: &'static str,
    base: Value,
    edit: impl FnOnce(&mut Value),
    field: &'static str,
) -> Case {
    let mut manifest = base;
    edit(&mut manifest);
    Case {
        why,
        manifest,
        field,
    }
}

fn invalid_cases() -> Vec<Case> {
    let many = |n: usize, f: fn(usize) -> String| -> Value { (0..n).map(f).collect() };
    vec![
        case(
            "a connection without a provider block",
            github_app(),
            |m| {
                m["spec"] = json!({"displayName": "nothing"});
            },
            "spec",
        ),
        case(
            "a connection with two provider blocks",
            github_app(),
            |m| {
                m["spec"]["google"] = json!({"clientId": "id", "clientSecret": secret("g", "s")});
            },
            "spec",
        ),
        case(
            "a non-numeric App ID",
            github_app(),
            |m| {
                m["spec"]["githubApp"]["appId"] = json!("acme-ci");
            },
            "spec.githubApp.appId",
        ),
        case(
            "a GitHub server URL that is not http(s)",
            github_app(),
            |m| {
                m["spec"]["githubApp"]["serverUrl"] = json!("ftp://ghe.example.com");
            },
            "spec.githubApp.serverUrl",
        ),
        case(
            "an owner URL without a scheme",
            github_app(),
            |m| {
                m["spec"]["githubApp"]["ownerUrl"] = json!("github.com/acme");
            },
            "spec.githubApp.ownerUrl",
        ),
        case(
            "an installation ID of zero",
            github_app(),
            |m| {
                m["spec"]["githubApp"]["installationId"] = json!(0);
            },
            "spec.githubApp.installationId",
        ),
        case(
            "a permission ceiling above admin",
            github_app(),
            |m| {
                m["spec"]["githubApp"]["maxPermissions"]["contents"] = json!("owner");
            },
            "spec.githubApp.maxPermissions.contents",
        ),
        case(
            "a permission ceiling with more than 64 entries",
            github_app(),
            |m| {
                m["spec"]["githubApp"]["maxPermissions"] = (0..65)
                    .map(|i| (format!("perm_{i}"), json!("read")))
                    .collect::<serde_json::Map<_, _>>()
                    .into();
            },
            "spec.githubApp.maxPermissions",
        ),
        case(
            "an allowed repository with an owner",
            github_app(),
            |m| {
                m["spec"]["githubApp"]["allowedRepositories"] = json!(["acme/app"]);
            },
            "spec.githubApp.allowedRepositories[0]",
        ),
        case(
            "more than 500 allowed repositories",
            github_app(),
            |m| {
                m["spec"]["githubApp"]["allowedRepositories"] = many(501, |i| format!("repo-{i}"));
            },
            "spec.githubApp.allowedRepositories",
        ),
        case(
            "a GitHub App without its private key",
            github_app(),
            |m| {
                m["spec"]["githubApp"]
                    .as_object_mut()
                    .unwrap()
                    .remove("privateKey");
            },
            "spec.githubApp.privateKey",
        ),
        case(
            "a Secret name that is not a DNS subdomain",
            github_app(),
            |m| {
                m["spec"]["githubApp"]["privateKey"]["name"] = json!("Acme_Key");
            },
            "spec.githubApp.privateKey.name",
        ),
        case(
            "a Secret key with a space",
            github_app(),
            |m| {
                m["spec"]["githubApp"]["privateKey"]["key"] = json!("private key");
            },
            "spec.githubApp.privateKey.key",
        ),
        case(
            "a GitLab server URL without a scheme",
            simple(
                "gitlab",
                json!({"serverUrl": "gitlab.example.com", "applicationId": "a", "secret": secret("gl", "s")}),
            ),
            |_| {},
            "spec.gitlab.serverUrl",
        ),
        case(
            "a Bitbucket Server connection without its server URL",
            simple(
                "bitbucketServer",
                json!({"clientId": "c", "clientSecret": secret("bb", "s")}),
            ),
            |_| {},
            "spec.bitbucketServer.serverUrl",
        ),
        case(
            "an Azure DevOps server URL with whitespace",
            simple(
                "azureDevOpsPat",
                json!({"serverUrl": "https://dev.azure.com/my org", "personalAccessToken": secret("ado", "pat")}),
            ),
            |_| {},
            "spec.azureDevOpsPat.serverUrl",
        ),
        case(
            "a Docker registry given as a bare host",
            simple(
                "dockerRegistry",
                json!({"url": "ghcr.io", "username": "ci", "password": secret("reg", "password")}),
            ),
            |_| {},
            "spec.dockerRegistry.url",
        ),
        case(
            "a Slack app without its bot token",
            simple(
                "slack",
                json!({"clientId": "c", "clientSecret": secret("slack", "s")}),
            ),
            |_| {},
            "spec.slack.botToken",
        ),
        case(
            "a project-mode Space connection without a project",
            simple(
                "jetbrainsSpace",
                json!({"serverUrl": "https://acme.jetbrains.space", "clientId": "c", "clientSecret": secret("space", "s"), "mode": "project"}),
            ),
            |_| {},
            "spec.jetbrainsSpace.project",
        ),
        case(
            "an npm scope without @",
            simple("npmRegistry", json!({"scope": "acme"})),
            |_| {},
            "spec.npmRegistry.scope",
        ),
        case(
            "a Perforce address without a port",
            simple(
                "perforceAdmin",
                json!({"host": "ssl:perforce.example.com", "user": "admin", "password": secret("p4", "password")}),
            ),
            |_| {},
            "spec.perforceAdmin.host",
        ),
        case(
            "an AWS region that is not a region name",
            aws_keys(),
            |m| {
                m["spec"]["aws"]["region"] = json!("Europe");
            },
            "spec.aws.region",
        ),
        case(
            "AWS credentials of no kind",
            aws_keys(),
            |m| {
                m["spec"]["aws"]["credentials"] = json!({});
            },
            "spec.aws.credentials",
        ),
        case(
            "AWS credentials of two kinds",
            aws_keys(),
            |m| {
                m["spec"]["aws"]["credentials"]["defaultChain"] = json!({});
            },
            "spec.aws.credentials",
        ),
        case(
            "a role ARN that is not an IAM role",
            aws_role(),
            |m| {
                m["spec"]["aws"]["credentials"]["iamRole"]["roleArn"] =
                    json!("arn:aws:s3:::bucket");
            },
            "spec.aws.credentials.iamRole.roleArn",
        ),
        case(
            "an External ID shorter than STS allows",
            aws_role(),
            |m| {
                m["spec"]["aws"]["credentials"]["iamRole"]["externalId"] = json!("x");
            },
            "spec.aws.credentials.iamRole.externalId",
        ),
        case(
            "a maximum session shorter than 15 minutes",
            aws_keys(),
            |m| {
                m["spec"]["aws"]["maxSessionDuration"] = json!(60);
            },
            "spec.aws.maxSessionDuration",
        ),
        case(
            "a session-credential lifetime beyond 36 hours",
            aws_keys(),
            |m| {
                m["spec"]["aws"]["credentials"]["accessKeys"]["sessionDuration"] = json!(200_000);
            },
            "spec.aws.credentials.accessKeys.sessionDuration",
        ),
        case(
            "an STS endpoint without a scheme",
            aws_keys(),
            |m| {
                m["spec"]["aws"]["stsEndpoint"] = json!("sts.amazonaws.com");
            },
            "spec.aws.stsEndpoint",
        ),
        case(
            "a private ECR registry without a region",
            ecr(),
            |m| {
                m["spec"]["ecr"].as_object_mut().unwrap().remove("region");
            },
            "spec.ecr.region",
        ),
        case(
            "an ECR repository type that does not exist",
            ecr(),
            |m| {
                m["spec"]["ecr"]["repositoryType"] = json!("internal");
            },
            "spec.ecr.repositoryType",
        ),
        case(
            "a token without a connection",
            github_token(),
            |m| {
                m["spec"].as_object_mut().unwrap().remove("connection");
            },
            "spec.connection",
        ),
        case(
            "a GitHub token for no repository",
            github_token(),
            |m| {
                m["spec"]["github"]["repositories"] = json!([]);
            },
            "spec.github.repositories",
        ),
        case(
            "a GitHub token for 501 repositories",
            github_token(),
            |m| {
                m["spec"]["github"]["repositories"] = many(501, |i| format!("repo-{i}"));
            },
            "spec.github.repositories",
        ),
        case(
            "a repository named with its owner",
            github_token(),
            |m| {
                m["spec"]["github"]["repositories"] = json!(["acme/app"]);
            },
            "spec.github.repositories[0]",
        ),
        case(
            "a repository named ..",
            github_token(),
            |m| {
                m["spec"]["github"]["repositories"] = json!([".."]);
            },
            "spec.github.repositories",
        ),
        case(
            "a repository listed twice",
            github_token(),
            |m| {
                m["spec"]["github"]["repositories"] = json!(["app", "app"]);
            },
            "spec.github.repositories[1]",
        ),
        case(
            "a permission level that does not exist",
            github_token(),
            |m| {
                m["spec"]["github"]["permissions"]["contents"] = json!("none");
            },
            "spec.github.permissions.contents",
        ),
        case(
            "an owner that is not a GitHub login",
            github_token(),
            |m| {
                m["spec"]["github"]["owner"] = json!("-acme");
            },
            "spec.github.owner",
        ),
        case(
            "an STS duration below 900 seconds",
            aws_token(),
            |m| {
                m["spec"]["aws"]["durationSeconds"] = json!(899);
            },
            "spec.aws.durationSeconds",
        ),
        case(
            "an STS duration above 12 hours",
            aws_token(),
            |m| {
                m["spec"]["aws"]["durationSeconds"] = json!(43_201);
            },
            "spec.aws.durationSeconds",
        ),
        case(
            "a role session name with a space",
            aws_token(),
            |m| {
                m["spec"]["aws"]["roleSessionName"] = json!("team a");
            },
            "spec.aws.roleSessionName",
        ),
        case(
            "more session tags than STS allows",
            aws_token(),
            |m| {
                m["spec"]["aws"]["sessionTags"] = (0..49)
                    .map(|i| (format!("tag-{i}"), json!("v")))
                    .collect::<serde_json::Map<_, _>>()
                    .into();
            },
            "spec.aws.sessionTags",
        ),
        case(
            "a session tag value longer than 256 characters",
            aws_token(),
            |m| {
                m["spec"]["aws"]["sessionTags"] = json!({"team": "x".repeat(257)});
            },
            "spec.aws.sessionTags",
        ),
        case(
            "an empty session tag key",
            aws_token(),
            |m| {
                m["spec"]["aws"]["sessionTags"] = json!({"": "a"});
            },
            "spec.aws.sessionTags",
        ),
        case(
            "a session tag key longer than 128 characters",
            aws_token(),
            |m| {
                m["spec"]["aws"]["sessionTags"] = json!({ "k".repeat(129): "a" });
            },
            "spec.aws.sessionTags",
        ),
        case(
            "a session tag key under patchbay.dev/",
            aws_token(),
            |m| {
                m["spec"]["aws"]["sessionTags"] = json!({"patchbay.dev/namespace": "other"});
            },
            "spec.aws.sessionTags",
        ),
        case(
            "more than 10 policy ARNs",
            aws_token(),
            |m| {
                m["spec"]["aws"]["policyArns"] =
                    many(11, |i| format!("arn:aws:iam::aws:policy/P{i}"));
            },
            "spec.aws.policyArns",
        ),
        case(
            "a token role ARN whose account is not twelve digits",
            aws_token(),
            |m| {
                m["spec"]["aws"]["roleArn"] = json!("arn:aws:iam::123:role/x");
            },
            "spec.aws.roleArn",
        ),
        case(
            "a token with two request blocks",
            github_token(),
            |m| {
                m["spec"]["aws"] = json!({"durationSeconds": 3600});
            },
            "spec",
        ),
        case(
            "a GitHub token written as a docker config",
            github_token(),
            |m| {
                m["spec"]["secret"]["format"] = json!("dockerconfigjson");
            },
            "spec.secret.format",
        ),
        case(
            "a Secret format that does not exist",
            github_token(),
            |m| {
                m["spec"]["secret"]["format"] = json!("pem");
            },
            "spec.secret.format",
        ),
        case(
            "a deletion policy that does not exist",
            github_token(),
            |m| {
                m["spec"]["secret"]["deletionPolicy"] = json!("Orphan");
            },
            "spec.secret.deletionPolicy",
        ),
        case(
            "an output Secret name with capitals",
            github_token(),
            |m| {
                m["spec"]["secret"]["name"] = json!("Build-Token");
            },
            "spec.secret.name",
        ),
        case(
            "a zero renewBefore",
            github_token(),
            |m| {
                m["spec"]["renewBefore"] = json!("0s");
            },
            "spec.renewBefore",
        ),
        case(
            "a negative renewBefore",
            github_token(),
            |m| {
                m["spec"]["renewBefore"] = json!("-5m");
            },
            "spec.renewBefore",
        ),
        case(
            "a renewBefore in words",
            github_token(),
            |m| {
                m["spec"]["renewBefore"] = json!("20 minutes");
            },
            "spec.renewBefore",
        ),
    ]
}

#[test]
fn the_valid_bases_of_the_table_are_admitted() {
    for base in [
        github_app(),
        aws_keys(),
        aws_role(),
        ecr(),
        github_token(),
        aws_token(),
    ] {
        if let Err(errors) = support::admit(&base) {
            panic!("{base} was refused: {errors:?}");
        }
    }
}

#[test]
fn every_invalid_manifest_is_refused_with_an_error_naming_its_field() {
    let cases = invalid_cases();
    assert!(cases.len() >= 30, "the table covers every static rule");
    let mut failures = Vec::new();
    for Case {
        why,
        manifest,
        field,
    } in cases
    {
        match support::admit(&manifest) {
            Ok(_) => failures.push(format!("{why}: admitted")),
            Err(errors) => {
                let names_field = errors.iter().any(|e| {
                    e.field == field
                        || (field != "spec" && e.field.starts_with(&format!("{field}[")))
                        || (field != "spec" && e.field.starts_with(&format!("{field}.")))
                });
                if !names_field {
                    let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
                    failures.push(format!("{why}: expected an error on {field}, got {got:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_provider_rule_message_lists_every_provider_block() {
    let errors = support::admit(&connection(json!({}))).unwrap_err();
    let message = errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    for kind in patchbay::api::ConnectionKind::ALL {
        assert!(
            message.contains(kind.field_name()),
            "{kind} missing from: {message}"
        );
    }
}

#[test]
fn defaults_are_applied_on_admission() {
    let admitted = support::admit(&github_app()).unwrap();
    assert_eq!(
        admitted["spec"]["githubApp"]["serverUrl"],
        "https://github.com"
    );
    let admitted = support::admit(&ecr()).unwrap();
    assert_eq!(admitted["spec"]["ecr"]["repositoryType"], "private");
}

#[test]
fn unknown_fields_are_pruned_on_admission() {
    let mut manifest = github_token();
    manifest["spec"]["github"]["repos"] = json!(["typo"]);
    let admitted = support::admit(&manifest).unwrap();
    assert!(admitted["spec"]["github"].get("repos").is_none());
}

/// The field names in a refusal from a real API server (or the emulator): the causes of its
/// `Invalid` status.
fn refused_fields(e: &kube::Error) -> Option<Vec<String>> {
    match e {
        kube::Error::Api(status) if status.code == 422 => Some(
            status
                .details
                .as_ref()?
                .causes
                .iter()
                .map(|c| c.field.clone())
                .collect(),
        ),
        _ => None,
    }
}

#[tokio::test]
async fn the_api_server_refuses_every_invalid_manifest_naming_the_same_field() {
    let cluster = support::cluster::Cluster::start().await;
    cluster
        .namespace("team-a", Some(support::cluster::ROOT))
        .await;
    let mut failures = Vec::new();
    let cases = invalid_cases();
    let count = cases.len();
    for Case {
        why,
        mut manifest,
        field,
    } in cases
    {
        let logical = manifest["metadata"]["namespace"]
            .as_str()
            .unwrap()
            .to_string();
        manifest["metadata"]["namespace"] = json!(cluster.ns(&logical));
        match support::cluster::create_dry_run(&cluster.client, &manifest).await {
            Ok(()) => failures.push(format!("{why}: admitted")),
            Err(e) => match refused_fields(&e) {
                None => failures.push(format!("{why}: refused without field causes: {e}")),
                Some(fields) => {
                    let names_field = fields.iter().any(|f| {
                        f == field
                            || (field != "spec" && f.starts_with(&format!("{field}[")))
                            || (field != "spec" && f.starts_with(&format!("{field}.")))
                    });
                    if !names_field {
                        failures.push(format!(
                            "{why}: expected {field}, the server named {fields:?}: {e}"
                        ));
                    }
                }
            },
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} cases differ on {}:\n{}",
        failures.len(),
        cluster.server.describe(),
        failures.join("\n")
    );
    cluster.stop().await;
}
