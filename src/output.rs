//! The output Secret: how a minted credential is laid out in each format, the metadata patchbay
//! stamps on it, and whether an existing Secret of that name is patchbay's to overwrite. Pure.
//!
//! A Secret is patchbay's only when it is labelled `app.kubernetes.io/managed-by: patchbay` and
//! `patchbay.dev/token: <token name>`, and is tied to the token's UID, through a controller
//! ownerReference or, with `deletionPolicy: Retain`, the `patchbay.dev/owner-uid` annotation.
//! Any other Secret of that name is never touched.
//!
//! Four parts, each importing only those after it: `ownership.rs` (is an existing Secret ours,
//! and what does it hold), `secret.rs` (the Secret patchbay writes: [`build_secret`], its
//! labels and [`annotations`]), `render.rs` (the data and type of each format:
//! [`render()`]) and `credential.rs` (what a provider mints: [`Credential`]).

mod credential;
mod ownership;
mod render;
mod secret;

pub use credential::{Credential, fingerprint};
pub use ownership::{Ownership, has_credential, ownership, read_annotation, written_for_a_token};
pub(crate) use render::base64;
pub use render::{FormatError, Rendered, format_name, render, secret_type};
pub use secret::{
    MANAGED_BY, SUPERSEDED_KEY, SecretInputs, TOKEN_LABEL, annotations, build_secret,
};

#[cfg(test)]
mod tests;
