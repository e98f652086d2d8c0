//! The provider trait and what passes through it: what a provider may see of the cluster
//! ([`Env`]), what it asks the controller to read ([`Inputs`], [`Plan`]) and what it hands back
//! ([`Minted`], [`Verification`], [`RotatedKey`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use kube::ResourceExt;

use super::services::Services;
use super::{ProviderError, SecretRead, SecretValues, SecretWrite};
use crate::api::token::{PersonalAccessTokenSource, SecretFormat};
use crate::api::{Connection, ConnectionKind, ConnectionSpec, VcsAuthToken};
use crate::conditions::reasons;
use crate::hierarchy::Tree;
use crate::output::Credential;
use crate::renewal;

/// What a provider may see of the cluster: the namespace tree and the Connection cache as they
/// are now, and the operator's options. Read-only; nothing here calls the API.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    /// The namespace tree.
    pub tree: &'a Tree,
    /// Every Connection the operator serves, from the cache.
    pub connections: &'a [Arc<Connection>],
    /// Whether `defaultChain` AWS credentials (the operator's own identity) may be used.
    pub allow_default_chain: bool,
    /// Which servers Connections may name (`--allowed-endpoints`).
    pub endpoints: &'a super::EndpointPolicy,
    /// The CA bundle (`spec.caBundle`) of the connection being served, read by the controller:
    /// every call for it trusts these CAs too.
    pub ca_bundle: Option<&'a super::CaBundle>,
}

impl Env<'_> {
    /// Connection `name` in namespace `namespace`, if the cache holds it.
    pub fn connection(&self, namespace: &str, name: &str) -> Option<Arc<Connection>> {
        (self.connections.iter())
            .find(|c| c.namespace().as_deref() == Some(namespace) && c.name_any() == name)
            .cloned()
    }
}

/// What a provider reports about a valid connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Validated {
    /// One line for the Ready condition's message, e.g. `GitHub App 123456 at https://api.github.com`.
    pub summary: String,
}

/// What a connection's credentials depend on: read before every decision, so that a change
/// to any of them (a new generation, a rotated Secret) renews the credentials minted from it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inputs {
    /// Secrets to read; a digest of each one's data enters the connection hash, in order.
    pub reads: Vec<SecretRead>,
    /// Identities and generations of the connections involved (the connection itself, and
    /// any it signs through).
    pub depends_on: Vec<String>,
}

impl Inputs {
    /// The Secrets a connection references in its own namespace, and its uid and generation.
    pub fn own(conn: &Connection) -> Self {
        let namespace = conn.namespace().unwrap_or_default();
        Self {
            reads: (conn.spec.secret_refs().into_iter())
                .map(|u| SecretRead::new(&namespace, &u.reference.name))
                .collect(),
            depends_on: identity(conn),
        }
    }
}

/// A connection as the connection hash records it: its uid and a digest of its provider block
/// (the settings that shape its credentials). Its display name, its availability and its
/// metadata are not part of it: editing them renews nothing.
pub fn identity(conn: &Connection) -> Vec<String> {
    let block = (conn.spec.kind())
        .and_then(|kind| {
            Some(
                serde_json::to_value(&conn.spec)
                    .ok()?
                    .get(kind.field_name())?
                    .clone(),
            )
        })
        .map(|b| b.to_string())
        .unwrap_or_default();
    vec![
        conn.uid().unwrap_or_default(),
        renewal::request_hash(&[&block]),
    ]
}

/// Whether a credential expires (and is renewed) or is a static projection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    /// Minted with an expiry and renewed before it.
    Expiring,
    /// Projected as it is, e.g. `static keys`; renewed only when the request or the connection
    /// changes, or on request.
    LongLived(&'static str),
}

