//! The OAuth flows every OAuth kind shares: the refresh-token grant from a user's grant kept in
//! a Secret, the client credentials grant, and the live check of an application's client
//! credentials. A kind describes itself in an [`App`] (its token endpoint, how its client
//! authenticates, what a refresh does to the tokens it replaces, git's user name for its
//! tokens) and leaves the rest here.
//!
//! The grant Secret holds the refresh token under the key `spec.oauth.refreshToken` names and,
//! beside it, the access token the last refresh gave and its times (`<key>.access-token`,
//! `<key>.issued-at`, `<key>.expires-at`, `<key>.client`). Every token sharing the grant reads
//! them: one refresh serves them all ([`reusable`]), and a restarted operator finds them.

use std::fmt;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use sha2::{Digest, Sha256};

use super::{MAX_EXPIRES_IN, Tokens, read_answer};
use crate::api::SecretKeyRef;
use crate::api::token::SecretFormat;
use crate::conditions::reasons;
use crate::output::{Credential, fingerprint};
use crate::providers::http;
use crate::providers::{
    Env, Lifetime, Minted, Plan, ProviderError, Request, SecretRead, SecretValues, SecretWrite,
    SharedGrant, copy_allowed,
};

/// The field a grant is read from, for messages.
const GRANT_FIELD: &str = "spec.oauth.refreshToken";

/// How a client authenticates at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the client ID and secret (`client_secret_basic`, RFC 6749 section 2.3.1).
    Basic,
    /// `client_id` and `client_secret` in the form (`client_secret_post`), for providers that
    /// do not take Basic.
    Form,
}

/// What a refresh does to the grant and to the access token it replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refresh {
    /// The refresh token is single-use: each refresh returns a new one, which must be stored
    /// before anything is published (the old one no longer works, and presenting it again may
    /// revoke the whole grant).
    pub single_use: bool,
    /// The refresh revokes the access token it replaces (GitHub, GitLab): renewed late, near
    /// expiry, so that builds holding the old one lose as little as possible. The text says so
    /// in the token's status.
    pub revokes_access_token: Option<&'static str>,
}

/// One OAuth application as the engine needs it. `Debug` shows no secret.
#[derive(Clone)]
pub struct App<'a> {
    /// The provider's name for messages, e.g. `GitLab`.
    pub provider: &'static str,
    /// The token endpoint.
    pub token_url: String,
    /// The client ID.
    pub client_id: &'a str,
    /// The client secret.
    pub client_secret: &'a str,
    /// How the client authenticates.
    pub auth: ClientAuth,
    /// What a refresh does.
    pub refresh: Refresh,
    /// Whether the provider issues tokens to the application itself (client credentials).
    pub client_credentials: bool,
    /// The user name git sends with the token (see [`Credential::OAuth`]); `None` for bearer
    /// only.
    pub username: Option<&'static str>,
    /// The git server's base URL, for `.git-credentials`.
    pub git_url: String,
    /// Form fields the provider wants with every token request (e.g. a resource).
    pub extra: Vec<(&'static str, String)>,
    /// The scope asked for when the token names none (`spec.oauth.scope`).
    pub default_scope: Option<&'a str>,
    /// The environment variable the service's tools read the token from (see
    /// [`Credential::OAuth`]).
    pub variable: Option<&'static str>,
}

