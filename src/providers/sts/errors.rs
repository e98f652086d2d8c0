//! AWS failures, classified into reasons that tell the user what to fix.

use std::time::Duration;

use crate::conditions::reasons;
use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Why an AWS call failed. The variant name is the condition reason ([`StsError::reason`]); the
/// message says what to fix. Messages never carry secret keys or session tokens: AWS's own text
/// is only quoted after `scrub` removed anything that looks like key material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StsError {
    /// AssumeRole was refused.
    #[error(
        "sts:AssumeRole of {role_arn} was denied: check the role's trust policy (it must trust \
         this connection's identity) and the External ID it requires, and that the identity may \
         call sts:AssumeRole on the role ({detail})"
    )]
    AssumeRoleDenied {
        /// The role asked for.
        role_arn: String,
        /// AWS's message, scrubbed.
        detail: String,
    },
    /// Any other call was refused for lack of permission.
    #[error("{operation} was denied: the identity lacks permission for it ({detail})")]
    AccessDenied {
        /// The call, e.g. `iam:CreateAccessKey`.
        operation: &'static str,
        /// AWS's message, scrubbed.
        detail: String,
    },
    /// The credentials are temporary and expired.
    #[error("{operation}: the security token has expired; the source credentials must be renewed")]
    ExpiredToken {
        /// The call.
        operation: &'static str,
    },
    /// AWS does not know the access key ID (or the session token).
    #[error(
        "{operation}: the access key ID is not valid (unknown, deleted or from another \
         partition) or the session token is invalid; check accessKeyId in the connection's Secret"
    )]
    InvalidClientTokenId {
        /// The call.
        operation: &'static str,
    },
    /// The request signature does not verify: a wrong secret key.
    #[error(
        "{operation}: the secret access key does not match the access key ID; check \
         secretAccessKey in the connection's Secret"
    )]
    SignatureDoesNotMatch {
        /// The call.
        operation: &'static str,
    },
    /// The region does not exist or is not enabled for the account.
    #[error(
        "{operation}: region {region:?} is unknown or not enabled for this account; check the \
         connection's region ({detail})"
    )]
    UnknownRegion {
        /// The call.
        operation: &'static str,
        /// The region the client was built for.
        region: String,
        /// AWS's message, scrubbed.
        detail: String,
    },
    /// No answer: DNS, connection or timeout.
    #[error(
        "{operation}: the AWS endpoint for region {region:?} is unreachable ({detail}); check \
         the region and the endpoint URL"
    )]
    Unreachable {
        /// The call.
        operation: &'static str,
        /// The region the client was built for.
        region: String,
        /// What went wrong, e.g. `timed out` or the connector's error.
        detail: String,
    },
    /// AWS asked us to slow down.
    #[error("{operation} was throttled by AWS{}", retry_hint(.retry_after))]
    Throttled {
        /// The call.
        operation: &'static str,
        /// When AWS said to retry (`Retry-After`), if it did.
        retry_after: Option<Duration>,
    },
    /// AWS rejected the request's content: a malformed session policy, too many or too large
    /// session tags, an access-key quota, an unknown user.
    #[error("{operation} was rejected with {code}: {detail}")]
    InvalidRequest {
        /// The call.
        operation: &'static str,
        /// AWS's error code.
        code: String,
        /// AWS's message, scrubbed.
        detail: String,
    },
    /// AWS answered, but not with something usable (missing fields, an undecodable token).
    #[error("{operation} returned an unusable answer: {detail}")]
    InvalidResponse {
        /// The call.
        operation: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// Anything else AWS said.
    #[error("{operation} failed with {code}: {detail}")]
    AwsError {
        /// The call.
        operation: &'static str,
        /// AWS's error code, or `HTTP <status>` when it gave none.
        code: String,
        /// AWS's message, scrubbed.
        detail: String,
    },
}

fn retry_hint(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!("; retry after {} s", d.as_secs()),
        None => "; retry later".to_string(),
    }
}

