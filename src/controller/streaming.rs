//! Watches that fill their cache from a streamed list, with paged lists where the API server
//! does not stream.
//!
//! A paged list answers with up to 500 whole objects at a time, managed fields included, and
//! each answer is decoded in one piece: at 10,000 tokens that is what the operator's memory
//! peaks on after a restart. A streamed list (`sendInitialEvents`, the WatchList feature: beta
//! and on by default since Kubernetes 1.32) sends the same objects one watch event at a time.
//! A server that does not stream (WatchList off, as on 1.30 and 1.31 by default) refuses the
//! request as invalid; that watch then lists by pages for the rest of its life, as
//! kube-runtime's plain watcher does.

use std::fmt::Debug;

use futures::StreamExt;
use futures::stream::BoxStream;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tracing::info;

/// The events of a watch of `api` with `config`, its list streamed where the server streams
/// and paged where it refuses to. Errors are passed on as the plain watcher passes them, for
/// the caller's backoff; only a refusal of the streamed list itself is taken here.
pub fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
) -> BoxStream<'static, watcher::Result<Event<K>>>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default,
{
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let streaming = watcher(api.clone(), config.clone().streaming_lists()).boxed();
    let start = Watch::Streaming {
        stream: streaming,
        listing: true,
        fallback: Box::new((api, config)),
    };
    futures::stream::unfold(start, move |mut state| {
        let kind = kind.clone();
        async move {
            loop {
                match state {
                    Watch::Streaming {
                        mut stream,
                        mut listing,
                        fallback,
                    } => match stream.next().await {
                        Some(Err(error)) if listing && refused(&error) => {
                            info!(%kind, %error, "the API server does not stream lists; listing by pages");
                            let (api, config) = *fallback;
                            state = Watch::Paged(watcher(api, config).boxed());
                        }
                        Some(item) => {
                            listing = match &item {
                                Ok(Event::InitDone) => false,
                                // A relist after the watch was lost streams again.
                                Err(_) => true,
                                Ok(_) => listing,
                            };
                            let next = Watch::Streaming {
                                stream,
                                listing,
                                fallback,
                            };
                            return Some((item, next));
                        }
                        None => return None,
                    },
                    Watch::Paged(mut stream) => {
                        return stream.next().await.map(|item| (item, Watch::Paged(stream)));
                    }
                }
            }
        }
    })
    .boxed()
}

/// Where a [`watch`] is.
enum Watch<K: Resource + Clone + 'static> {
    /// Streaming; `listing` until the current list is complete. `fallback` is what a paged
    /// watch would be made of.
    Streaming {
        stream: BoxStream<'static, watcher::Result<Event<K>>>,
        listing: bool,
        fallback: Box<(Api<K>, watcher::Config)>,
    },
    /// Listing by pages, for good.
    Paged(BoxStream<'static, watcher::Result<Event<K>>>),
}

/// Whether `error` is the server refusing a streamed list as a request it does not take (400
/// Bad Request, 422 Invalid), as opposed to an outage, a denial or a lost watch, which the
/// caller retries as it retries any watch.
fn refused(error: &watcher::Error) -> bool {
    let code = match error {
        watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code,
        watcher::Error::WatchError(status) => status.code,
        _ => return false,
    };
    matches!(code, 400 | 422)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn status(code: u16) -> Box<Status> {
        Box::new(Status::failure("refused", "Invalid").with_code(code))
    }

    #[test]
    fn a_rejected_request_is_a_refusal_and_an_outage_or_a_denial_is_not() {
        for code in [400, 422] {
            assert!(refused(&watcher::Error::WatchStartFailed(
                kube::Error::Api(status(code))
            )));
            assert!(refused(&watcher::Error::WatchError(status(code))));
        }
        for code in [401, 403, 404, 410, 429, 500, 503] {
            assert!(!refused(&watcher::Error::WatchStartFailed(
                kube::Error::Api(status(code))
            )));
            assert!(!refused(&watcher::Error::WatchError(status(code))));
        }
        assert!(!refused(&watcher::Error::NoResourceVersion));
    }
}