impl fmt::Debug for App<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("provider", &self.provider)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl App<'_> {
    /// `the GitLab token endpoint`, for messages.
    fn what(&self) -> String {
        format!("the {} token endpoint", self.provider)
    }

    /// Which application and scope a cached access token belongs to: a digest of the token
    /// endpoint, the client ID and the scope asked for, so that a grant Secret used with
    /// another connection, or by a token asking for other scopes, is refreshed for it.
    fn identity(&self, scope: Option<&str>) -> String {
        let text = format!(
            "{} {} {}",
            self.token_url,
            self.client_id,
            scope.unwrap_or("")
        );
        hex::encode(&Sha256::digest(text)[..8])
    }

    /// Sends one token request with `form`, authenticated as the client; returns the tokens and
    /// when the request left.
    pub async fn token_request(
        &self,
        env: &Env<'_>,
        form: &[(&str, &str)],
    ) -> Result<(Tokens, Timestamp), ProviderError> {
        let sent_at = Timestamp::now();
        let answer = self.post(env, &self.token_url, form).await?;
        let tokens = read_answer(answer.status, &answer.body, &self.what())?;
        Ok((tokens, sent_at))
    }

    /// Posts `form` to `url` (held to `--allowed-endpoints`) as the client: with its secret the
    /// way the provider takes it, or, without one (a public client, as `patchbay login` may be
    /// when the person cannot read the secret), with the client ID alone.
    pub(super) async fn post(
        &self,
        env: &Env<'_>,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<http::Answer, ProviderError> {
        let parsed = ::url::Url::parse(url).map_err(|e| {
            ProviderError::config(
                reasons::INVALID_SPEC,
                format!("the {} endpoint URL {url:?}: {e}", self.provider),
            )
        })?;
        env.endpoints.check_url("the OAuth endpoint", &parsed)?;
        let client = http::client(env.ca_bundle)?;
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        fields.extend(self.extra.iter().map(|(k, v)| (*k, v.as_str())));
        let public = self.client_secret.is_empty();
        // An empty body has no content type a server can check (oidc-provider refuses it): a
        // request with no other field names its client, as RFC 8628 section 3.1 allows.
        if public || self.auth == ClientAuth::Form || fields.is_empty() {
            fields.push(("client_id", self.client_id));
        }
        if !public && self.auth == ClientAuth::Form {
            fields.push(("client_secret", self.client_secret));
        }
        let mut request = client
            .post(parsed.as_str())
            .header("accept", "application/json")
            .form(&fields);
        if !public && self.auth == ClientAuth::Basic {
            request = request.basic_auth(
                form_encoded(self.client_id),
                Some(form_encoded(self.client_secret)),
            );
        }
        http::send(request, url).await
    }
}

/// RFC 6749 section 2.3.1: the client ID and secret are form-encoded before Basic encoding.
fn form_encoded(s: &str) -> String {
    ::url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The keys beside the refresh token that cache the access token of the last refresh.
struct CacheKeys {
    access_token: String,
    issued_at: String,
    expires_at: String,
    client: String,
    /// The in-flight marker of a refresh of a single-use grant.
    refreshing: String,
}

/// The suffixes of the keys patchbay keeps beside a grant's refresh token (`<key>.<suffix>`),
/// in [`CacheKeys`] order: the cached access token, its times, its application and scope, and
/// the in-flight marker.
pub const GRANT_KEY_SUFFIXES: [&str; 5] = [
    "access-token",
    "issued-at",
    "expires-at",
    "client",
    "refreshing",
];

impl CacheKeys {
    fn of(grant_key: &str) -> Self {
        let [access_token, issued_at, expires_at, client, refreshing] =
            GRANT_KEY_SUFFIXES.map(|suffix| format!("{grant_key}.{suffix}"));
        Self {
            access_token,
            issued_at,
            expires_at,
            client,
            refreshing,
        }
    }
}

/// The key of the access token cached beside the refresh token at `grant_key`.
pub fn cached_access_token_key(grant_key: &str) -> String {
    CacheKeys::of(grant_key).access_token
}

/// An access token found in the grant Secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Cached {
    /// The access token.
    pub access_token: String,
    /// When the refresh that gave it was sent.
    pub issued_at: Timestamp,
    /// When it expires.
    pub expires_at: Timestamp,
}

/// Whether the access token the last refresh of a grant gave may be used instead of a new
/// refresh at `now` (by a token that does not hold it already): it is in the first half of its
/// life (a token renewing at two thirds of its lifetime refreshes; another token that follows
/// reuses), and it has at least a minute left. Times a tenant could have written are checked:
/// an issue time in the future or a lifetime over a day is not believed.
pub fn reusable(cached: &Cached, now: Timestamp) -> bool {
    let lifetime = cached.expires_at.duration_since(cached.issued_at);
    let max = SignedDuration::try_from(MAX_EXPIRES_IN).unwrap_or(SignedDuration::ZERO);
    let sane = cached.issued_at <= now && lifetime > SignedDuration::ZERO && lifetime <= max;
    let age = now.duration_since(cached.issued_at);
    let left = cached.expires_at.duration_since(now);
    sane && age < lifetime / 2 && left >= SignedDuration::from_secs(60)
}