impl StsError {
    /// The CamelCase condition reason: the variant's name.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::AssumeRoleDenied { .. } => "AssumeRoleDenied",
            Self::AccessDenied { .. } => "AccessDenied",
            Self::ExpiredToken { .. } => "ExpiredToken",
            Self::InvalidClientTokenId { .. } => "InvalidClientTokenId",
            Self::SignatureDoesNotMatch { .. } => "SignatureDoesNotMatch",
            Self::UnknownRegion { .. } => "UnknownRegion",
            Self::Unreachable { .. } => "Unreachable",
            Self::Throttled { .. } => "Throttled",
            Self::InvalidRequest { .. } => "InvalidRequest",
            Self::InvalidResponse { .. } => reasons::INVALID_RESPONSE,
            Self::AwsError { .. } => "AwsError",
        }
    }

    /// When AWS asked to be called again, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// True when retrying the same call later may succeed without the user changing anything
    /// (throttling, an unreachable endpoint, an AWS-side failure).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Throttled { .. } | Self::Unreachable { .. } => true,
            Self::AwsError { code, .. } => {
                code.starts_with("HTTP 5")
                    || matches!(
                        code.as_str(),
                        "InternalFailure"
                            | "InternalError"
                            | "ServiceUnavailable"
                            | "ServiceFailure"
                            | "ServerException"
                    )
            }
            _ => false,
        }
    }
}

/// Which call failed, for the message.
#[derive(Clone, Copy, Debug)]
pub(super) struct Call<'a> {
    /// `service:Action`, e.g. `sts:AssumeRole`.
    pub operation: &'static str,
    /// The client's region.
    pub region: &'a str,
    /// The role of an AssumeRole.
    pub role_arn: Option<&'a str>,
}

/// What AWS answered with an error, reduced to what classification needs.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Answer<'a> {
    /// HTTP status.
    pub status: u16,
    /// AWS's error code.
    pub code: Option<&'a str>,
    /// AWS's error message (unscrubbed).
    pub message: Option<&'a str>,
    /// The `Retry-After` header.
    pub retry_after: Option<&'a str>,
}

/// Classifies an SDK failure of `call`.
pub(super) fn from_sdk<E>(call: Call<'_>, err: SdkError<E, HttpResponse>) -> StsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let unreachable = |detail: String| StsError::Unreachable {
        operation: call.operation,
        region: call.region.to_string(),
        detail,
    };
    match &err {
        SdkError::ServiceError(service) => {
            let raw = service.raw();
            let body = raw.body().bytes().map(String::from_utf8_lossy);
            let (code, message) = match service.err().code() {
                Some(code) => (Some(code), service.err().message()),
                // An error envelope the SDK could not read (moto's auth errors nest
                // <Errors><Error>): take the code and message from the body itself.
                None => body.as_deref().map_or((None, None), code_in_body),
            };
            classify(
                call,
                Answer {
                    status: raw.status().as_u16(),
                    code,
                    message,
                    retry_after: raw.headers().get("retry-after"),
                },
            )
        }
        SdkError::TimeoutError(_) => unreachable(format!(
            "no answer within {} s",
            super::OPERATION_TIMEOUT.as_secs()
        )),
        SdkError::DispatchFailure(failure) if failure.is_timeout() => {
            unreachable("timed out".to_string())
        }
        SdkError::DispatchFailure(_) => unreachable(scrub(&DisplayErrorContext(&err).to_string())),
        SdkError::ResponseError(_) => StsError::InvalidResponse {
            operation: call.operation,
            detail: scrub(&DisplayErrorContext(&err).to_string()),
        },
        _ => StsError::AwsError {
            operation: call.operation,
            code: "ClientError".to_string(),
            detail: scrub(&DisplayErrorContext(&err).to_string()),
        },
    }
}

