//! Backups on disk: their data files gzipped once the app serves again, their size, and
//! which ones retention may delete. A pg_dump directory-format backup is `toc.dat` plus one
//! `NNNN.dat` per table's data; pg_restore reads `NNNN.dat.gz` in its place transparently,
//! so compression keeps the backup restorable with a plain `pg_restore -d … DIR`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::domain::AppState;
use crate::store::BackupRow;

/// gzip level of the data files: zlib's default, the same trade-off as `pg_dump -Z 6`.
pub const GZIP_LEVEL: u32 = 6;

/// What one compression pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Compressed {
    /// Data files gzipped by this pass.
    pub files: usize,
    /// The backup's size before and after, in bytes (every file of its directory).
    pub before: u64,
    pub after: u64,
    pub seconds: f64,
    /// Stopped between two files (the backup stays restorable; a later pass finishes it).
    pub stopped: bool,
}

/// A table-data file pg_dump wrote (`1234.dat`), not the table of contents.
fn is_data_file(name: &str) -> bool {
    name.strip_suffix(".dat")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Size of every file of a backup directory, in bytes; 0 when it is gone.
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Gzip each `NNNN.dat` of `dir` into `NNNN.dat.gz`. Crash-safe at every point: each file is
/// compressed to a temporary name, synced, renamed, and only then is the `.dat` deleted, so
/// the directory always holds a complete copy of each table (pg_restore reads `NNNN.dat`
/// first, `NNNN.dat.gz` when there is no `.dat`). Run again after a crash it finishes the
/// job: a `.dat` whose `.gz` exists is deleted, a leftover temporary file is redone.
/// Blocking: run it on a blocking thread. `stop` is checked between files.
pub fn compress_dir(dir: &Path, stop: &CancellationToken) -> std::io::Result<Compressed> {
    let started = Instant::now();
    let before = dir_bytes(dir);
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    for n in names.iter().filter(|n| n.ends_with(".gz.tmp")) {
        std::fs::remove_file(dir.join(n))?;
    }
    let mut out = Compressed::default();
    for name in names.iter().filter(|n| is_data_file(n)) {
        if stop.is_cancelled() {
            out.stopped = true;
            break;
        }
        let plain = dir.join(name);
        let gz = dir.join(format!("{name}.gz"));
        if !gz.exists() {
            let tmp = dir.join(format!("{name}.gz.tmp"));
            gzip_file(&plain, &tmp)?;
            std::fs::rename(&tmp, &gz)?;
            sync_dir(dir)?;
            out.files += 1;
        }
        std::fs::remove_file(&plain)?;
    }
    sync_dir(dir)?;
    out.before = before;
    out.after = dir_bytes(dir);
    out.seconds = started.elapsed().as_secs_f64();
    Ok(out)
}

fn gzip_file(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut input = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(from)?);
    let file = std::fs::File::create(to)?;
    let mut enc = flate2::write::GzEncoder::new(
        std::io::BufWriter::with_capacity(1 << 20, file),
        flate2::Compression::new(GZIP_LEVEL),
    );
    std::io::copy(&mut input, &mut enc)?;
    let mut w = enc.finish()?;
    w.flush()?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Why retention keeps a backup, or that it may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Expired, its app migrated and verified, no run of the app under way: the sweep
    /// deletes it.
    Delete,
    Keep(String),
}

/// What retention decides for one backup. `state` is its app's state in the store;
/// `run_under_way`: an unfinished run of the app exists (a resume may still restore from
/// this backup); `now` in RFC 3339 (UTC), comparable as text with `expires_at`.
/// A rollback puts an app back on OLD, which is kept until its own deprovision; it never
/// reads a backup. So once the migration is done and verified, only the expiry counts.
pub fn verdict(b: &BackupRow, state: Option<AppState>, run_under_way: bool, now: &str) -> Verdict {
    let Some(expires) = &b.expires_at else {
        return Verdict::Keep("no expiry (the runbook that took it keeps backups)".into());
    };
    if expires.as_str() > now {
        return Verdict::Keep(format!("expires {expires}"));
    }
    if run_under_way {
        return Verdict::Keep(format!(
            "a run of {} is under way: it may still restore from it",
            b.app
        ));
    }
    match state {
        Some(AppState::Migrated) => Verdict::Delete,
        Some(s) => Verdict::Keep(format!(
            "{} is {s}: kept until its migration is done and verified",
            b.app
        )),
        None => Verdict::Keep(format!("the store does not know app {}", b.app)),
    }
}