fn cached(data: &SecretValues, at: &SecretRead, keys: &CacheKeys, app: &str) -> Option<Cached> {
    let text = |key: &str| {
        let r = SecretKeyRef {
            name: at.name.clone(),
            key: key.to_owned(),
        };
        data.text_in(GRANT_FIELD, &at.namespace, &r)
            .ok()
            .map(str::trim)
            .map(str::to_owned)
    };
    if text(&keys.client)? != app {
        return None;
    }
    Some(Cached {
        access_token: text(&keys.access_token).filter(|t| !t.is_empty())?,
        issued_at: text(&keys.issued_at)?.parse().ok()?,
        expires_at: text(&keys.expires_at)?.parse().ok()?,
    })
}

/// The plan of an OAuth token: from the user's grant when `spec.oauth.refreshToken` is set,
/// else from the application's own client credentials where the provider offers them.
pub fn plan(request: &Request<'_>, app: &App<'_>) -> Result<Plan, ProviderError> {
    let token = request.token;
    let oauth = token.spec.oauth.clone().unwrap_or_default();
    let mut hash_parts = vec![format!("scope:{}", oauth.scope.as_deref().unwrap_or(""))];
    let format = match app.username {
        Some(_) => SecretFormat::BasicAuth,
        None => SecretFormat::Opaque,
    };
    let grant = match &oauth.refresh_token {
        Some(r) => {
            hash_parts.push(format!("grant:{}/{}", r.name, r.key));
            Some(SharedGrant {
                secret: SecretRead::new(token.namespace().unwrap_or_default(), &r.name),
                key: r.key.clone(),
                follows: true,
            })
        }
        None if app.client_credentials => {
            // The application's own identity: what the connection's scope names, kept in the
            // connection's namespace unless the connection lets it go further.
            if oauth.scope.is_some() {
                return Err(ProviderError::config(
                    reasons::INVALID_SPEC,
                    format!(
                        "spec.oauth.scope: a token for the application itself gets the \
                         connection's scope; only a user's grant ({GRANT_FIELD}) may narrow it"
                    ),
                ));
            }
            let what = format!("{} application's own token", app.provider);
            let instead =
                "use a user's grant (spec.oauth.refreshToken) or a connection in this namespace";
            copy_allowed(token, request.connection, &what, instead)?;
            hash_parts.push("client-credentials".into());
            None
        }
        None => {
            return Err(ProviderError::config(
                reasons::INVALID_SPEC,
                format!(
                    "{GRANT_FIELD}: {} issues tokens only for a user's grant; sign in with \
                     `patchbay login {}` and name the Secret it writes here",
                    app.provider,
                    request.connection.name_any()
                ),
            ));
        }
    };
    // A format the credential cannot fill is refused now, before a refresh consumes anything.
    let asked = token.spec.secret.as_ref().and_then(|s| s.format);
    if let Some(asked) = asked.filter(|f| app.username.is_none() && *f != SecretFormat::Opaque) {
        return Err(ProviderError::config(
            reasons::INVALID_SECRET_FORMAT,
            format!(
                "spec.secret.format: {} cannot hold a bearer-only {} access token; use opaque \
                 (it writes an authorization header value)",
                crate::output::format_name(asked),
                app.provider
            ),
        ));
    }
    let late = grant.as_ref().and(app.refresh.revokes_access_token);
    Ok(Plan {
        hash_parts,
        default_format: format,
        lifetime: Lifetime::Expiring,
        reads: Vec::new(),
        grant,
        late,
    })
}

/// The scope a token request asks for: the token's, else the application's default.
fn effective_scope<'a>(request: &'a Request<'_>, app: &'a App<'_>) -> Option<&'a str> {
    let token = request
        .token
        .spec
        .oauth
        .as_ref()
        .and_then(|o| o.scope.as_deref());
    token.or(app.default_scope)
}

/// What a mint from a user's grant will do, decided from the grant Secret as read under the
/// grant's lock.
enum Step<'s> {
    /// Take the access token the last refresh stored beside the grant.
    Reuse(Cached),
    /// Refresh with this refresh token.
    Refresh {
        /// The refresh token, trimmed, as it is sent.
        refresh_token: &'s str,
        /// The refresh token's bytes as stored, for the write-back's precondition.
        stored: &'s [u8],
        /// An in-flight marker beside it for this very refresh token: before a mint, a refresh
        /// that was started and whose answer was never stored; during the mint, the marker
        /// this mint stored (see [`before_mint`]).
        marker: Option<String>,
    },
}

