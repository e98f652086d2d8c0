//! The admin endpoint under `/emulator/`, for tests in other processes and for humans:
//!
//! | request | effect |
//! |---|---|
//! | `GET /emulator/counters` | requests served per verb and resource |
//! | `DELETE /emulator/counters` | reset the counters |
//! | `GET`, `PUT`, `DELETE /emulator/faults` | read, set (JSON [`Faults`]), clear injected faults |
//! | `POST /emulator/compact` | forget the change history (resuming watches get 410) |
//! | `POST /emulator/cut-watches` | end every open watch stream |
//! | `POST /emulator/expire-watches` | both: every watcher's re-watch gets 410 and relists |
//!
//! Admin requests are neither counted nor subject to faults.

use super::faults::{Counters, Faults};
use super::state::Shared;
use crate::apiserver::error::ApiError;
use crate::apiserver::request::{ApiRequest, Method};
use crate::apiserver::verbs::reply::Reply;
use serde_json::json;

/// Handles an admin request; None when the path is not an admin path.
pub(super) fn handle(shared: &Shared, req: &ApiRequest) -> Option<Reply> {
    let what = req.path.strip_prefix("/emulator/")?;
    let done = || Reply::json(200, &json!({"status": "Success"}));
    let reply = match (req.method, what.trim_end_matches('/')) {
        (Method::Get, "counters") => Reply::json(200, &shared.control().counters.to_json()),
        (Method::Delete, "counters") => {
            shared.control().counters = Counters::default();
            done()
        }
        (Method::Get, "faults") => Reply::json(200, &json!(shared.control().faults)),
        (Method::Put, "faults") => match serde_json::from_slice::<Faults>(&req.body) {
            Ok(f) => {
                shared.control().faults = f;
                done()
            }
            Err(e) => Reply::error(&ApiError::bad_request(format!("invalid faults: {e}"))),
        },
        (Method::Delete, "faults") => {
            shared.control().faults = Faults::default();
            done()
        }
        (Method::Post, "compact") => {
            shared.lock().compact();
            done()
        }
        (Method::Post, "cut-watches") => {
            shared.cut.send_modify(|n| *n += 1);
            done()
        }
        (Method::Post, "expire-watches") => {
            shared.lock().compact();
            shared.cut.send_modify(|n| *n += 1);
            done()
        }
        _ => Reply::error(&ApiError::no_route(&req.path)),
    };
    Some(reply)
}
