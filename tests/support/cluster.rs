//! A test's own slice of a shared cluster, with patchbay's CRDs installed and the real
//! controllers running as the operator identity.
//!
//! By default every test of a binary shares one real kube-apiserver
//! ([`testkit::envtest::ApiServer`]); `PATCHBAY_TEST_SERVER=emulator` gives each test an emulator
//! instead, and `PATCHBAY_TEST_SERVER=kubeconfig` uses the current kubeconfig's cluster. A test
//! works in its own namespaces: the names it uses (`ci`, `team-a`, ...) are logical, and
//! [`Cluster::ns`] turns them into the real ones (`<id>-ci`, ...). Every namespace of a test
//! carries the label `patchbay.dev/test=<id>`, and the test's operator runs with that label as
//! its `--namespace-selector`, so tests running side by side never touch each other's objects.
//! The operator authenticates as the ServiceAccount that `examples/install/operator-rbac.yaml`
//! binds, with only the rights that manifest grants.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::{Client, Resource, ResourceExt};
use patchbay::api::{Condition, Connection, PARENT_LABEL, VcsAuthToken, crd};
use patchbay::controller::{self, Context, Options};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use testkit::envtest::{Identity, TestServer};
use testkit::wait::observe;
use tokio::sync::oneshot;

/// The logical root namespace of every test cluster.
pub const ROOT: &str = "ci";
/// The label that marks a test's namespaces; its value is the test's id.
pub const TEST_LABEL: &str = "patchbay.dev/test";

/// The operator's install manifest (ServiceAccount, ClusterRole, binding): the rights the
/// README lists, and the only ones the tests' operator has.
pub const OPERATOR_RBAC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/install/operator-rbac.yaml"
);