/// The grant of a token's request, and where its values live.
struct GrantAt<'r> {
    reference: &'r SecretKeyRef,
    at: SecretRead,
    keys: CacheKeys,
}

impl<'r> GrantAt<'r> {
    fn of(request: &'r Request<'_>) -> Option<Self> {
        let reference = request.token.spec.oauth.as_ref()?.refresh_token.as_ref()?;
        let namespace = request.token.namespace().unwrap_or_default();
        Some(Self {
            at: SecretRead::new(namespace, &reference.name),
            keys: CacheKeys::of(&reference.key),
            reference,
        })
    }

    /// A write into the grant Secret.
    fn write(&self, key: &str, value: String) -> SecretWrite {
        SecretWrite {
            namespace: self.at.namespace.clone(),
            name: self.at.name.clone(),
            key: key.to_owned(),
            value: value.into_bytes(),
            replaces: None,
        }
    }

    /// What to do with the grant as `secrets` hold it.
    fn step<'s>(
        &self,
        request: &Request<'_>,
        app: &App<'_>,
        secrets: &'s SecretValues,
    ) -> Result<Step<'s>, ProviderError> {
        let stored = secrets.get_in(GRANT_FIELD, &self.at.namespace, self.reference)?;
        let refresh_token =
            (secrets.text_in(GRANT_FIELD, &self.at.namespace, self.reference))?.trim();
        if refresh_token.is_empty() {
            return Err(ProviderError::config(
                reasons::INVALID_SECRET_VALUE,
                format!(
                    "{GRANT_FIELD}: Secret {:?} key {:?} is empty",
                    self.reference.name, self.reference.key
                ),
            ));
        }
        // The token's own credential is never handed back: a token that mints again wants a
        // new one (it is due, or someone asked), so the grant is refreshed.
        let own = (request.token.status.as_ref()).and_then(|s| s.token_id.clone());
        let fresh =
            |c: &Cached| reusable(c, Timestamp::now()) && Some(fingerprint(&c.access_token)) != own;
        let identity = app.identity(effective_scope(request, app));
        if let Some(c) = cached(secrets, &self.at, &self.keys, &identity).filter(fresh) {
            return Ok(Step::Reuse(c));
        }
        let marker = (self.read(secrets, &self.keys.refreshing))
            .filter(|m| m.split(' ').next() == Some(&fingerprint(refresh_token)));
        Ok(Step::Refresh {
            refresh_token,
            stored,
            marker,
        })
    }

    /// A value beside the refresh token, if present and text.
    fn read(&self, secrets: &SecretValues, key: &str) -> Option<String> {
        let r = SecretKeyRef {
            name: self.at.name.clone(),
            key: key.to_owned(),
        };
        let value = secrets.text_in(GRANT_FIELD, &self.at.namespace, &r).ok()?;
        Some(value.trim().to_owned()).filter(|v| !v.is_empty())
    }
}

/// Whether a failed token request may have been acted on by the provider: it was sent and no
/// complete answer came back, or an answer that is not an OAuth answer (a gateway's 502 after
/// the provider may have rotated the grant, garbage).
fn may_have_acted(e: &ProviderError) -> bool {
    [
        http::NO_ANSWER,
        reasons::PROVIDER_TIMEOUT,
        reasons::INVALID_RESPONSE,
    ]
    .contains(&e.reason)
}

