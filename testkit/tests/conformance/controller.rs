//! A real `kube::runtime::Controller` with a finalizer, through its whole life cycle: create,
//! reconcile (status written with server-side apply, an owned ConfigMap created), delete,
//! cleanup, finalizer removed, object and owned ConfigMap gone.

use crate::{Widget, WidgetSpec, eventually, with_widgets};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use testkit::apiserver::Faults;

const FINALIZER: &str = "example.com/cleanup";

struct Ctx {
    client: Client,
    cleanups: AtomicUsize,
}

#[derive(Debug)]
struct Failure(String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

async fn apply(w: Arc<Widget>, ctx: &Ctx) -> Result<Action, Failure> {
    let ns = w.namespace().unwrap_or_default();
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let owned = ConfigMap {
        metadata: ObjectMeta {
            name: Some(format!("{}-config", w.name_any())),
            owner_references: Some(vec![
                w.controller_owner_ref(&())
                    .expect("a stored widget has a uid"),
            ]),
            ..Default::default()
        },
        data: Some([("size".to_string(), w.spec.size.to_string())].into()),
        ..Default::default()
    };
    let pp = PatchParams::apply("widget-controller").force();
    cms.patch(&owned.name_any(), &pp, &Patch::Apply(&owned))
        .await
        .map_err(|e| Failure(format!("applying configmap: {e}")))?;
    let widgets: Api<Widget> = Api::namespaced(ctx.client.clone(), &ns);
    let status =
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "status": {"ready": true}});
    widgets
        .patch_status(&w.name_any(), &pp, &Patch::Apply(&status))
        .await
        .map_err(|e| Failure(format!("applying status: {e}")))?;
    Ok(Action::requeue(Duration::from_secs(300)))
}

async fn reconcile(
    w: Arc<Widget>,
    ctx: Arc<Ctx>,
) -> Result<Action, kube::runtime::finalizer::Error<Failure>> {
    let api: Api<Widget> = Api::namespaced(ctx.client.clone(), &w.namespace().unwrap_or_default());
    finalizer(&api, FINALIZER, w, |event| async {
        match event {
            Event::Apply(w) => apply(w, &ctx).await,
            Event::Cleanup(_) => {
                ctx.cleanups.fetch_add(1, Ordering::SeqCst);
                Ok(Action::await_change())
            }
        }
    })
    .await
}

/// Runs the Controller over one Widget's life; `faults` are injected once the CRD exists.
async fn widget_life_cycle(faults: Option<Faults>) -> usize {
    let (emu, client) = with_widgets().await;
    if let Some(f) = faults {
        emu.set_faults(f);
    }
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        cleanups: AtomicUsize::new(0),
    });
    let widgets: Api<Widget> = Api::all(client.clone());
    let configmaps: Api<ConfigMap> = Api::all(client.clone());
    let controller = Controller::new(widgets, watcher::Config::default())
        .owns(configmaps, watcher::Config::default())
        .run(
            reconcile,
            |_, _, _| Action::requeue(Duration::from_millis(200)),
            ctx.clone(),
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                eprintln!("controller error: {e:?}");
            }
        });
    let running = tokio::spawn(controller);

    let api: Api<Widget> = Api::namespaced(client.clone(), "default");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    api.create(
        &PostParams::default(),
        &Widget::new("w", WidgetSpec { size: 3 }),
    )
    .await
    .unwrap();

    let ready = eventually(10, "the widget to be reconciled", || async {
        let w = api.get("w").await.ok()?;
        w.status.as_ref().filter(|s| s.ready).map(|_| w.clone())
    })
    .await;
    assert_eq!(ready.finalizers(), &[FINALIZER.to_string()]);
    let cm = cms.get("w-config").await.unwrap();
    assert_eq!(cm.data.unwrap()["size"], "3");

    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"size": 5}})),
    )
    .await
    .unwrap();
    eventually(10, "the owned configmap to follow the spec", || async {
        let cm = cms.get("w-config").await.ok()?;
        (cm.data?.get("size")? == "5").then_some(())
    })
    .await;

    eventually(10, "the widget delete to be accepted", || async {
        api.delete("w", &DeleteParams::default()).await.ok()
    })
    .await;
    eventually(10, "the widget to be gone after cleanup", || async {
        api.get_opt("w").await.unwrap().is_none().then_some(())
    })
    .await;
    eventually(
        10,
        "the owned configmap to be garbage collected",
        || async {
            cms.get_opt("w-config")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;
    running.abort();
    ctx.cleanups.load(Ordering::SeqCst)
}

#[tokio::test]
async fn a_controller_with_a_finalizer_runs_the_full_create_reconcile_delete_cleanup_cycle() {
    assert_eq!(
        widget_life_cycle(None).await,
        1,
        "cleanup runs exactly once"
    );
}

#[tokio::test]
async fn the_controller_life_cycle_completes_despite_injected_conflicts_errors_and_latency() {
    let faults = Faults {
        conflict_rate: 0.3,
        error_rate: 0.1,
        latency_ms: 5,
        resource: None,
    };
    assert!(widget_life_cycle(Some(faults)).await >= 1);
}
