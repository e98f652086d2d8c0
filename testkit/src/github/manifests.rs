//! GitHub App registration from a manifest, as GitHub runs it: a browser posts the manifest
//! form to `/settings/apps/new` (or `/organizations/{org}/settings/apps/new`) with a `state`;
//! the person confirms (here: at once) and GitHub creates the app and redirects to the
//! manifest's `redirect_url` with a one-time `code` and the `state`; the app's creator then
//! exchanges the code, within an hour and once, at `POST /app-manifests/{code}/conversions` for
//! the app's id, client secret, webhook secret and private key (PEM).

use serde_json::{Value, json};

use super::model::{AccountType, AppSpec, Pending, State};
use super::reply::Reply;
use super::time::rfc3339;
use super::tokens::new_token;
use crate::keys::RsaKey;

/// How long a conversion code lives, as on GitHub.
const CODE_LIFETIME: i64 = 3600;

/// `POST [/organizations/{org}]/settings/apps/new?state=...` with the form field `manifest`.
pub(crate) fn register(state: &mut State, org: Option<&str>, query: &str, body: &[u8]) -> Reply {
    let field = |text: &str, name: &str| {
        form_urlencoded::parse(text.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let body = String::from_utf8_lossy(body);
    let Some(manifest) = field(&body, "manifest") else {
        return Reply::error(422, "manifest is missing");
    };
    let Ok(manifest) = serde_json::from_str::<Value>(&manifest) else {
        return Reply::error(422, "manifest is not valid JSON");
    };
    let (Some(name), Some(redirect)) =
        (manifest["name"].as_str(), manifest["redirect_url"].as_str())
    else {
        return Reply::error(422, "manifest needs a name and a redirect_url");
    };
    let key = RsaKey::generate();
    let id = state.next_id();
    let slug: String = (name.to_ascii_lowercase().chars())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut app = AppSpec::new(id, &slug, &key);
    app.name = name.to_owned();
    state.apps.insert(id, app);
    let (owner, owner_type) = match org {
        Some(org) => (org.to_owned(), AccountType::Organization),
        None => (state.config.manifest_user.clone(), AccountType::User),
    };
    state.ensure_owner(&owner, owner_type);
    let code = new_token().replacen("ghs_", "", 1);
    let hook = &manifest["hook_attributes"];
    let pending = Pending {
        app_id: id,
        owner,
        owner_type,
        pem: key.private_pkcs1_pem(),
        client_secret: new_token().replacen("ghs_", "", 1),
        webhook_secret: (hook["active"] != json!(false)).then(new_token),
        permissions: manifest["default_permissions"].clone(),
        created_at: state.now(),
    };
    state.manifest_codes.insert(code.clone(), pending);
    let state_param = field(query, "state").unwrap_or_default();
    let separator = if redirect.contains('?') { '&' } else { '?' };
    let location = format!(
        "{redirect}{separator}code={code}&state={}",
        form_urlencoded::byte_serialize(state_param.as_bytes()).collect::<String>()
    );
    Reply::empty(302).with_header("location", location)
}

/// `POST /app-manifests/{code}/conversions`: the app's credentials, once.
pub(crate) fn convert(state: &mut State, code: &str) -> Reply {
    let now = state.now();
    let Some(pending) = state.manifest_codes.remove(code) else {
        return Reply::not_found();
    };
    if now - pending.created_at > CODE_LIFETIME {
        return Reply::not_found();
    }
    let Some(app) = state.apps.get(&pending.app_id) else {
        return Reply::not_found();
    };
    let owner_type = match pending.owner_type {
        AccountType::Organization => "Organization",
        AccountType::User => "User",
    };
    Reply::json(
        201,
        json!({
            "id": app.id,
            "slug": app.slug,
            "node_id": format!("MDM6QXBw{}", app.id),
            "owner": {"login": pending.owner, "type": owner_type},
            "name": app.name,
            "client_id": app.client_id,
            "client_secret": pending.client_secret,
            "webhook_secret": pending.webhook_secret,
            "pem": pending.pem,
            "html_url": format!("https://github.com/apps/{}", app.slug),
            "permissions": pending.permissions,
            "events": [],
            "created_at": rfc3339(pending.created_at),
            "updated_at": rfc3339(pending.created_at),
        }),
    )
}
