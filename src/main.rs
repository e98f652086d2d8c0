//! The `patchbay` command line: wiring only.
#![forbid(unsafe_code)]

#[cfg(feature = "sandbox")]
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

const GETTING_STARTED: &str = "\
Getting started:
  patchbay crd | kubectl apply --server-side -f -      install the CRDs
  kubectl apply -f examples/namespaces.yaml              a project tree (patchbay.dev/parent labels)
  kubectl apply -f examples/connections/github-app.yaml  a Connection and its Secret
  patchbay run --root-namespace ci                       run the operator
  kubectl get conn,vat -A                                see Ready, Verified and expiry

Documentation: README.md; every field: kubectl explain connection.spec / vcsauthtoken.spec";

/// patchbay: reusable credential Connections for CI on Kubernetes, and VcsAuthTokens that mint
/// short-lived credentials from them into Secrets that build pods mount.
#[derive(Parser)]
#[command(version, after_help = GETTING_STARTED)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator against the cluster of the current kubeconfig context (or the in-cluster
    /// service account).
    ///
    /// Install the CRDs first: `patchbay crd | kubectl apply --server-side -f -`.
    Run(RunArgs),
    /// Print the CustomResourceDefinitions as YAML, or write them into a directory.
    ///
    /// Example: `patchbay crd | kubectl apply --server-side -f -`
    Crd {
        /// Write `connection.yaml` and `vcsauthtoken.yaml` into this directory instead of
        /// printing (repeat for several directories).
        #[arg(long, value_name = "DIR")]
        out_dir: Vec<PathBuf>,
    },
    /// Sign in to an OAuth Connection as a person: the device authorization grant where the
    /// provider has one (approve a code in any browser), else a browser sign-in that comes back
    /// to 127.0.0.1 (PKCE). Writes the grant (a refresh token) into a Secret of your namespace
    /// through your kubeconfig and prints the VcsAuthToken that keeps an access token fresh.
    ///
    /// Example: `patchbay login acme-gitlab -n team-a | kubectl apply -f -`
    Login(LoginArgs),
    /// GitHub Apps: `patchbay github-app create` registers one from a manifest.
    #[command(subcommand)]
    GithubApp(GithubAppCommand),
    /// Try patchbay without a cluster: starts a local Kubernetes API, installs the CRDs and the
    /// examples, runs the operator, and prints the kubectl commands to try. Ctrl-C stops it.
    #[cfg(feature = "sandbox")]
    Sandbox {
        /// Directory for the sandbox's kubeconfig.
        #[arg(long, value_name = "DIR", default_value = ".sandbox")]
        dir: PathBuf,
        /// Port of the local Kubernetes API on 127.0.0.1 (0: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Which Kubernetes API to start: a real kube-apiserver when scripts/envtest has one
        /// ready (auto), always the emulator, or always kube-apiserver (building it if needed).
        #[arg(long, value_enum, default_value_t = patchbay::sandbox::ServerChoice::Auto)]
        server: patchbay::sandbox::ServerChoice,
        /// Where to serve /metrics, /healthz and /readyz (port 0: any free port; the banner
        /// says which).
        #[arg(long, value_name = "ADDRESS", default_value = "127.0.0.1:0")]
        http_address: SocketAddr,
    },
}

#[derive(Subcommand)]
enum GithubAppCommand {
    /// Register a GitHub App from a manifest in one go: serves a page on loopback that sends
    /// your browser to GitHub with the manifest, takes GitHub's redirect back, exchanges the
    /// code for the app's key and secrets, writes them into a Secret and a githubApp
    /// Connection through your kubeconfig, and prints the link that installs the app.
    ///
    /// Example: `patchbay github-app create --name "ACME CI" --org acme -n ci`
    Create(CreateAppArgs),
}

