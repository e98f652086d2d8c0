//! The namespace tree: which namespace is whose parent, and which Connection a VcsAuthToken
//! may use. Pure: the controller feeds it what its caches hold.
//!
//! A namespace's parent is named by its `patchbay.dev/parent` label; a namespace without the
//! label hangs under the root namespace. A token's `spec.connection` is looked up in the token's
//! namespace, then each ancestor up to the root; the nearest match wins, and a match above the
//! token's own namespace must be available to sub-projects (and, when set, its
//! `allowedNamespaces` must select the token's namespace).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};

use crate::api::{ConnectionSpec, PARENT_LABEL};
use crate::conditions::reasons;

/// The deepest a namespace may sit below the root, counted in parent links.
pub const MAX_DEPTH: usize = 32;

/// Labels of a namespace.
pub type Labels = BTreeMap<String, String>;

/// The namespaces the resolver knows, with their labels, under one root.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    root: String,
    namespaces: BTreeMap<String, Labels>,
}

/// Why a namespace has no valid path to the root.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HierarchyError {
    /// The namespace itself is unknown.
    #[error("namespace {namespace} does not exist")]
    NamespaceNotFound {
        /// The unknown namespace.
        namespace: String,
    },
    /// A namespace on the path names a parent that does not exist.
    #[error("namespace {child} names parent {parent}, which does not exist (path: {})", path.join(" → "))]
    MissingParent {
        /// The namespace whose label is dangling.
        child: String,
        /// The parent it names.
        parent: String,
        /// The path walked so far, starting at the token's namespace.
        path: Vec<String>,
    },
    /// Following parents returns to a namespace already on the path.
    #[error("namespace parents form a cycle: {}", path.join(" → "))]
    Cycle {
        /// The path, ending with the namespace that closes the cycle.
        path: Vec<String>,
    },
    /// The path to the root is longer than [`MAX_DEPTH`].
    #[error("namespace is more than {MAX_DEPTH} levels below the root: {} → ...", path.join(" → "))]
    TooDeep {
        /// The first namespaces of the path.
        path: Vec<String>,
    },
}

impl Tree {
    /// An empty tree whose namespaces without a parent label hang under `root`.
    pub fn new(root: impl Into<String>) -> Self {
        Self {
            root: root.into(),
            namespaces: BTreeMap::new(),
        }
    }

    /// The root namespace.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// Records (or replaces) a namespace and its labels.
    pub fn upsert(&mut self, namespace: impl Into<String>, labels: Labels) {
        self.namespaces.insert(namespace.into(), labels);
    }

    /// Forgets a namespace.
    pub fn remove(&mut self, namespace: &str) {
        self.namespaces.remove(namespace);
    }

    /// The labels of a known namespace.
    pub fn labels(&self, namespace: &str) -> Option<&Labels> {
        self.namespaces.get(namespace)
    }

    /// The parent a namespace names, or the root for one without the label; `None` for the root.
    pub fn parent_of<'a>(&'a self, namespace: &str, labels: &'a Labels) -> Option<&'a str> {
        if namespace == self.root {
            return None;
        }
        Some(
            labels
                .get(PARENT_LABEL)
                .map(String::as_str)
                .filter(|p| !p.is_empty())
                .unwrap_or(&self.root),
        )
    }

    /// The path from `namespace` up to the root, both included.
    pub fn ancestry(&self, namespace: &str) -> Result<Vec<String>, HierarchyError> {
        let mut labels =
            self.namespaces
                .get(namespace)
                .ok_or_else(|| HierarchyError::NamespaceNotFound {
                    namespace: namespace.to_string(),
                })?;
        let mut path = vec![namespace.to_string()];
        let mut seen = BTreeSet::from([namespace.to_string()]);
        let mut current = namespace.to_string();
        while let Some(parent) = self.parent_of(&current, labels) {
            let parent = parent.to_string();
            if path.len() > MAX_DEPTH {
                return Err(HierarchyError::TooDeep { path });
            }
            let fresh = seen.insert(parent.clone());
            path.push(parent.clone());
            if !fresh {
                return Err(HierarchyError::Cycle { path });
            }
            if parent == self.root {
                // The root need not be known: nothing above it is consulted.
                break;
            }
            labels = match self.namespaces.get(&parent) {
                Some(labels) => labels,
                None => {
                    return Err(HierarchyError::MissingParent {
                        child: current,
                        parent,
                        path,
                    });
                }
            };
            current = parent;
        }
        Ok(path)
    }

