//! A real `kube::runtime::Controller` with a finalizer, through its whole life cycle: create,
//! reconcile (status written with server-side apply, an owned ConfigMap created), delete,
//! cleanup, finalizer removed, object gone, and the owned ConfigMap garbage collected.
//!
//! The life cycle runs on both servers; on the real one, which has no garbage collector
//! without a kube-controller-manager, the owned ConfigMap stays. The run with injected
//! faults is emulator only (faults are an emulator control).

use crate::{Target, Widget, WidgetSpec, eventually};
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
async fn widget_life_cycle(t: Target, faults: Option<Faults>) -> usize {
    let t = t.with_widgets().await;
    if let Some(f) = faults {
        t.emulator_handle()
            .expect("faults are injected into the emulator")
            .set_faults(f);
    }
    let client = t.client.clone();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        cleanups: AtomicUsize::new(0),
    });
    // Only the test's namespace: other tests' widgets share the real server.
    let widgets: Api<Widget> = t.api();
    let configmaps: Api<ConfigMap> = t.api();
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

    let api: Api<Widget> = t.api();
    let cms: Api<ConfigMap> = t.api();
    // The test's own writes retry too: with faults, any write may fail.
    eventually(10, "the widget to be created", || async {
        let made = api
            .create(
                &PostParams::default(),
                &Widget::new("w", WidgetSpec { size: 3 }),
            )
            .await;
        match made {
            Ok(_) => Some(()),
            Err(kube::Error::Api(s)) if s.reason == "AlreadyExists" => Some(()),
            Err(_) => None,
        }
    })
    .await;

    let ready = eventually(10, "the widget to be reconciled", || async {
        let w = api.get("w").await.ok()?;
        w.status.as_ref().filter(|s| s.ready).map(|_| w.clone())
    })
    .await;
    assert_eq!(ready.finalizers(), &[FINALIZER.to_string()]);
    let cm = cms.get("w-config").await.unwrap();
    assert_eq!(cm.data.unwrap()["size"], "3");

    eventually(10, "the spec change to be accepted", || async {
        let size = Patch::Merge(json!({"spec": {"size": 5}}));
        api.patch("w", &PatchParams::default(), &size).await.ok()
    })
    .await;
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
    if t.is_real() {
        // No garbage collector: the dependent stays, naming an owner that is gone.
        let cm = cms.get("w-config").await.unwrap();
        assert_eq!(cm.owner_references()[0].uid, ready.uid().unwrap());
    } else {
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
    }
    running.abort();
    ctx.cleanups.load(Ordering::SeqCst)
}

async fn a_controller_with_a_finalizer_runs_the_full_create_reconcile_delete_cleanup_cycle(
    t: Target,
) {
    assert_eq!(
        widget_life_cycle(t, None).await,
        1,
        "cleanup runs exactly once"
    );
}
on_both!(a_controller_with_a_finalizer_runs_the_full_create_reconcile_delete_cleanup_cycle);

/// Emulator only: faults are an emulator control.
#[tokio::test]
async fn the_controller_life_cycle_completes_despite_injected_conflicts_errors_and_latency() {
    let faults = Faults {
        conflict_rate: 0.3,
        error_rate: 0.1,
        latency_ms: 5,
        resource: None,
    };
    assert!(widget_life_cycle(Target::emulator().await, Some(faults)).await >= 1);
}