#[derive(clap::Args)]
struct CreateAppArgs {
    /// The app's name on GitHub (unique there).
    #[arg(long)]
    name: String,
    /// The organization that owns the app. Default: your own account.
    #[arg(long, value_name = "ORG")]
    org: Option<String>,
    /// GitHub: https://github.com or a GitHub Enterprise Server URL.
    #[arg(long, default_value = "https://github.com")]
    server_url: String,
    /// Where the Secret and the Connection go. Default: the kubeconfig context's namespace.
    #[arg(short, long)]
    namespace: Option<String>,
    /// The Connection's name (its Secret is `<connection>-app`). Default: the app's name in
    /// lower case with dashes.
    #[arg(long)]
    connection: Option<String>,
    /// A permission the app asks for, as NAME=LEVEL (repeat). Default: contents=read.
    #[arg(long = "permission", value_name = "NAME=LEVEL", value_parser = permission)]
    permissions: Vec<(String, String)>,
    /// The loopback address your browser comes back to (port 0: any free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

/// Parses `NAME=LEVEL` with LEVEL read, write or admin.
fn permission(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, level)) if !name.is_empty() && ["read", "write", "admin"].contains(&level) => {
            Ok((name.to_owned(), level.to_owned()))
        }
        _ => Err(format!("{text:?}: use NAME=read, NAME=write or NAME=admin")),
    }
}

#[derive(clap::Args)]
struct LoginArgs {
    /// The Connection, looked up from the namespace up the project tree.
    connection: String,
    /// Your namespace: where the grant Secret and the token live. Default: the kubeconfig
    /// context's namespace.
    #[arg(short, long)]
    namespace: Option<String>,
    /// The namespace the Connection lives in, when the tree cannot be walked.
    #[arg(long, value_name = "NAMESPACE")]
    connection_namespace: Option<String>,
    /// The grant Secret's name. Default: `<connection>-grant`.
    #[arg(long)]
    secret: Option<String>,
    /// The key the refresh token is written to.
    #[arg(long, default_value = "refresh_token")]
    key: String,
    /// The scope to ask for, space-separated (default: the provider's).
    #[arg(long)]
    scope: Option<String>,
    /// The printed VcsAuthToken's name. Default: the connection's name.
    #[arg(long, value_name = "NAME")]
    token_name: Option<String>,
    /// Sign in through the browser (the authorization code flow with PKCE on a loopback
    /// redirect) even where the provider has a device grant.
    #[arg(long)]
    browser: bool,
    /// The loopback address the browser sign-in comes back to (port 0: any free one; name the
    /// port the application registered, e.g. 127.0.0.1:8400).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The root project's namespace: every namespace without a `patchbay.dev/parent` label hangs
    /// under it. Default: the namespace the operator runs in (POD_NAMESPACE, else the service
    /// account's namespace in a cluster, else the kubeconfig context's namespace).
    #[arg(long, env = "PATCHBAY_ROOT_NAMESPACE")]
    root_namespace: Option<String>,
    /// Allow aws/ecr Connections with `credentials.defaultChain`, which lend the operator's own
    /// AWS identity to whoever can create a Connection. Off by default.
    #[arg(long, env = "PATCHBAY_ALLOW_DEFAULT_CREDENTIAL_CHAIN")]
    allow_default_credential_chain: bool,
    /// Serve only namespaces whose labels match this label selector (for example
    /// `patchbay.dev/shard=a`): run several operators with disjoint selectors to shard a large
    /// cluster or to keep instances apart. Each selector must select whole project trees,
    /// root namespace included; objects elsewhere are left to other instances. Default: all.
    #[arg(long, env = "PATCHBAY_NAMESPACE_SELECTOR", value_name = "SELECTOR")]
    namespace_selector: Option<String>,
    /// How long a credential a renewal replaced stays valid before patchbay revokes it, so that
    /// builds that read it just before the renewal finish (Go duration: `2m`, `30s`; `0s`
    /// revokes at once). Kept in the token's status, so it survives a restart.
    #[arg(long, env = "PATCHBAY_SUPERSEDED_GRACE", default_value = "2m", value_parser = grace)]
    superseded_grace: std::time::Duration,
    /// A file of PEM CA certificates that every provider call trusts, besides the system's
    /// roots and a Connection's own `spec.caBundle` (a corporate CA, a TLS-inspecting proxy).
    /// Provider calls go through HTTPS_PROXY / HTTP_PROXY unless NO_PROXY names the host; the
    /// Kubernetes API is reached directly (or through its kubeconfig's proxy-url).
    #[arg(long, env = "PATCHBAY_EXTRA_CA_BUNDLE", value_name = "FILE")]
    extra_ca_bundle: Option<PathBuf>,
    /// The servers Connections may name, as comma-separated host patterns (`github.com`,
    /// `*.corp.example`, `*.amazonaws.com`): a Connection naming another server is not Ready
    /// (`EndpointNotAllowed`) and nothing is called. Default: any server.
    #[arg(long, env = "PATCHBAY_ALLOWED_ENDPOINTS", value_name = "HOSTS", value_parser = patchbay::providers::EndpointPolicy::parse)]
    allowed_endpoints: Option<patchbay::providers::EndpointPolicy>,
    /// Log lines as `text` (for people) or `json` (one object per line, for log pipelines).
    #[arg(long, env = "PATCHBAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Where to serve /metrics (Prometheus), /healthz and /readyz.
    #[arg(
        long,
        env = "PATCHBAY_HTTP_ADDRESS",
        value_name = "ADDRESS",
        default_value = "0.0.0.0:8080"
    )]
    http_address: SocketAddr,
    /// Elect a leader on a Lease, so that several replicas (or the overlap of a rolling update)
    /// never both mint: standbys keep their caches warm and take over when the leader goes.
    /// The Helm chart turns it on.
    #[arg(long, env = "PATCHBAY_LEADER_ELECT", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    leader_elect: bool,
    /// The Lease's namespace. Default: the operator's namespace (POD_NAMESPACE), else the root
    /// namespace.
    #[arg(
        long,
        env = "PATCHBAY_LEADER_ELECTION_NAMESPACE",
        value_name = "NAMESPACE"
    )]
    leader_election_namespace: Option<String>,
    /// The Lease's name. Default: `patchbay`, or `patchbay-<hash of the selector>` with
    /// --namespace-selector, so that each shard elects its own leader.
    #[arg(long, env = "PATCHBAY_LEADER_ELECTION_LEASE", value_name = "NAME")]
    leader_election_lease: Option<String>,
    /// How long a leader holds the Lease without renewing it; a standby takes over after this.
    #[arg(long, env = "PATCHBAY_LEADER_ELECTION_LEASE_DURATION", default_value = "15s", value_parser = lease_duration)]
    leader_election_lease_duration: std::time::Duration,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

