//! Checks that the cluster serves patchbay's CustomResourceDefinitions before anything starts.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client};

use crate::api::crd;

/// Why the cluster cannot serve patchbay yet.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The API server could not be reached or refused the request.
    #[error("cannot read CustomResourceDefinitions from the cluster: {0}")]
    Unreachable(kube::Error),
    /// Some CRDs are missing or not established.
    #[error(
        "{}; install them with `patchbay crd | kubectl apply --server-side -f -` (or `kubectl apply --server-side -f crds/`), then start patchbay again",
        .0.join("; ")
    )]
    NotServed(Vec<String>),
}

/// What the operator found for one CRD it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrdState {
    /// No CRD of that name exists.
    Missing,
    /// It exists, but the API server has not set `Established=True` yet.
    NotEstablished,
    /// It exists but does not serve the version patchbay speaks.
    VersionNotServed,
    /// Ready to use.
    Served,
}

/// Classifies a CRD read from the cluster (or its absence) against the version patchbay needs.
pub fn classify(found: Option<&CustomResourceDefinition>, version: &str) -> CrdState {
    let Some(found) = found else {
        return CrdState::Missing;
    };
    let established = found
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        });
    if !found
        .spec
        .versions
        .iter()
        .any(|v| v.name == version && v.served)
    {
        CrdState::VersionNotServed
    } else if !established {
        CrdState::NotEstablished
    } else {
        CrdState::Served
    }
}

/// Describes every CRD that is not served, or returns an empty list.
pub fn problems<'a>(
    states: impl IntoIterator<Item = (&'a str, CrdState)>,
    version: &str,
) -> Vec<String> {
    states
        .into_iter()
        .filter_map(|(name, state)| match state {
            CrdState::Served => None,
            CrdState::Missing => Some(format!("CustomResourceDefinition {name} is not installed")),
            CrdState::NotEstablished => Some(format!(
                "CustomResourceDefinition {name} is not Established yet"
            )),
            CrdState::VersionNotServed => Some(format!(
                "CustomResourceDefinition {name} does not serve version {version} (an older patchbay's CRD?)"
            )),
        })
        .collect()
}

/// Reads patchbay's CRDs from the cluster and fails with an actionable message unless all are
/// served.
pub async fn ensure_crds_served(client: Client) -> Result<(), InstallError> {
    let api: Api<CustomResourceDefinition> = Api::all(client);
    let mut states = Vec::new();
    for (_, wanted) in crd::all() {
        let name = wanted.metadata.name.clone().unwrap_or_default();
        let found = api
            .get_opt(&name)
            .await
            .map_err(InstallError::Unreachable)?;
        states.push((name, classify(found.as_ref(), crate::api::VERSION)));
    }
    let problems = problems(
        states.iter().map(|(n, s)| (n.as_str(), s.clone())),
        crate::api::VERSION,
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(InstallError::NotServed(problems))
    }
}

/// Checks that `selector` is a label selector the API server accepts, by listing at most one
/// Namespace with it: a mistyped `--namespace-selector` stops the start with the server's reason
/// instead of a watch that fails forever.
pub async fn check_namespace_selector(client: Client, selector: &str) -> Result<(), String> {
    use k8s_openapi::api::core::v1::Namespace;
    let params = kube::api::ListParams::default().labels(selector).limit(1);
    Api::<Namespace>::all(client)
        .list_metadata(&params)
        .await
        .map(|_| ())
        .map_err(|e| match &e {
            kube::Error::Api(s) if s.code == 400 => {
                format!("--namespace-selector {selector:?} is refused by the API server: {e}")
            }
            _ => format!("cannot list Namespaces to check --namespace-selector: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
        CustomResourceDefinitionCondition, CustomResourceDefinitionStatus,
    };

    use super::*;

    fn established(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
        crd.status = Some(CustomResourceDefinitionStatus {
            conditions: Some(vec![CustomResourceDefinitionCondition {
                type_: "Established".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        crd
    }

    fn connection_crd() -> CustomResourceDefinition {
        crd::all().remove(0).1
    }

    #[test]
    fn an_absent_crd_is_missing() {
        assert_eq!(classify(None, "v1alpha1"), CrdState::Missing);
    }

    #[test]
    fn a_crd_without_established_condition_is_not_ready() {
        assert_eq!(
            classify(Some(&connection_crd()), "v1alpha1"),
            CrdState::NotEstablished
        );
    }

    #[test]
    fn an_established_crd_serving_our_version_is_served() {
        assert_eq!(
            classify(Some(&established(connection_crd())), "v1alpha1"),
            CrdState::Served
        );
    }

    #[test]
    fn a_crd_that_serves_another_version_is_reported() {
        let crd = established(connection_crd());
        assert_eq!(classify(Some(&crd), "v1"), CrdState::VersionNotServed);
    }

    #[test]
    fn problems_name_each_crd_and_what_is_wrong() {
        let found = problems(
            [
                ("connections.patchbay.dev", CrdState::Missing),
                ("vcsauthtokens.patchbay.dev", CrdState::Served),
            ],
            "v1alpha1",
        );
        assert_eq!(
            found,
            vec!["CustomResourceDefinition connections.patchbay.dev is not installed"]
        );
    }
}