/// A token's request within the connection's ceilings, as the controller needs to know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The parts of the request that, when they change, need a new credential.
    pub hash_parts: Vec<String>,
    /// The output format when `spec.secret.format` is not set.
    pub default_format: SecretFormat,
    /// Whether the credential expires.
    pub lifetime: Lifetime,
    /// Secrets read only when minting (e.g. a user token in the token's namespace).
    pub reads: Vec<SecretRead>,
    /// A grant the token may share with others (an OAuth refresh token Secret).
    pub grant: Option<SharedGrant>,
    /// Why the credential is renewed late, near its expiry, when the token sets no
    /// `renewBefore` (a refresh that revokes the access token it replaces); for the status.
    pub late: Option<&'static str>,
}

/// A Secret several tokens may mint from in turn (a user's OAuth grant). It is read at every
/// decision and its data enters the connection hash, so a refresh one token makes reaches the
/// others; and it is read again under a lock held through the mint and the write-back, so only
/// one mint at a time uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedGrant {
    /// The Secret.
    pub secret: SecretRead,
    /// The key within it that identifies the grant, e.g. `refresh_token`.
    pub key: String,
    /// Whether a token renews when the grant's refresh token or shared access token changes
    /// (a token that publishes the access token); `false` for one that publishes something it
    /// minted with it (a GitLab project token), which a refresh leaves valid.
    pub follows: bool,
}

impl SharedGrant {
    /// The lock name: one per grant (Secret and key).
    pub fn lock(&self) -> String {
        format!(
            "{}/{}#{}",
            self.secret.namespace, self.secret.name, self.key
        )
    }
}

/// The copying rule (design.md section 9): a token outside the connection's namespace
/// receives `what` (long-lived material: a password, a token, static keys, the operator's
/// identity) only when the connection sets `copySecretToSubProjects`; otherwise
/// `CopyNotAllowed`, naming the connection and what to do `instead`.
pub fn copy_allowed(
    token: &VcsAuthToken,
    conn: &Connection,
    what: &str,
    instead: &str,
) -> Result<(), ProviderError> {
    let home = conn.namespace().unwrap_or_default();
    if token.namespace().unwrap_or_default() == home || conn.spec.copy_secret_to_sub_projects {
        return Ok(());
    }
    Err(ProviderError::config(
        reasons::COPY_NOT_ALLOWED,
        format!(
            "spec.connection: this token would receive {what} from Connection {home}/{}, which \
             does not set copySecretToSubProjects; {instead}",
            conn.name_any()
        ),
    ))
}

impl Plan {
    /// A long-lived credential projected as it is (`what`, e.g. `registry login`), in
    /// `format` unless the token names another; nothing in the request shapes it.
    pub fn projection(what: &'static str, format: SecretFormat) -> Self {
        Self {
            hash_parts: Vec::new(),
            default_format: format,
            lifetime: Lifetime::LongLived(what),
            reads: Vec::new(),
            grant: None,
            late: None,
        }
    }

    /// [`Plan::projection`] under the copying rule ([`copy_allowed`]): the plan of a kind whose
    /// only output is its connection's long-lived `what`, for tokens in the connection's
    /// namespace or, when the connection allows copies, below it.
    pub fn copied(
        request: &Request<'_>,
        what: &'static str,
        format: SecretFormat,
    ) -> Result<Self, ProviderError> {
        let instead = "use a connection in this namespace";
        let what_copied = format!("the {what}");
        copy_allowed(request.token, request.connection, &what_copied, instead)?;
        Ok(Self::projection(what, format))
    }
}

/// A token request: the token, the connection it resolved to, and the cluster snapshot.
pub struct Request<'a> {
    /// The VcsAuthToken.
    pub token: &'a VcsAuthToken,
    /// The connection it resolved to.
    pub connection: &'a Connection,
    /// The cluster as providers may see it.
    pub env: &'a Env<'a>,
}