    /// Every known namespace whose path to the root passes through `namespace` (itself
    /// included); namespaces with a broken path are included when the break lies below
    /// `namespace`'s position.
    pub fn subtree(&self, namespace: &str) -> Vec<String> {
        self.namespaces
            .keys()
            .filter(|ns| {
                self.ancestry(ns)
                    .map(|path| path.iter().any(|p| p == namespace))
                    .unwrap_or_else(|e| broken_path(&e).iter().any(|p| p == namespace))
            })
            .cloned()
            .collect()
    }
}

fn broken_path(error: &HierarchyError) -> &[String] {
    match error {
        HierarchyError::NamespaceNotFound { .. } => &[],
        HierarchyError::MissingParent { path, .. }
        | HierarchyError::Cycle { path }
        | HierarchyError::TooDeep { path } => path,
    }
}

/// Where a token's connection was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// Namespace of the Connection.
    pub namespace: String,
    /// Levels above the token's namespace (0: the same namespace).
    pub distance: usize,
}

/// Why a found connection may not be used from the token's namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// `availableForSubProjects` is false (explicitly, or by the kind's default).
    NotForSubProjects,
    /// `allowedNamespaces` does not select the token's namespace.
    NamespaceNotSelected,
    /// `allowedNamespaces` cannot be parsed as a label selector.
    InvalidSelector(String),
}

/// Why a token has no usable connection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The namespace tree is broken on the token's path.
    #[error(transparent)]
    Hierarchy(#[from] HierarchyError),
    /// No namespace on the path has a Connection of that name.
    #[error("no Connection {name} in {}", searched.join(", "))]
    NotFound {
        /// The connection name.
        name: String,
        /// The namespaces searched, nearest first.
        searched: Vec<String>,
    },
    /// The nearest Connection of that name may not be used from the token's namespace.
    #[error(
        "Connection {found_in}/{name} is not available to namespace {namespace}: {}",
        describe(why)
    )]
    NotAvailable {
        /// The connection name.
        name: String,
        /// Where it was found.
        found_in: String,
        /// The token's namespace.
        namespace: String,
        /// Why not.
        why: Unavailable,
    },
}

fn describe(why: &Unavailable) -> String {
    match why {
        Unavailable::NotForSubProjects => {
            "it is not available for sub-projects (spec.availableForSubProjects)".into()
        }
        Unavailable::NamespaceNotSelected => {
            "its spec.allowedNamespaces does not select this namespace".into()
        }
        Unavailable::InvalidSelector(e) => format!("its spec.allowedNamespaces is invalid: {e}"),
    }
}

impl ResolveError {
    /// The condition reason this error is reported under.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Hierarchy(_) => reasons::INVALID_HIERARCHY,
            Self::NotFound { .. } => reasons::CONNECTION_NOT_FOUND,
            Self::NotAvailable { .. } => reasons::CONNECTION_NOT_AVAILABLE,
        }
    }
}

/// Finds the Connection named `name` for a token in `namespace`: the nearest match up the tree,
/// if it may be used from there. `lookup(ns)` returns the spec of Connection `name` in `ns`.
pub fn resolve<'a>(
    tree: &Tree,
    namespace: &str,
    name: &str,
    mut lookup: impl FnMut(&str) -> Option<&'a ConnectionSpec>,
) -> Result<Resolution, ResolveError> {
    let path = tree.ancestry(namespace)?;
    let Some((distance, spec)) = path
        .iter()
        .enumerate()
        .find_map(|(d, ns)| lookup(ns).map(|spec| (d, spec)))
    else {
        return Err(ResolveError::NotFound {
            name: name.to_string(),
            searched: path,
        });
    };
    let found_in = path[distance].clone();
    if distance > 0 {
        let labels = tree.labels(namespace).cloned().unwrap_or_default();
        if let Err(why) = available_from_below(spec, &labels) {
            return Err(ResolveError::NotAvailable {
                name: name.to_string(),
                found_in,
                namespace: namespace.to_string(),
                why,
            });
        }
    }
    Ok(Resolution {
        namespace: found_in,
        distance,
    })
}

/// Whether a connection serves a descendant namespace carrying `labels`.
pub fn available_from_below(spec: &ConnectionSpec, labels: &Labels) -> Result<(), Unavailable> {
    if !spec.effective_available_for_sub_projects() {
        return Err(Unavailable::NotForSubProjects);
    }
    match &spec.allowed_namespaces {
        None => Ok(()),
        Some(selector) => selects(selector, labels),
    }
}

fn selects(selector: &LabelSelector, labels: &Labels) -> Result<(), Unavailable> {
    let selector = Selector::try_from(selector.clone())
        .map_err(|e| Unavailable::InvalidSelector(e.to_string()))?;
    if selector.matches(labels) {
        Ok(())
    } else {
        Err(Unavailable::NamespaceNotSelected)
    }
}

#[cfg(test)]
mod tests;