/// The error code and message in an XML (`<Code>`, `<Message>`) or JSON (`__type`, `message`)
/// error body, wherever the envelope puts them.
pub(super) fn code_in_body(body: &str) -> (Option<&str>, Option<&str>) {
    let xml = |tag: &str| {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        let start = body.find(&open)? + open.len();
        let len = body[start..].find(&close)?;
        Some(body[start..start + len].trim())
    };
    let json = |key: &str| {
        let quoted = format!("\"{key}\"");
        let rest = body[body.find(&quoted)? + quoted.len()..].trim_start();
        let rest = rest.strip_prefix(':')?.trim_start().strip_prefix('"')?;
        Some(&rest[..rest.find('"')?])
    };
    let code = xml("Code").or_else(|| json("__type").map(|t| t.rsplit('#').next().unwrap_or(t)));
    let message = xml("Message")
        .or_else(|| json("message"))
        .or_else(|| json("Message"));
    (code.filter(|c| !c.is_empty()), message)
}

/// Classifies an error answer of `call` by AWS's error code (query protocol codes and their
/// JSON-protocol `...Exception` spellings).
pub(super) fn classify(call: Call<'_>, answer: Answer<'_>) -> StsError {
    let operation = call.operation;
    let detail = scrub(answer.message.unwrap_or("no message"));
    let code = answer.code.unwrap_or_default();
    match code {
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => match call.role_arn {
            Some(role_arn) => StsError::AssumeRoleDenied {
                role_arn: role_arn.to_string(),
                detail,
            },
            None => StsError::AccessDenied { operation, detail },
        },
        "ExpiredToken" | "ExpiredTokenException" => StsError::ExpiredToken { operation },
        "InvalidClientTokenId" | "UnrecognizedClientException" | "InvalidAccessKeyId" => {
            StsError::InvalidClientTokenId { operation }
        }
        "SignatureDoesNotMatch" | "InvalidSignatureException" => {
            StsError::SignatureDoesNotMatch { operation }
        }
        "RegionDisabledException" | "RegionDisabled" | "InvalidRegion" | "UnrecognizedRegion" => {
            StsError::UnknownRegion {
                operation,
                region: call.region.to_string(),
                detail,
            }
        }
        "Throttling"
        | "ThrottlingException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "SlowDown" => StsError::Throttled {
            operation,
            retry_after: answer
                .retry_after
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|secs| Duration::from_secs(secs).min(crate::providers::MAX_RETRY_AFTER)),
        },
        "ValidationError"
        | "ValidationException"
        | "InvalidParameterException"
        | "InvalidParameterValue"
        | "InvalidInput"
        | "MalformedPolicyDocument"
        | "MalformedPolicyDocumentException"
        | "PackedPolicyTooLarge"
        | "PackedPolicyTooLargeException"
        | "LimitExceeded"
        | "NoSuchEntity"
        | "RegistryNotFoundException" => StsError::InvalidRequest {
            operation,
            code: code.to_string(),
            detail,
        },
        "" => StsError::AwsError {
            operation,
            code: format!("HTTP {}", answer.status),
            detail,
        },
        other => StsError::AwsError {
            operation,
            code: other.to_string(),
            detail,
        },
    }
}

/// AWS's text made safe to show: at most 300 characters, with any run of 40 or more
/// base64-alphabet characters (the shape of secret access keys and session tokens) replaced by
/// `<redacted>`. Access key IDs (20 characters) and ARNs stay readable.
pub(super) fn scrub(text: &str) -> String {
    let is_key_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= 40 {
            out.push_str("<redacted>");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if is_key_char(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    if out.chars().count() > 300 {
        out = out.chars().take(299).collect::<String>() + "…";
    }
    out.trim().to_string()
}

impl From<StsError> for crate::providers::ProviderError {
    fn from(e: StsError) -> Self {
        use crate::providers::network;
        if let StsError::Unreachable {
            operation, detail, ..
        } = &e
            && network::is_certificate_failure(detail)
        {
            return network::certificate_not_trusted(
                &format!("the AWS endpoint ({operation})"),
                detail,
            );
        }
        Self {
            reason: e.reason(),
            message: e.to_string(),
            retry_after: crate::providers::clamp_retry_after(e.retry_after()),
            permanent: !e.is_transient(),
        }
    }
}