/// What the provider granted, for the token's status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Granted {
    /// Permissions as granted.
    pub permissions: BTreeMap<String, String>,
    /// Repositories as granted.
    pub repositories: Vec<String>,
    /// Whether a user's token lowered the permissions.
    pub pat_source: Option<PersonalAccessTokenSource>,
    /// Appended to the Ready message, e.g. `permissions lowered to the user's`.
    pub note: Option<String>,
}

/// A minted credential and what comes with it.
#[derive(Debug)]
pub struct Minted {
    /// The credential, with its expiry (none for a static projection).
    pub credential: Credential,
    /// What was granted, for the status.
    pub granted: Option<Granted>,
    /// The API revoking the credential later must call, recorded in the token's status.
    pub endpoint: Option<String>,
    /// Secret values to write back before the credential is published (e.g. a rotated
    /// refresh token).
    pub write_back: Vec<SecretWrite>,
    /// Set when a later step failed after a step whose result must be kept: `write_back` is
    /// stored, then the mint reports this error and `credential` is not published.
    pub failed: Option<ProviderError>,
}

impl Minted {
    /// Just a credential.
    pub fn credential(credential: Credential) -> Self {
        Self {
            credential,
            granted: None,
            endpoint: None,
            write_back: Vec::new(),
            failed: None,
        }
    }
}

/// A credential in a Secret patchbay wrote, as revocation sees it.
pub struct Stored<'a> {
    /// The Secret's data.
    pub data: &'a BTreeMap<String, Vec<u8>>,
    /// Where it was minted ([`Minted::endpoint`], as the token's status recorded it).
    pub endpoint: Option<&'a str>,
    /// The CA bundle of the connection it was minted from, when the controller knows it.
    pub ca_bundle: Option<&'a super::CaBundle>,
}

/// The outcome of a revocation that did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revoked {
    /// The provider revoked the credential.
    Revoked,
    /// The credential cannot be revoked on its own; it lapses at its expiry.
    NotRevocable,
}

/// The outcome of a live check ("Test connection").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// The provider accepted the connection's credentials; the message says what was checked.
    Verified(String),
    /// The check failed.
    Failed(ProviderError),
    /// No check could run; the reason and message say why.
    Unknown {
        /// CamelCase reason.
        reason: &'static str,
        /// Why.
        message: String,
    },
}

impl From<Result<String, ProviderError>> for Verification {
    /// A check that ran: verified with its message, or failed.
    fn from(outcome: Result<String, ProviderError>) -> Self {
        match outcome {
            Ok(message) => Verification::Verified(message),
            Err(e) => Verification::Failed(e),
        }
    }
}

/// A replacement key a provider created: what to write into the connection's Secrets, and the
/// id of the key it replaces.
#[derive(Debug)]
pub struct RotatedKey {
    /// The new key's values, to be written before anything else can fail.
    pub writes: Vec<SecretWrite>,
    /// The replaced key's id, deleted after the retention.
    pub previous_id: String,
}

