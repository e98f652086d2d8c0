//! The Secret references of a Connection, with the field path that names each one.

use super::{AwsCredentials, ConnectionSpec};
use crate::api::SecretKeyRef;

/// One Secret reference of a Connection spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretUse<'a> {
    /// Field path of the reference, e.g. `spec.githubApp.privateKey`.
    pub field: String,
    /// The reference.
    pub reference: &'a SecretKeyRef,
}

fn push<'a>(out: &mut Vec<SecretUse<'a>>, block: &str, field: &str, r: Option<&'a SecretKeyRef>) {
    if let Some(reference) = r {
        out.push(SecretUse {
            field: format!("spec.{block}.{field}"),
            reference,
        });
    }
}

fn credentials<'a>(out: &mut Vec<SecretUse<'a>>, block: &str, c: &'a AwsCredentials) {
    if let Some(keys) = &c.access_keys {
        let block = format!("{block}.credentials.accessKeys");
        push(out, &block, "accessKeyId", Some(&keys.access_key_id));
        push(
            out,
            &block,
            "secretAccessKey",
            Some(&keys.secret_access_key),
        );
    }
}

impl ConnectionSpec {
    /// Every Secret reference that is set, in field order, with its field path.
    pub fn secret_refs(&self) -> Vec<SecretUse<'_>> {
        let mut out = Vec::new();
        let o = &mut out;
        if let Some(b) = &self.github_app {
            push(o, "githubApp", "privateKey", Some(&b.private_key));
            push(o, "githubApp", "clientSecret", b.client_secret.as_ref());
            push(o, "githubApp", "webhookSecret", b.webhook_secret.as_ref());
        }
        if let Some(b) = &self.github_oauth {
            push(o, "githubOAuth", "clientSecret", Some(&b.client_secret));
        }
        if let Some(b) = &self.gitlab {
            push(o, "gitlab", "secret", Some(&b.secret));
        }
        if let Some(b) = &self.bitbucket_cloud {
            push(o, "bitbucketCloud", "secret", Some(&b.secret));
        }
        if let Some(b) = &self.bitbucket_server {
            push(o, "bitbucketServer", "clientSecret", Some(&b.client_secret));
        }
        if let Some(b) = &self.azure_devops_oauth {
            push(
                o,
                "azureDevOpsOAuth",
                "clientSecret",
                Some(&b.client_secret),
            );
        }
        if let Some(b) = &self.azure_devops_pat {
            push(
                o,
                "azureDevOpsPat",
                "personalAccessToken",
                Some(&b.personal_access_token),
            );
        }
        if let Some(b) = &self.google {
            push(o, "google", "clientSecret", Some(&b.client_secret));
        }
        if let Some(b) = &self.docker_registry {
            push(o, "dockerRegistry", "password", Some(&b.password));
        }
        if let Some(b) = &self.aws {
            credentials(o, "aws", &b.credentials);
        }
        if let Some(b) = &self.ecr {
            credentials(o, "ecr", &b.credentials);
        }
        if let Some(b) = &self.slack {
            push(o, "slack", "clientSecret", Some(&b.client_secret));
            push(o, "slack", "botToken", Some(&b.bot_token));
        }
        if let Some(b) = &self.jetbrains_space {
            push(o, "jetbrainsSpace", "clientSecret", Some(&b.client_secret));
        }
        if let Some(b) = &self.npm_registry {
            push(o, "npmRegistry", "accessToken", b.access_token.as_ref());
        }
        if let Some(b) = &self.perforce_admin {
            push(o, "perforceAdmin", "password", Some(&b.password));
        }
        out
    }

    /// The names of the Secrets this connection reads, without duplicates.
    pub fn secret_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .secret_refs()
            .into_iter()
            .map(|u| u.reference.name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The AWS credentials of an aws or ecr connection.
    pub fn aws_credentials(&self) -> Option<&AwsCredentials> {
        self.aws
            .as_ref()
            .map(|a| &a.credentials)
            .or(self.ecr.as_ref().map(|e| &e.credentials))
    }
}
