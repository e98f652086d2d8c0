//! The custom resources patchbay serves, in group `patchbay.dev`, version `v1alpha1`.
//!
//! ```text
//!  Namespace "ci"  (root, or labelled patchbay.dev/parent=<parent>)
//!   └─ Connection "acme-github"  ── reads ──▶ Secret "acme-github-app" (same namespace)
//!        ▲ resolved up the namespace tree
//!  Namespace "team-a"  (patchbay.dev/parent=ci)
//!   └─ VcsAuthToken "build"  ── mints into ──▶ Secret "build" (owned, renewed)
//! ```
//!
//! Every field carries a doc comment: it becomes the schema description that
//! `kubectl explain` prints. Rules that can be checked without the cluster live in the
//! schema (patterns, bounds, enums) and in CEL rules (`x-kubernetes-validations`); rules that
//! need the cluster are the controller's and surface as status conditions.

pub mod ca_bundle;
pub mod condition;
pub mod connection;
pub mod crd;
pub mod packed_map;
pub mod secret_ref;
pub mod token;

pub use condition::{Condition, ConditionStatus};
pub use connection::{Connection, ConnectionKind, ConnectionSpec, ConnectionStatus};
pub use packed_map::PackedMap;
pub use secret_ref::SecretKeyRef;
pub use token::{VcsAuthToken, VcsAuthTokenSpec, VcsAuthTokenStatus};

/// The API group of every patchbay resource.
pub const GROUP: &str = "patchbay.dev";
/// The API version served.
pub const VERSION: &str = "v1alpha1";
/// The Namespace label that names a namespace's parent project.
pub const PARENT_LABEL: &str = "patchbay.dev/parent";

/// Schema patterns shared by several resources.
pub mod patterns {
    /// An `http://` or `https://` URL with a host and no whitespace.
    pub const HTTP_URL: &str = r"^https?://[A-Za-z0-9\[]([^\s/?#]*)(/[^\s]*)?$";
    /// A DNS-1123 subdomain: the shape of object names (Secrets, Connections).
    pub const DNS_SUBDOMAIN: &str =
        r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
    /// A Secret data key.
    pub const SECRET_KEY: &str = r"^[-._a-zA-Z0-9]+$";
    /// An AWS region name such as `eu-west-1` or `us-gov-west-1`.
    pub const AWS_REGION: &str = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$";
    /// An IAM role ARN in any partition.
    pub const ROLE_ARN: &str = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]+$";
    /// An IAM policy ARN in any partition (customer or AWS managed).
    pub const POLICY_ARN: &str =
        r"^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/[A-Za-z0-9_+=,.@/-]+$";
    /// A positive Go duration such as `20m`, `1h30m` or `90s`.
    pub const GO_DURATION: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";
}
