//! What the server does to objects on every write, as plain functions and methods on the
//! store: the verb semantics (generation, status isolation, finalizers, namespace termination,
//! garbage collection) and the rules of each kind.
//!
//! ```text
//!  lifecycle.rs (create, update), deletion.rs (delete and what follows from it)
//!     ├──▶ builtins.rs + pods.rs (what the server does to built-in kinds)
//!     ├──▶ crd.rs + crd_validation.rs (CustomResourceDefinitions)
//!     ├──▶ admit.rs (the admission seam for custom objects), validation.rs (metadata rules)
//!     └──▶ fields.rs + fieldpath.rs (managedFields and server-side apply)
//! ```

pub(super) mod admit;
pub(super) mod builtins;
mod crd;
mod crd_validation;
mod deletion;
mod fieldpath;
pub(super) mod fields;
pub(super) mod lifecycle;
mod pods;
mod validation;

#[cfg(test)]
mod lifecycle_tests;
