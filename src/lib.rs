//! The domains in `domains/`, compiled to Rust by `build.rs` into `generated/`.

include!("../generated/mod.rs");

pub mod matching;

pub mod bench;
pub mod catalog;
pub mod feed;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod serve;
pub mod service;
