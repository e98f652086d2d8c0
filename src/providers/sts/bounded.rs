//! AWS answers read up to a bound: an endpoint a tenant controls (`stsEndpoint`,
//! `spec.ecr.endpoint`) cannot make the operator read without end.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use http_body_util::Limited;

/// The largest AWS answer read; STS, ECR and IAM answers are a few KiB.
pub const MAX_ANSWER: usize = 1 << 20;

/// Wraps every answer's body so that reading past [`MAX_ANSWER`] bytes fails the call.
#[derive(Debug)]
pub struct BoundedAnswers;

impl Intercept for BoundedAnswers {
    fn name(&self) -> &'static str {
        "BoundedAnswers"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let body = context.response_mut().take_body();
        *context.response_mut().body_mut() = SdkBody::from_body_1_x(Limited::new(body, MAX_ANSWER));
        Ok(())
    }
}
