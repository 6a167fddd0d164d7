//! pgshift: move a PaaS fleet of PostgreSQL 13 databases to PostgreSQL 15 in supervised
//! night windows. See docs/architecture.md for the module map.

pub mod backups;
pub mod cli;
pub mod config;
pub mod console;
pub mod diagnose;
pub mod domain;
pub mod engine;
pub mod error;
pub mod inventory;
pub mod lab;
pub mod logging;
pub mod ops;
pub mod plan;
pub mod platform;
pub mod postgres;
pub mod preflight;
pub mod probe;
pub mod report;
pub mod runbook;
pub mod store;