/// Parses a lease duration: 5 s to 5 min, whole seconds.
fn lease_duration(text: &str) -> Result<std::time::Duration, String> {
    let d = grace(text)?;
    if !(5..=300).contains(&d.as_secs()) || d.subsec_nanos() != 0 {
        return Err(format!(
            "{text:?}: a lease lasts whole seconds from 5s to 5m"
        ));
    }
    Ok(d)
}

/// Parses a grace period.
fn grace(text: &str) -> Result<std::time::Duration, String> {
    let d = patchbay::renewal::parse_go_duration(text).map_err(|e| e.to_string())?;
    std::time::Duration::try_from(d).map_err(|_| format!("{text:?} is negative"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = match &cli.command {
        Command::Run(args) => args.log_format,
        _ => LogFormat::Text,
    };
    init_tracing(format);
    match cli.command {
        Command::Crd { out_dir } if out_dir.is_empty() => {
            print!("{}", patchbay::api::crd::render_stream());
            ExitCode::SUCCESS
        }
        Command::Crd { out_dir } => {
            for dir in out_dir {
                if let Err(e) = patchbay::api::crd::write_all(&dir) {
                    eprintln!("error: cannot write CRDs into {}: {e}", dir.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Command::Run(args) => run(args),
        Command::Login(args) => login(args),
        Command::GithubApp(GithubAppCommand::Create(args)) => create_app(args),
        #[cfg(feature = "sandbox")]
        Command::Sandbox {
            dir,
            port,
            server,
            http_address,
        } => sandbox(
            patchbay::sandbox::SandboxOptions { dir, port, server },
            http_address,
        ),
    }
}

#[cfg(feature = "sandbox")]
fn sandbox(opts: patchbay::sandbox::SandboxOptions, http_address: SocketAddr) -> ExitCode {
    block_on(async {
        let sandbox = match patchbay::sandbox::Sandbox::start(&opts).await {
            Ok(sandbox) => sandbox,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let telemetry = Arc::new(patchbay::telemetry::Telemetry::default());
        let Some((bound, server)) = serve_telemetry(http_address, &telemetry).await else {
            return ExitCode::FAILURE;
        };
        println!("Metrics: curl http://{bound}/metrics");
        println!("{}", sandbox.banner());
        sandbox.run(telemetry, patchbay::terminated()).await;
        server.abort();
        // stdout may be gone by now (a closed pipe); stopping cleanly matters more than the note.
        let _ = writeln!(std::io::stdout(), "patchbay sandbox stopped.");
        ExitCode::SUCCESS
    })
}

/// The client of the person running a command, from their kubeconfig; `None` after saying why.
async fn person_client() -> Option<kube::Client> {
    kube_client()
        .await
        .inspect_err(|e| {
            eprintln!("error: no Kubernetes configuration found ({e}); set KUBECONFIG")
        })
        .ok()
}

/// Ends a person's command: what it printed for them on stdout, or the error on stderr.
fn finish(outcome: Result<String, String>) -> ExitCode {
    match outcome {
        Ok(printed) => {
            print!("{printed}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn login(args: LoginArgs) -> ExitCode {
    block_on(async {
        let Some(client) = person_client().await else {
            return ExitCode::FAILURE;
        };
        let namespace =
            (args.namespace.clone()).unwrap_or_else(|| client.default_namespace().to_string());
        let opts = patchbay::login::LoginOptions {
            secret: (args.secret.clone()).unwrap_or_else(|| format!("{}-grant", args.connection)),
            token_name: (args.token_name.clone()).unwrap_or_else(|| args.connection.clone()),
            connection: args.connection,
            namespace,
            connection_namespace: args.connection_namespace,
            key: args.key,
            scope: args.scope,
            browser: args.browser,
            listen: args.listen,
        };
        let mut say = |line: &str| eprintln!("{line}");
        finish(patchbay::login::login(client, &opts, &mut say).await)
    })
}

fn create_app(args: CreateAppArgs) -> ExitCode {
    block_on(async {
        let Some(client) = person_client().await else {
            return ExitCode::FAILURE;
        };
        let mut permissions: std::collections::BTreeMap<_, _> =
            args.permissions.into_iter().collect();
        if permissions.is_empty() {
            permissions.insert("contents".into(), "read".into());
        }
        let connection = args.connection.unwrap_or_else(|| {
            (args.name.to_ascii_lowercase().chars())
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect()
        });
        let opts = patchbay::github_app_create::CreateOptions {
            namespace: (args.namespace).unwrap_or_else(|| client.default_namespace().to_string()),
            name: args.name,
            server_url: args.server_url,
            organization: args.org,
            connection,
            permissions,
            listen: args.listen,
        };
        let mut say = |line: &str| eprintln!("{line}");
        let created = patchbay::github_app_create::create(client, &opts, &mut say).await;
        finish(created.map(|install| {
            format!("Install the app on the accounts whose repositories builds need: {install}\n")
        }))
    })
}

fn run(args: RunArgs) -> ExitCode {
    if let Some(path) = &args.extra_ca_bundle {
        let source = format!("--extra-ca-bundle {}", path.display());
        let bundle = std::fs::read(path)
            .map_err(|e| format!("{source}: {e}"))
            .and_then(|pem| {
                patchbay::providers::CaBundle::parse(&pem, &source).map_err(|e| e.message)
            });
        match bundle {
            Ok(bundle) => {
                let network = patchbay::providers::Network::with_extra_bundle(bundle);
                let _ = patchbay::providers::network::install(network);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    block_on(async {
        let client = match kube_client().await {
            Ok(client) => client,
            Err(e) => {
                eprintln!(
                    "error: no Kubernetes configuration found ({e}); set KUBECONFIG or run inside a cluster"
                );
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = patchbay::install::ensure_crds_served(client.clone()).await {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        if let Some(selector) = &args.namespace_selector
            && let Err(e) =
                patchbay::install::check_namespace_selector(client.clone(), selector).await
        {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        let root_namespace = args
            .root_namespace
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| client.default_namespace().to_string());
        let election = args.leader_elect.then(|| patchbay::leader::Election {
            namespace: (args.leader_election_namespace.clone())
                .or_else(|| std::env::var("POD_NAMESPACE").ok())
                .unwrap_or_else(|| root_namespace.clone()),
            lease: (args.leader_election_lease.clone()).unwrap_or_else(|| {
                patchbay::leader::default_lease_name(args.namespace_selector.as_deref())
            }),
            identity: patchbay::leader::default_identity(),
            duration: args.leader_election_lease_duration,
        });
        let options = patchbay::controller::Options {
            root_namespace,
            allow_default_credential_chain: args.allow_default_credential_chain,
            namespace_selector: args.namespace_selector,
            superseded_grace: args.superseded_grace,
            allowed_endpoints: args.allowed_endpoints.unwrap_or_default(),
            count_reconciles: false,
        };
        tracing::info!(
            root_namespace = %options.root_namespace,
            allow_default_credential_chain = options.allow_default_credential_chain,
            namespace_selector = options.namespace_selector.as_deref().unwrap_or("(all)"),
            leader_election = election.is_some(),
            "starting patchbay"
        );
        let telemetry = Arc::new(patchbay::telemetry::Telemetry::default());
        let Some((_, server)) = serve_telemetry(args.http_address, &telemetry).await else {
            return ExitCode::FAILURE;
        };
        let (leadership, election) = match election {
            Some(election) => {
                let (leading, task) = patchbay::leader::elect(client.clone(), election);
                (
                    patchbay::controller::Leadership::elected(leading),
                    Some(task),
                )
            }
            None => (patchbay::controller::Leadership::always(), None),
        };
        let shutdown = patchbay::terminated();
        let (_, operator) =
            patchbay::controller::start_elected(client, options, leadership, telemetry, shutdown);
        operator.await;
        server.abort();
        // The operator's end dropped the last leadership receiver: the Lease is being released,
        // so that a standby takes over at once instead of at the Lease's expiry.
        if let Some(task) = election {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        }
        ExitCode::SUCCESS
    })
}

/// The Kubernetes client of the kubeconfig context or the in-cluster service account.
/// `HTTPS_PROXY` is for provider calls: the API server is reached directly unless the
/// kubeconfig names a `proxy-url` for it.
async fn kube_client() -> Result<kube::Client, String> {
    let mut config = kube::Config::infer().await.map_err(|e| e.to_string())?;
    let named = kube::config::Kubeconfig::read().is_ok_and(|k| {
        (k.clusters.iter()).any(|c| c.cluster.as_ref().is_some_and(|c| c.proxy_url.is_some()))
    });
    if !named {
        config.proxy_url = None;
    }
    kube::Client::try_from(config).map_err(|e| e.to_string())
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `address`; `None` (after saying why) when
/// the address cannot be bound.
async fn serve_telemetry(
    address: SocketAddr,
    telemetry: &Arc<patchbay::telemetry::Telemetry>,
) -> Option<(SocketAddr, tokio::task::JoinHandle<()>)> {
    match patchbay::telemetry::http::serve(address, telemetry.clone()).await {
        Ok(served) => Some(served),
        Err(e) => {
            eprintln!(
                "error: cannot serve /metrics on {address} ({e}); choose another with --http-address"
            );
            None
        }
    }
}

/// Runs `work` on a multi-threaded runtime.
fn block_on(work: impl Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(work),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    // kube-runtime's per-object spans are useful when debugging (RUST_LOG=debug), noise otherwise.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,kube_runtime=warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => logs.json().flatten_event(true).init(),
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}
