//! Nexero Showroom: headsets post tours over the LAN; everything lands in one WAL-mode SQLite
//! file; staff read it on an embedded dashboard; a background sync pushes it upstream.

#![deny(unsafe_code)]

pub mod app;
pub mod bench;
pub mod cli;
pub mod config;
pub mod error;
pub mod ingest;
pub mod model;
pub mod reprocess;
pub mod service;
pub mod store;
pub mod web;

pub use app::{launch, serve, AppState, StartError};
pub use config::Settings;
