//! Logs go to daily-rolling files under the state dir, never to the terminal the console
//! draws on. `--log-level`, `PGSHIFT_LOG` or `RUST_LOG` choose the filter.

use std::path::Path;

use color_eyre::eyre::{Result, WrapErr};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Start file logging; keep the guard alive until exit so buffered lines are flushed.
pub fn init(dir: &Path, level: &str) -> Result<WorkerGuard> {
    std::fs::create_dir_all(dir).wrap_err_with(|| format!("creating log dir {}", dir.display()))?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("pgshift")
        .filename_suffix("log")
        .max_log_files(14)
        .build(dir)
        .wrap_err_with(|| format!("opening log file in {}", dir.display()))?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| {
            EnvFilter::try_new(format!("warn,pgshift={level}"))
                .unwrap_or_else(|_| EnvFilter::new("warn,pgshift=info"))
        });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(writer)
        .try_init()
        .ok();
    Ok(guard)
}