/// What must be stored before a refresh of a single-use grant is sent: an in-flight marker
/// beside the refresh token (its fingerprint and the time), so that an operator stopped
/// before the answer was stored never presents the consumed token again. Nothing for a reuse,
/// for reusable refresh tokens, or for client credentials. A marker found for the very refresh
/// token about to be sent means that happened: `ReauthorizationRequired`, without a call.
pub fn before_mint(
    request: &Request<'_>,
    app: &App<'_>,
    secrets: &SecretValues,
) -> Result<Vec<SecretWrite>, ProviderError> {
    let Some(grant) = GrantAt::of(request).filter(|_| app.refresh.single_use) else {
        return Ok(Vec::new());
    };
    match grant.step(request, app, secrets)? {
        Step::Reuse(_) => Ok(Vec::new()),
        Step::Refresh {
            marker: Some(marker),
            ..
        } => {
            let since = marker.split(' ').nth(1).map(|t| http::printable(t, 40));
            Err(ProviderError::config(
                super::REAUTHORIZATION_REQUIRED,
                format!(
                    "{GRANT_FIELD}: a refresh of this grant started at {} and its answer was \
                     never stored (the operator stopped, or the API server refused the write); \
                     {}'s refresh tokens are single-use, so presenting this one again would \
                     fail and may revoke the grant: sign in again with `patchbay login` and \
                     replace the refresh token Secret",
                    since.unwrap_or_else(|| "an unknown time".into()),
                    app.provider
                ),
            ))
        }
        Step::Refresh {
            refresh_token,
            stored,
            ..
        } => {
            let marker = format!("{} {}", fingerprint(refresh_token), Timestamp::now());
            Ok(vec![
                // Only while the refresh token is still the one about to be sent.
                SecretWrite {
                    value: stored.to_vec(),
                    replaces: Some(stored.to_vec()),
                    ..grant.write(&grant.reference.key, String::new())
                },
                grant.write(&grant.keys.refreshing, marker),
            ])
        }
    }
}

/// Mints an access token as [`plan`] described: the grant's cached access token when it is
/// [`reusable`], else a refresh (whose rotated refresh token and new access token go back into
/// the grant Secret before anything is published, with the in-flight marker cleared), or a
/// client credentials request. A refresh the provider surely did not act on clears the marker
/// too ([`Minted::failed`]).
pub async fn mint(
    request: &Request<'_>,
    app: &App<'_>,
    secrets: &SecretValues,
) -> Result<Minted, ProviderError> {
    let oauth = request.token.spec.oauth.clone().unwrap_or_default();
    let scope = oauth.scope.as_deref().or(app.default_scope);
    let Some(grant) = GrantAt::of(request) else {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend(scope.map(|s| ("scope", s)));
        let (tokens, sent_at) = app.token_request(request.env, &form).await?;
        return Ok(Minted::credential(credential(app, &tokens, sent_at)));
    };
    let (refresh_token, stored) = match grant.step(request, app, secrets)? {
        Step::Reuse(c) => {
            let credential = Credential::OAuth {
                access_token: c.access_token,
                expires_at: c.expires_at,
                username: app.username,
                server_url: app.git_url.clone(),
                variable: app.variable,
            };
            return Ok(Minted::credential(credential));
        }
        Step::Refresh { marker: None, .. } if app.refresh.single_use => {
            // The shared access token stopped being reusable between the decision that stored
            // no marker and now: no single-use refresh without one; the next attempt decides
            // again.
            return Err(ProviderError::transient(
                super::GRANT_CHANGED,
                "the grant's shared access token expired while it was being used; trying again",
            ));
        }
        Step::Refresh {
            refresh_token,
            stored,
            ..
        } => (refresh_token, stored),
    };
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    form.extend(scope.map(|s| ("scope", s)));
    // An empty value removes the key (see `SecretWrite`).
    let clear_marker = grant.write(&grant.keys.refreshing, String::new());
    let (tokens, sent_at) = match app.token_request(request.env, &form).await {
        Ok(answer) => answer,
        Err(e) if app.refresh.single_use && !may_have_acted(&e) => {
            // The provider answered and refused, or was never reached: the refresh token is
            // as it was, and the marker goes.
            let unused = Credential::OAuth {
                access_token: String::new(),
                expires_at: Timestamp::UNIX_EPOCH,
                username: None,
                server_url: String::new(),
                variable: None,
            };
            return Ok(Minted {
                failed: Some(e),
                write_back: vec![clear_marker],
                ..Minted::credential(unused)
            });
        }
        Err(e) => return Err(e),
    };
    let credential = credential(app, &tokens, sent_at);
    let keys = &grant.keys;
    let expires_at = tokens.expires_at(sent_at);
    let rotated =
        (tokens.refresh_token.clone()).map_or_else(|| stored.to_vec(), String::into_bytes);
    let mut write_back = vec![
        SecretWrite {
            // Written only while the grant is the one refreshed: a grant stored since wins.
            value: rotated,
            replaces: Some(stored.to_vec()),
            ..grant.write(&grant.reference.key, String::new())
        },
        grant.write(&keys.access_token, tokens.access_token.clone()),
        grant.write(&keys.issued_at, sent_at.to_string()),
        grant.write(&keys.expires_at, expires_at.to_string()),
        grant.write(&keys.client, app.identity(scope)),
    ];
    if app.refresh.single_use {
        write_back.push(clear_marker);
        if tokens.refresh_token.is_none() {
            // The provider should have rotated the grant; the old refresh token is kept, and
            // the next refresh will tell whether it still works.
            tracing::warn!(
                provider = app.provider,
                "a refresh returned no new refresh token"
            );
        }
    }
    Ok(Minted {
        write_back,
        ..Minted::credential(credential)
    })
}