/// The backup directory a row names, if it lies under `root` (`STATE/backups`): the sweep
/// deletes nothing else, whatever a store row says.
pub fn owned_path(row: &BackupRow, root: &Path) -> Option<PathBuf> {
    let p = PathBuf::from(&row.path);
    let root = std::path::absolute(root).ok()?;
    let abs = std::path::absolute(&p).ok()?;
    (abs.starts_with(&root)
        && abs != root
        && !abs
            .components()
            .any(|c| c == std::path::Component::ParentDir))
    .then_some(abs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(expires: Option<&str>) -> BackupRow {
        BackupRow {
            id: 1,
            app: "wiki-live".into(),
            service_id: "wiki-live-db".into(),
            run_id: Some(3),
            server: "old".into(),
            database: "wiki".into(),
            path: "/state/backups/wiki-live/step-9".into(),
            format: "directory".into(),
            size_bytes: 10,
            sha256: String::new(),
            notes: String::new(),
            created_at: "2026-11-01T00:00:00Z".into(),
            expires_at: expires.map(str::to_string),
            dump_bytes: Some(10),
            compressed_at: None,
        }
    }

    #[test]
    fn only_an_expired_backup_of_a_migrated_app_with_no_run_under_way_goes() {
        let now = "2026-11-30T00:00:00Z";
        let past = Some("2026-11-15T00:00:00Z");
        let m = Some(AppState::Migrated);
        assert_eq!(verdict(&row(past), m, false, now), Verdict::Delete);
        assert!(matches!(
            verdict(&row(None), m, false, now),
            Verdict::Keep(_)
        ));
        let future = Some("2026-12-15T00:00:00Z");
        assert!(matches!(
            verdict(&row(future), m, false, now),
            Verdict::Keep(_)
        ));
        assert!(matches!(
            verdict(&row(past), m, true, now),
            Verdict::Keep(_)
        ));
        for s in [
            AppState::Failed,
            AppState::Running,
            AppState::NeedsManual,
            AppState::RolledBack,
        ] {
            assert!(
                matches!(verdict(&row(past), Some(s), false, now), Verdict::Keep(_)),
                "{s}"
            );
        }
        assert!(matches!(
            verdict(&row(past), None, false, now),
            Verdict::Keep(_)
        ));
    }

    #[test]
    fn the_sweep_only_touches_directories_under_its_root() {
        let root = Path::new("/state/backups");
        assert!(owned_path(&row(None), root).is_some());
        let mut r = row(None);
        r.path = "/etc".into();
        assert!(owned_path(&r, root).is_none());
        r.path = "/state/backups/../../etc".into();
        assert!(owned_path(&r, root).is_none());
        r.path = "/state/backups".into();
        assert!(owned_path(&r, root).is_none());
    }

    #[test]
    fn data_files_are_numbered_dat_files_only() {
        assert!(is_data_file("3012.dat"));
        assert!(!is_data_file("toc.dat"));
        assert!(!is_data_file("3012.dat.gz"));
        assert!(!is_data_file(".dat"));
    }

    #[test]
    fn compression_replaces_each_data_file_and_finishes_a_crashed_pass() {
        let dir = std::env::temp_dir().join(format!("pgshift-compress-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let data = "1\tsome row text that repeats\n".repeat(10_000);
        std::fs::write(dir.join("toc.dat"), "toc").unwrap();
        std::fs::write(dir.join("3001.dat"), &data).unwrap();
        std::fs::write(dir.join("3002.dat"), &data).unwrap();
        // A pass that died after renaming 3001's .gz (its .dat still there) and while
        // writing 3002's temporary file.
        gzip_file(&dir.join("3001.dat"), &dir.join("3001.dat.gz")).unwrap();
        std::fs::write(dir.join("3002.dat.gz.tmp"), "half").unwrap();
        let c = compress_dir(&dir, &CancellationToken::new()).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        assert_eq!(names, ["3001.dat.gz", "3002.dat.gz", "toc.dat"]);
        assert_eq!(c.files, 1, "3001 was already compressed");
        assert!(c.after < c.before / 10, "{c:?}");
        for n in ["3001.dat.gz", "3002.dat.gz"] {
            let mut s = String::new();
            std::io::Read::read_to_string(
                &mut flate2::read::GzDecoder::new(std::fs::File::open(dir.join(n)).unwrap()),
                &mut s,
            )
            .unwrap();
            assert_eq!(s, data);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
