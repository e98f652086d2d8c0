//! `patchbay sandbox` as a new user runs it: the printed kubectl commands work, the example
//! connections become Ready, tokens resolve, and Ctrl-C (SIGTERM) stops it cleanly.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The sandbox's Kubernetes API: the one `PATCHBAY_TEST_SERVER` selects for the other
/// end-to-end tests (a real kube-apiserver by default, which `scripts/envtest` provides).
fn server() -> &'static str {
    match std::env::var("PATCHBAY_TEST_SERVER").as_deref() {
        Ok("emulator") => "emulator",
        _ => "apiserver",
    }
}

struct Sandbox {
    child: Child,
    /// Kept open so the sandbox's later output has somewhere to go.
    _stdout: std::io::Lines<BufReader<std::process::ChildStdout>>,
    kubeconfig: String,
    printed: String,
}

impl Sandbox {
    fn start(dir: &Path) -> Self {
        Self::start_logging(dir, "warn", Stdio::inherit())
    }

    fn start_logging(dir: &Path, level: &str, stderr: Stdio) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_patchbay"))
            .args(["sandbox", "--server", server(), "--dir"])
            .arg(dir)
            .env("RUST_LOG", level)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the sandbox starts");
        let mut printed = String::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            printed.push_str(&line);
            printed.push('\n');
            if line.contains("Press Ctrl-C") {
                break;
            }
        }
        let kubeconfig = dir
            .join("kubeconfig")
            .canonicalize()
            .unwrap()
            .display()
            .to_string();
        Self {
            child,
            _stdout: lines,
            kubeconfig,
            printed,
        }
    }

    /// `GET /metrics` at the address the banner printed (`Metrics: curl http://ADDR/metrics`).
    fn metrics(&self) -> String {
        use std::io::{Read, Write};
        let address = (self.printed.lines())
            .find_map(|l| l.strip_prefix("Metrics: curl http://"))
            .and_then(|rest| rest.strip_suffix("/metrics"))
            .unwrap_or_else(|| panic!("no metrics address in:\n{}", self.printed));
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        let request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        answer
    }

    fn kubectl(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("kubectl runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    fn kubectl_ok(&self, args: &[&str]) -> String {
        let (ok, text) = self.kubectl(args);
        assert!(ok, "kubectl {args:?} failed: {text}");
        text
    }
}

impl Drop for Sandbox {
    /// SIGTERM first, so the sandbox stops what it started (moto's server, the test API
    /// server); SIGKILL only if it has not stopped within 15 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_sandbox_runs_the_operator_and_the_printed_commands_work() {
    let dir = std::env::temp_dir().join(format!("patchbay-sandbox-{}", std::process::id()));
    let mut sandbox = Sandbox::start(&dir);
    assert!(
        sandbox
            .printed
            .contains(&format!("export KUBECONFIG={}", sandbox.kubeconfig)),
        "{}",
        sandbox.printed
    );
    assert!(sandbox.printed.contains("kubectl get conn,vat -A"));
    let says = match server() {
        "emulator" => "patchbay's Kubernetes API emulator at http://127.0.0.1:",
        _ => "a real kube-apiserver with etcd at https://127.0.0.1:",
    };
    assert!(sandbox.printed.contains(says), "{}", sandbox.printed);

