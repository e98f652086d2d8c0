//! Test and trial infrastructure for patchbay: a Kubernetes API emulator, provider simulators
//! and the sandbox. Never part of the operator's production build.
#![forbid(unsafe_code)]

pub mod admission;
pub mod apiserver;
pub mod azure_devops;
pub mod envtest;
pub mod github;
pub mod gitlab;
pub mod hostile;
pub mod http;
pub mod keys;
pub mod moto;
pub mod oauth_server;
pub mod peer;
pub mod proxy;
pub mod registry;
pub mod sandbox;
pub mod slack;
pub mod tls;
pub mod verdaccio;
pub mod wait;