/// Everything kind-specific about one connection kind.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The kind this provider serves.
    fn kind(&self) -> ConnectionKind;

    /// Checks what needs no provider call (Secret values, URL normalisation, key parsing).
    /// Every Secret key the spec references has been found present before this is called.
    fn validate(
        &self,
        spec: &ConnectionSpec,
        secrets: &SecretValues,
    ) -> Result<Validated, ProviderError>;

    /// Checks what the connection reaches through the tree (e.g. an iamRole's source
    /// connections) and adds it to `validated`.
    fn check_links(
        &self,
        _conn: &Connection,
        _env: &Env<'_>,
        validated: Validated,
    ) -> Result<Validated, ProviderError> {
        Ok(validated)
    }

    /// The External ID patchbay generated for the connection's role, for `status.externalId`
    /// (shown even while the connection is not Ready, so the trust policy can be set up).
    fn external_id(&self, _conn: &Connection) -> Option<String> {
        None
    }

    /// What the connection's credentials depend on. By default its own Secrets.
    fn inputs(&self, conn: &Connection, _env: &Env<'_>) -> Result<Inputs, ProviderError> {
        Ok(Inputs::own(conn))
    }

    /// The token's request within the connection's ceilings; refusals happen here, before any
    /// provider call.
    fn plan(&self, request: &Request<'_>) -> Result<Plan, ProviderError> {
        let conn = request.connection;
        Err(ProviderError::not_available(format!(
            "resolved to Connection {}/{}; this release does not mint {} credentials yet",
            conn.namespace().unwrap_or_default(),
            conn.name_any(),
            self.kind().field_name()
        )))
    }

    /// The live check ("Test connection") with the Secrets of [`inputs`](Self::inputs).
    async fn verify(
        &self,
        _conn: &Connection,
        _env: &Env<'_>,
        _secrets: &SecretValues,
        _services: &Services,
    ) -> Verification {
        Verification::Unknown {
            reason: reasons::VERIFICATION_NOT_AVAILABLE,
            message: format!(
                "this release has no live check for {} connections",
                self.kind().field_name()
            ),
        }
    }

    /// Mints the credential [`plan`](Self::plan) described, with the Secrets of
    /// [`inputs`](Self::inputs) and [`Plan::reads`].
    async fn mint(
        &self,
        request: &Request<'_>,
        _secrets: &SecretValues,
        _services: &Services,
    ) -> Result<Minted, ProviderError> {
        Err(self.plan(request).err().unwrap_or_else(|| {
            ProviderError::not_available("this release cannot mint this credential")
        }))
    }

    /// What must be stored before [`mint`](Self::mint) calls the provider, given the same
    /// Secrets (an in-flight marker beside a single-use refresh token), or why the call must
    /// not be made at all. The controller writes these first, under the grant's lock.
    fn before_mint(
        &self,
        _request: &Request<'_>,
        _secrets: &SecretValues,
    ) -> Result<Vec<SecretWrite>, ProviderError> {
        Ok(Vec::new())
    }

    /// Whether this provider revokes its credentials (so a superseded one is kept, with its
    /// secret under the Secret's `superseded-token` key, until its grace has passed).
    fn revocable(&self) -> bool {
        false
    }

    /// Revokes a credential this provider minted: its secret is the Secret's `token` key.
    async fn revoke(
        &self,
        _stored: &Stored<'_>,
        _services: &Services,
    ) -> Result<Revoked, ProviderError> {
        Ok(Revoked::NotRevocable)
    }

    /// The OAuth application a person signs in to with `patchbay login`, given the client
    /// secret (empty when it cannot be read: the application is then used as a public client);
    /// `None` for kinds that are not OAuth applications.
    fn sign_in<'a>(
        &self,
        _conn: &'a Connection,
        _client_secret: &'a str,
    ) -> Option<Result<super::oauth::SignIn<'a>, ProviderError>> {
        None
    }

    /// Creates a replacement for the connection's long-lived key ("Rotate key").
    async fn rotate_key(
        &self,
        _conn: &Connection,
        _secrets: &SecretValues,
    ) -> Result<RotatedKey, ProviderError> {
        Err(ProviderError::config(
            reasons::INVALID_SPEC,
            format!(
                "{} connections have no key patchbay can rotate",
                self.kind().field_name()
            ),
        ))
    }

    /// The ids of the connection's keys other than the one it signs with now: after a rotation
    /// that stopped before its new key was written, the key that was created and lost.
    async fn other_keys(
        &self,
        _conn: &Connection,
        _secrets: &SecretValues,
    ) -> Result<Vec<String>, ProviderError> {
        Ok(Vec::new())
    }

    /// Deletes a key [`rotate_key`](Self::rotate_key) replaced, once its retention has passed.
    async fn delete_key(
        &self,
        _conn: &Connection,
        _secrets: &SecretValues,
        _key_id: &str,
    ) -> Result<(), ProviderError> {
        Ok(())
    }
}