    // Every example connection becomes Ready, as kubectl wait sees it.
    sandbox.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "connection",
        "--all",
        "-n",
        "ci",
        "--timeout=30s",
    ]);
    sandbox.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "connection",
        "--all",
        "-n",
        "platform",
        "--timeout=30s",
    ]);
    let table = sandbox.kubectl_ok(&["get", "conn,vat", "-A"]);
    assert!(
        table.contains("TYPE") && table.contains("READY") && table.contains("VERIFIED"),
        "{table}"
    );
    assert_eq!(
        table.lines().filter(|l| l.contains(" True ")).count(),
        16,
        "{table}"
    );
    let described = sandbox.kubectl_ok(&["describe", "conn", "-n", "ci", "acme-github"]);
    assert!(described.contains("GitHub App 123456"), "{described}");
    let explained = sandbox.kubectl_ok(&["explain", "vcsauthtoken.spec.github"]);
    assert!(explained.contains("repositories"), "{explained}");

    // A user applies a token: it resolves to the root's connection through the tree and the
    // simulated GitHub mints it into the Secret.
    sandbox.kubectl_ok(&["apply", "-f", "examples/tokens/github.yaml"]);
    sandbox.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "vat/app-checkout",
        "-n",
        "team-a",
        "--timeout=30s",
    ]);
    // The operator's metrics, at the address the banner printed.
    let metrics = sandbox.metrics();
    for family in [
        r#"patchbay_reconciles_total{controller="vcsauthtoken",result="success"}"#,
        "patchbay_reconcile_duration_seconds_bucket",
        r#"patchbay_provider_calls_total{kind="githubApp",call="mint",result="success"}"#,
        r#"patchbay_provider_call_duration_seconds_count{kind="githubApp",call="mint"}"#,
        r#"patchbay_renewal_failures_total{kind="githubApp"} 0"#,
        r#"patchbay_token_expiration_timestamp_seconds{namespace="team-a",name="app-checkout"}"#,
        "patchbay_leader 1",
    ] {
        assert!(metrics.contains(family), "no {family} in:\n{metrics}");
    }
    let from = sandbox.kubectl_ok(&[
        "get",
        "vat",
        "-n",
        "team-a",
        "app-checkout",
        "-o",
        "jsonpath={.status.connectionRef.namespace}/{.status.connectionRef.name}",
    ]);
    assert_eq!(from.trim(), "ci/acme-github");
    let user = sandbox.kubectl_ok(&[
        "get",
        "secret",
        "-n",
        "team-a",
        "app-checkout",
        "-o",
        "jsonpath={.data.username}",
    ]);
    assert_eq!(
        user.trim(),
        "eC1hY2Nlc3MtdG9rZW4=",
        "base64 of x-access-token"
    );
    let verified = sandbox.kubectl_ok(&[
        "get",
        "conn",
        "-n",
        "ci",
        "acme-github",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Verified\")].status}",
    ]);
    assert_eq!(verified.trim(), "True");
    // With the example user token, permissions are lowered to what that user holds.
    sandbox.kubectl_ok(&["apply", "-f", "examples/tokens/github-user-token.yaml"]);
    sandbox.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "vat/app-release",
        "-n",
        "team-a",
        "--timeout=30s",
    ]);
    let source = sandbox.kubectl_ok(&[
        "get",
        "vat",
        "-n",
        "team-a",
        "app-release",
        "-o",
        "jsonpath={.status.personalAccessTokenSource}",
    ]);
    assert_eq!(source.trim(), "UserProvided");
    // With moto installed (CI always installs it), the AWS and ECR examples mint too.
    if sandbox.printed.contains("moto at") {
        sandbox.kubectl_ok(&[
            "apply",
            "-f",
            "examples/tokens/aws.yaml",
            "-f",
            "examples/tokens/ecr.yaml",
        ]);
        for token in ["vat/deploy-aws", "vat/ecr-login"] {
            sandbox.kubectl_ok(&[
                "wait",
                "--for=condition=Ready",
                token,
                "-n",
                "team-a",
                "--timeout=30s",
            ]);
        }
        let keys = sandbox.kubectl_ok(&[
            "get",
            "secret",
            "-n",
            "team-a",
            "deploy-aws",
            "-o",
            "jsonpath={.data.credentials}",
        ]);
        assert!(!keys.trim().is_empty());
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs moto: {}",
            sandbox.printed
        );
        eprintln!(
            "moto is not installed (scripts/moto install): the AWS part of this test is skipped"
        );
    }
    let table = sandbox.kubectl_ok(&["get", "vat", "-n", "team-a"]);
    assert!(
        table.contains("EXPIRES") && table.contains(" 20"),
        "expiry as a time: {table}"
    );
    // The whole tokens folder applies as it does on a cluster, build pods included (stored,
    // never run: nothing schedules them).
    sandbox.kubectl_ok(&["apply", "-f", "examples/tokens/"]);
    let pods = sandbox.kubectl_ok(&["get", "pods", "-n", "team-a", "-o", "name"]);
    assert!(
        pods.contains("pod/checkout") && pods.contains("pod/deploy"),
        "{pods}"
    );
    // One Ready token per registry, package and chat kind, against the sandbox's stand-ins
    // (the registry and verdaccio when installed; CI installs both).
    let mut tokens = vec![
        ("ci", "vat/slack-bot"),
        ("ci", "vat/azure-devops-git"),
        ("platform", "vat/p4-admin"),
    ];
    let peers = sandbox.printed.contains("a Docker registry at")
        && sandbox.printed.contains("verdaccio at");
    assert!(
        peers || std::env::var_os("CI").is_none(),
        "CI installs the registry and verdaccio: {}",
        sandbox.printed
    );
    if peers {
        tokens.extend([
            ("ci", "vat/registry-login"),
            ("team-a", "vat/registry-pull"),
            ("ci", "vat/npmrc"),
        ]);
    }
    for (namespace, token) in tokens {
        sandbox.kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            token,
            "-n",
            namespace,
            "--timeout=30s",
        ]);
    }
    for conn in ["conn/acme-slack", "conn/acme-azure-devops-pat"] {
        sandbox.kubectl_ok(&[
            "wait",
            "--for=condition=Verified",
            conn,
            "-n",
            "ci",
            "--timeout=30s",
        ]);
    }
    // Relabelling team-a out of the tree (its parent becomes a new root-level project) keeps the
    // token on the root connection; a label that allowedNamespaces does not select refuses it,
    // and what the token held is withdrawn.
    sandbox.kubectl_ok(&["label", "ns", "team-a", "acme.example/team-", "--overwrite"]);
    let ready = "jsonpath={.status.conditions[?(@.type==\"Ready\")].message}";
    eventually(20, "the token to be refused by allowedNamespaces", || {
        let (_, out) =
            sandbox.kubectl(&["get", "vat", "-n", "team-a", "app-checkout", "-o", ready]);
        out.starts_with("the credential was withdrawn: ")
            && out.contains("(ConnectionNotAvailable)")
    });
    let (found, _) = sandbox.kubectl(&["get", "secret", "-n", "team-a", "app-checkout"]);
    assert!(!found, "the withdrawn credential's Secret is deleted");

    // SIGTERM stops it cleanly.
    let pid = sandbox.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = sandbox.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the sandbox did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_secret_value_reaches_the_operators_logs_even_at_debug_level() {
    let dir = std::env::temp_dir().join(format!("patchbay-sandbox-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log_path = dir.join("operator.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let sandbox = Sandbox::start_logging(&dir, "debug", Stdio::from(log));
    sandbox.kubectl_ok(&["apply", "-f", "examples/tokens/github.yaml"]);
    sandbox.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "vat/app-checkout",
        "-n",
        "team-a",
        "--timeout=30s",
    ]);
    // Every Secret value in the cluster: the connections' inputs and the minted token.
    let values = sandbox.kubectl_ok(&[
        "get",
        "secrets",
        "-A",
        "-o",
        "jsonpath={range .items[*]}{range .data.*}{@}{\"\\n\"}{end}{end}",
    ]);
    let mut secrets: Vec<String> = Vec::new();
    for encoded in values.lines().filter(|l| !l.is_empty()) {
        let out = Command::new("base64")
            .arg("-d")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(encoded.as_bytes())?;
                c.wait_with_output()
            });
        let decoded = String::from_utf8_lossy(&out.unwrap().stdout).into_owned();
        secrets.extend(
            decoded
                .lines()
                .filter(|l| l.len() >= 12 && !l.starts_with("-----"))
                .map(str::to_string),
        );
    }
    assert!(secrets.len() >= 10, "found {} secret values", secrets.len());
    // AWS access key IDs are identifiers, not secrets (the AWS SDK logs them at debug level and
    // redacts the secret half); every other value must stay out of the log.
    let is_key_id = |v: &str| {
        (v.starts_with("AKIA") || v.starts_with("ASIA"))
            && v.len() == 20
            && v.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    };
    secrets.retain(|v| !is_key_id(v));
    drop(sandbox);
    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logged.contains("minting a credential"),
        "the log is the operator's"
    );
    for value in &secrets {
        assert!(
            !logged.contains(value.as_str()),
            "a secret value appears in the operator's log"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