/// A running test cluster: a server, an admin client, and patchbay's controllers.
pub struct Cluster {
    /// The API server this test runs against.
    pub server: TestServer,
    /// An administrator's client.
    pub client: Client,
    /// The controllers' shared context.
    pub ctx: Arc<Context>,
    id: String,
    allow_default_chain: bool,
    grace: Duration,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Cluster {
    /// Starts a cluster with the root namespace `ci` and default operator options.
    pub async fn start() -> Self {
        Self::start_with(false).await
    }

    /// Starts a cluster; `allow_default_chain` is the operator flag of that name.
    pub async fn start_with(allow_default_chain: bool) -> Self {
        Self::start_configured(allow_default_chain, Duration::ZERO).await
    }

    /// Starts a cluster whose operator keeps superseded credentials for `grace`.
    pub async fn start_with_grace(grace: Duration) -> Self {
        Self::start_configured(false, grace).await
    }

    /// Starts a cluster with default operator options on `server`: a server of the test's
    /// own, started with flags the shared one does not have.
    pub async fn start_on(server: TestServer) -> Self {
        Self::start_on_configured(server, false, Duration::ZERO).await
    }

    async fn start_configured(allow_default_chain: bool, grace: Duration) -> Self {
        Self::start_on_configured(TestServer::start().await, allow_default_chain, grace).await
    }

    async fn start_on_configured(
        server: TestServer,
        allow_default_chain: bool,
        grace: Duration,
    ) -> Self {
        init_logging();
        let client = server.client(Identity::Admin).await;
        install(&server, &client).await;
        let id = testkit::envtest::unique_id("t");
        let operator = server.client(Identity::Operator).await;
        let (ctx, stop, task) = start_operator(operator, options(&id, allow_default_chain, grace));
        let cluster = Self {
            server,
            client,
            ctx,
            id,
            allow_default_chain,
            grace,
            stop: Some(stop),
            task: Some(task),
        };
        cluster.namespace(ROOT, None).await;
        cluster
    }

    /// This test's id: the value of its namespaces' `patchbay.dev/test` label.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The real name of this test's namespace `logical`.
    pub fn ns(&self, logical: &str) -> String {
        format!("{}-{logical}", self.id)
    }

    /// A namespaced API for this test's namespace `logical`, as the administrator.
    pub fn api<K>(&self, logical: &str) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.ns(logical))
    }

    /// Creates (or relabels) namespace `logical` with an optional parent (also logical).
    pub async fn namespace(&self, logical: &str, parent: Option<&str>) {
        let labels: BTreeMap<String, String> = parent
            .map(|p| (PARENT_LABEL.to_string(), self.ns(p)))
            .into_iter()
            .collect();
        self.namespace_with_labels(logical, labels).await;
    }

    /// Creates namespace `logical` with exactly these labels (plus the test label), or
    /// replaces its labels. A `patchbay.dev/parent` value is taken as it is given.
    pub async fn namespace_with_labels(&self, logical: &str, mut labels: BTreeMap<String, String>) {
        labels.insert(TEST_LABEL.into(), self.id.clone());
        let name = self.ns(logical);
        let body = json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels},
        });
        Api::<Namespace>::all(self.client.clone())
            .patch(
                &name,
                &PatchParams::apply("test").force(),
                &Patch::Apply(&body),
            )
            .await
            .unwrap_or_else(|e| panic!("namespace {name} applies: {e}"));
    }

    /// Server-side applies any object given as JSON, as the administrator. A namespaced
    /// object's `metadata.namespace` is a logical name of this test's namespaces; so are a
    /// Namespace's name and its `patchbay.dev/parent` label.
    pub async fn apply(&self, mut object: Value) {
        if object["kind"] == "Namespace" && object["apiVersion"] == "v1" {
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let mut labels: BTreeMap<String, String> =
                serde_json::from_value(object["metadata"]["labels"].take()).unwrap_or_default();
            if let Some(parent) = labels.get_mut(PARENT_LABEL) {
                *parent = self.ns(parent);
            }
            return self.namespace_with_labels(&name, labels).await;
        }
        if let Some(ns) = object["metadata"]["namespace"].as_str() {
            object["metadata"]["namespace"] = json!(self.ns(ns));
        }
        apply_as(&self.client, &object)
            .await
            .unwrap_or_else(|e| panic!("{} applies: {e}", object["metadata"]["name"]));
    }

    /// Creates an Opaque Secret with string data in namespace `logical`.
    pub async fn secret(&self, logical: &str, name: &str, data: &[(&str, &str)]) {
        let data: BTreeMap<&str, &str> = data.iter().copied().collect();
        self.apply(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": logical},
            "stringData": data,
        }))
        .await;
    }

    /// A Secret's data as text, for assertions; `None` when it does not exist.
    pub async fn secret_text(&self, logical: &str, name: &str) -> Option<BTreeMap<String, String>> {
        let s = self.api::<Secret>(logical).get_opt(name).await.ok()??;
        Some(
            s.data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                .collect(),
        )
    }

    /// Deletes a namespaced object of type `K` from namespace `logical`.
    pub async fn delete<K>(&self, logical: &str, name: &str)
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        self.api::<K>(logical)
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete succeeds");
    }

    /// Waits until Connection `logical/name` has a Ready condition for its generation that
    /// satisfies `check`, and returns that condition.
    pub async fn connection_ready(
        &self,
        logical: &str,
        name: &str,
        check: impl Fn(&Condition) -> bool,
    ) -> Condition {
        let api: Api<Connection> = self.api(logical);
        let what = format!("Connection {}/{name} Ready condition", self.ns(logical));
        eventually(30, &what, || {
            let api = api.clone();
            let check = &check;
            async move {
                let c = api.get_opt(name).await.ok()??;
                ready_for_generation(
                    c.status.as_ref()?.conditions.as_slice(),
                    c.meta().generation,
                )
                .filter(|r| check(r))
                .cloned()
            }
        })
        .await
    }

    /// Waits until Connection `logical/name` has a Verified condition other than `NotChecked`
    /// that satisfies `check`, and returns it.
    pub async fn connection_verified(
        &self,
        logical: &str,
        name: &str,
        check: impl Fn(&Condition) -> bool,
    ) -> Condition {
        let api: Api<Connection> = self.api(logical);
        let what = format!("Connection {}/{name} Verified condition", self.ns(logical));
        observe(30, &what, || {
            let api = api.clone();
            let check = &check;
            async move {
                let c = api.get_opt(name).await.ok().flatten();
                let conditions = c.and_then(|c| c.status).map(|s| s.conditions);
                let found = (conditions.into_iter().flatten()).find(|c| c.type_ == "Verified");
                match found {
                    Some(c) if c.reason != "NotChecked" && check(&c) => Ok(c),
                    other => Err(format!("{other:?}")),
                }
            }
        })
        .await
    }

    /// Whether the operator is still running: a reconcile that panicked or a controller that
    /// stopped would have ended it.
    pub fn operator_running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Waits until VcsAuthToken `logical/name` has a Ready condition for its generation that
    /// satisfies `check`, and returns the token.
    pub async fn token_ready(
        &self,
        logical: &str,
        name: &str,
        check: impl Fn(&Condition) -> bool,
    ) -> VcsAuthToken {
        let api: Api<VcsAuthToken> = self.api(logical);
        let what = format!("VcsAuthToken {}/{name} Ready condition", self.ns(logical));
        observe(30, &what, || {
            let api = api.clone();
            let check = &check;
            async move {
                let Some(t) = api.get_opt(name).await.ok().flatten() else {
                    return Err("no such token".into());
                };
                let conditions = t.status.as_ref().map(|s| s.conditions.as_slice());
                let ready =
                    ready_for_generation(conditions.unwrap_or_default(), t.meta().generation);
                match ready {
                    Some(c) if check(c) => Ok(t),
                    other => Err(format!("{other:?}")),
                }
            }
        })
        .await
    }

    /// Stops the controllers and starts fresh ones (empty caches, new clients), as an operator
    /// restart does.
    pub async fn restart_controllers(&mut self) {
        self.stop_controllers(Duration::from_secs(10)).await;
        let operator = self.server.client(Identity::Operator).await;
        let (ctx, stop, task) = start_operator(
            operator,
            options(&self.id, self.allow_default_chain, self.grace),
        );
        self.ctx = ctx;
        self.stop = Some(stop);
        self.task = Some(task);
    }

    /// How many times the controllers reconciled `Kind ns/name` (real namespace name).
    pub fn reconciles(&self, key: &str) -> u64 {
        self.ctx.reconcile_count(key)
    }

    /// Stops the controllers. The test's namespaces stay (a real API server without a
    /// controller-manager never finishes deleting a namespace); the server goes with the process.
    pub async fn stop(mut self) {
        self.stop_controllers(Duration::from_secs(5)).await;
    }

    async fn stop_controllers(&mut self, grace: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(grace, &mut task).await.is_err()
        {
            // Not stopped in time: no operator of this test may keep serving.
            task.abort();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// With `RUST_LOG` set, the operator's logs go to the test's output (shown for failing tests).
fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

fn options(id: &str, allow_default_chain: bool, grace: Duration) -> Options {
    Options {
        allowed_endpoints: Default::default(),
        root_namespace: format!("{id}-{ROOT}"),
        allow_default_credential_chain: allow_default_chain,
        namespace_selector: Some(format!("{TEST_LABEL}={id}")),
        superseded_grace: grace,
        count_reconciles: true,
    }
}

fn start_operator(
    client: Client,
    options: Options,
) -> (
    Arc<Context>,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stopped) = oneshot::channel::<()>();
    let (ctx, operator) = controller::start(client, options, async {
        let _ = stopped.await;
    });
    (ctx, stop, tokio::spawn(operator))
}

/// Installs the CRDs (and, on a real server, the operator's RBAC) and waits until both kinds
/// are served. Idempotent: every test of a shared server does it.
pub async fn install(server: &TestServer, admin: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    for (_, crd) in crd::all() {
        crds.patch(
            &crd.name_any(),
            &PatchParams::apply("patchbay-tests").force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("CRD installs");
    }
    if server.is_real() {
        for object in manifests(OPERATOR_RBAC) {
            apply_as(admin, &object)
                .await
                .unwrap_or_else(|e| panic!("{OPERATOR_RBAC}: {e}"));
        }
        // The authorizer learns of a new binding through its own watch: an operator started
        // before then is refused and its watches back off for seconds.
        let operator = server.client(Identity::Operator).await;
        eventually(30, "the operator's rights to take effect", || {
            let operator = operator.clone();
            async move {
                Api::<VcsAuthToken>::all(operator.clone())
                    .list(&Default::default())
                    .await
                    .ok()?;
                Api::<Namespace>::all(operator)
                    .list_metadata(&Default::default())
                    .await
                    .ok()
            }
        })
        .await;
    }
    eventually(30, "the CRDs to be served", || {
        let c = admin.clone();
        async move {
            Api::<Connection>::all(c.clone())
                .list(&Default::default())
                .await
                .ok()?;
            Api::<VcsAuthToken>::all(c)
                .list(&Default::default())
                .await
                .ok()
        }
    })
    .await;
}

/// The documents of a YAML file.
pub fn manifests(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let docs: Vec<Value> =
        serde_saphyr::from_str_multiple(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// An API for `object`'s kind (any kind the server serves), in its namespace if it has one.
async fn dynamic_api(client: &Client, object: &Value) -> Result<Api<DynamicObject>, kube::Error> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, object["kind"].as_str().unwrap_or_default());
    let (ar, caps) = kube::discovery::pinned_kind(client, &gvk).await?;
    Ok(match object["metadata"]["namespace"].as_str() {
        Some(ns) if caps.scope == kube::discovery::Scope::Namespaced => {
            Api::namespaced_with(client.clone(), ns, &ar)
        }
        _ => Api::all_with(client.clone(), &ar),
    })
}

/// Server-side applies `object` (any kind the server serves) with `client`.
pub async fn apply_as(client: &Client, object: &Value) -> Result<(), kube::Error> {
    server_side_apply(client, object, PatchParams::apply("test").force()).await
}

/// Server-side applies `object` (a JSON manifest) with `params`.
pub async fn server_side_apply(
    client: &Client,
    object: &Value,
    params: PatchParams,
) -> Result<(), kube::Error> {
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    dynamic_api(client, object)
        .await?
        .patch(name, &params, &Patch::Apply(object))
        .await
        .map(|_| ())
}

fn ready_for_generation(conditions: &[Condition], generation: Option<i64>) -> Option<&Condition> {
    conditions
        .iter()
        .find(|c| c.type_ == "Ready" && c.observed_generation == generation)
}

/// The name of an object, for messages.
pub fn name_of(o: &impl ResourceExt) -> String {
    o.name_any()
}

/// The message of a token's Ready condition (empty when it has none).
pub fn ready_message(t: &VcsAuthToken) -> String {
    let conditions = t.status.as_ref().map(|s| s.conditions.as_slice());
    (conditions.unwrap_or_default().iter())
        .find(|c| c.type_ == "Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

/// A Ready condition check on the reason.
pub fn reason(expected: &'static str) -> impl Fn(&Condition) -> bool {
    move |c| c.reason == expected
}

pub use testkit::wait::eventually;

/// Server-side applies `object` with `dryRun=All`: the server admits or refuses it (new or
/// existing) and stores nothing.
pub async fn apply_dry_run(client: &Client, object: &Value) -> Result<(), kube::Error> {
    server_side_apply(client, object, PatchParams::apply("test").force().dry_run()).await
}

/// Creates `object` with `dryRun=All` (a POST, as `kubectl create` and client-side
/// `kubectl apply` send): the server validates it and stores nothing.
pub async fn create_dry_run(client: &Client, object: &Value) -> Result<(), kube::Error> {
    let api = dynamic_api(client, object).await?;
    let object: DynamicObject =
        serde_json::from_value(object.clone()).map_err(kube::Error::SerdeError)?;
    let params = kube::api::PostParams {
        dry_run: true,
        ..Default::default()
    };
    api.create(&params, &object).await.map(|_| ())
}