/// The credential a token answer gives.
fn credential(app: &App<'_>, tokens: &Tokens, sent_at: Timestamp) -> Credential {
    Credential::OAuth {
        access_token: tokens.access_token.clone(),
        expires_at: tokens.expires_at(sent_at),
        username: app.username,
        server_url: app.git_url.clone(),
        variable: app.variable,
    }
}

/// The live check of an application: a client credentials request where the provider offers
/// them; otherwise a refresh with a refresh token that cannot exist, which a token endpoint
/// answers `invalid_grant` only after it accepted the client (RFC 6749 section 5.2 checks the
/// client first) and `invalid_client` when it did not. Nothing is issued either way.
pub async fn verify(env: &Env<'_>, app: &App<'_>) -> Result<String, ProviderError> {
    if app.client_credentials {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend(app.default_scope.map(|s| ("scope", s)));
        app.token_request(env, &form).await?;
        return Ok(format!(
            "{} issued a token to application {}",
            app.what(),
            app.client_id
        ));
    }
    let probe = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "patchbay-client-check"),
    ];
    match app.token_request(env, &probe).await {
        Err(e) if e.reason == super::REAUTHORIZATION_REQUIRED => Ok(format!(
            "{} accepted the client credentials of application {}",
            app.what(),
            app.client_id
        )),
        Err(e) => Err(e),
        Ok(_) => Err(ProviderError::transient(
            reasons::INVALID_RESPONSE,
            format!(
                "{} issued tokens for a refresh token that does not exist",
                app.what()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn cache(issued: i64, expires: i64) -> Cached {
        Cached {
            access_token: "at".into(),
            issued_at: at(issued),
            expires_at: at(expires),
        }
    }

    #[test]
    fn a_fresh_access_token_is_shared_and_one_past_half_its_life_is_refreshed() {
        let c = cache(1_000, 4_600);
        assert!(reusable(&c, at(1_000)));
        assert!(reusable(&c, at(2_799)));
        assert!(!reusable(&c, at(2_800)), "half its life gone");
        assert!(!reusable(&c, at(5_000)), "expired");
    }

    #[test]
    fn a_cached_access_token_belongs_to_one_application_and_one_scope() {
        let app = App {
            provider: "GitLab",
            token_url: "https://gitlab.example.com/oauth/token".into(),
            client_id: "app",
            client_secret: "",
            auth: ClientAuth::Basic,
            refresh: Refresh {
                single_use: true,
                revokes_access_token: None,
            },
            client_credentials: false,
            username: None,
            git_url: String::new(),
            extra: Vec::new(),
            default_scope: None,
            variable: None,
        };
        let read = app.identity(Some("read_repository"));
        assert_eq!(read, app.identity(Some("read_repository")));
        assert_ne!(read, app.identity(Some("api")));
        assert_ne!(read, app.identity(None));
        let other = App {
            client_id: "other",
            ..app.clone()
        };
        assert_ne!(read, other.identity(Some("read_repository")));
    }

    #[test]
    fn cached_times_a_tenant_could_forge_are_not_believed() {
        assert!(
            !reusable(&cache(2_000, 5_600), at(1_000)),
            "issued in the future"
        );
        assert!(
            !reusable(&cache(1_000, 1_000 + 2 * 86_400), at(1_001)),
            "over a day"
        );
        assert!(!reusable(&cache(1_000, 1_000), at(1_000)), "no lifetime");
        assert!(
            !reusable(&cache(1_000, 1_090), at(1_040)),
            "under a minute left"
        );
    }
}
