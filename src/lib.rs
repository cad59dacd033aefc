//! Nexero Showroom: headsets post tours over the LAN; everything lands in one WAL-mode SQLite
//! file; staff read it on an embedded dashboard; a background sync pushes it upstream.
//!
//! Layers, each importing only those below it: `cli` → `service` → `app` → `http` →
//! `dashboard`, `live` → `auth`, `ingest` → `error` → `store` → `model`, `config`. `bench` drives a running appliance and generates data.

#![deny(unsafe_code)]

pub mod app;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod http;
pub mod ingest;
pub mod live;
pub mod logging;
pub mod model;
pub mod net;
pub mod service;
pub mod store;
pub mod sync;

pub use app::{launch, serve, StartError};
pub use config::Settings;
