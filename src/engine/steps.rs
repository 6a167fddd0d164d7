//! What each step does, through the Databases and Platform the engine was given. Every step
//! is safe to run again: resume re-runs the first unfinished one.

use std::path::Path;

use super::databases::{BACKUP_COMPRESSION, COPY_JOBS, Databases, VERIFY_CONNECTIONS};
use super::io::StepIo;
use super::{Ctx, Engine, StepFailure};
use crate::inventory::{App, ServiceKind};
use crate::platform::{Platform, ServiceRef};
use crate::postgres::provision::RuntimeOptions;
use crate::postgres::verify::{self, RowHash};
use crate::runbook::{Step, StepKind};
use crate::store::BackupRecord;
use color_eyre::eyre::WrapErr;

/// NEW's session settings while it is loaded: no timeouts, and a remediation's own.
fn restore_settings(ctx: &Ctx) -> Vec<String> {
    let mut settings = super::databases::no_timeouts();
    settings.extend(ctx.restore_options.iter().cloned());
    settings
}

/// A remediation that changes how NEW is loaded, said before it is used.
fn say_remediation(ctx: &Ctx, io: &mut StepIo, doing: &str) {
    if let (Some(r), false) = (&ctx.remediation, ctx.restore_options.is_empty()) {
        io.say(format!(
            "remediation {r}: {doing} with {}",
            ctx.restore_options.join(", ")
        ));
    }
}

/// A step failure, logged as the step's last line (diagnosis reads it).
pub(super) fn fail(io: &mut StepIo, summary: impl Into<String>) -> StepFailure {
    let summary = summary.into();
    io.say(format!("error: {summary}"));
    StepFailure { summary }
}

/// Turn an internal error into a logged step failure (diagnosis reads the line).
macro_rules! tri {
    ($io:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Err($crate::engine::steps::fail($io, format!("{e:#}"))),
        }
    };
}
pub(super) use tri;

impl<P: Platform, D: Databases> Engine<P, D> {
    pub(super) async fn run_step(
        &self,
        app: &App,
        step: &Step,
        ctx: &mut Ctx,
        io: &mut StepIo,
    ) -> Result<(), StepFailure> {
        match step.kind {
            StepKind::Collect => {
                if let Some(n) = &step.notes {
                    io.say(n);
                }
                self.collect(app, ctx, io)?;
                let old = tri!(io, ctx.old.clone().ok_or("nothing collected"));
                let bytes = tri!(io, self.db.size(&old).await);
                ctx.old_bytes = bytes;
                io.say(format!(
                    "{} is {:.1} MB on OLD",
                    old.database,
                    bytes as f64 / 1e6
                ));
                Ok(())
            }
            StepKind::Reprovision => self.reprovision(app, step, ctx, io).await,
            StepKind::Pause => {
                // Paused from here on even if the hook fails half-way: every exit unpauses.
                ctx.paused = true;
                tri!(io, self.platform.pause(app, io).await);
                io.say(format!(
                    "{} is behind its maintenance page; its processes are stopped",
                    app.name
                ));
                Ok(())
            }
            StepKind::Backup => self.backup(app, step, ctx, io).await,
            StepKind::Restore => self.restore(ctx, io).await,
            StepKind::Verify => self.verify(ctx, io).await,
            StepKind::Enable => {
                let new = tri!(
                    io,
                    ctx.new
                        .clone()
                        .ok_or("no NEW service: reprovision did not run")
                );
                if ctx.logical {
                    // NEW's write count, for a rollback to see whether NEW took writes.
                    let (checked, writes) =
                        tokio::join!(self.old_took_no_writes(ctx, io), self.db.write_count(&new));
                    checked?;
                    ctx.new_writes = Some(tri!(io, writes));
                } else {
                    self.old_took_no_writes(ctx, io).await?;
                }
                ctx.enabled = true;
                tri!(io, self.platform.set_service(app, &new, io).await);
                io.say(format!(
                    "DATABASE_URL of {} now points at {} ({} on server {})",
                    app.name, new.id, new.service, new.server
                ));
                Ok(())
            }
            StepKind::Unpause => {
                tri!(io, self.platform.unpause(app, io).await);
                ctx.paused = false;
                io.say(format!("{} is serving again", app.name));
                Ok(())
            }
            StepKind::Redeploy => {
                tri!(io, self.platform.redeploy(app, io).await);
                io.say(format!("{} was redeployed and started", app.name));
                Ok(())
            }
            StepKind::Health => {
                tri!(io, self.platform.health(app, io).await);
                io.say(format!("{} answers its health check", app.name));
                Ok(())
            }
            StepKind::Subscribe => self.subscribe(app, ctx, io).await,
            StepKind::CatchUp => self.catch_up(app, ctx, io).await,
            StepKind::Sync => self.sync(app, ctx, io).await,
            StepKind::CompressBackup => self.compress_backup(app, ctx, io).await,
            StepKind::ScheduleDeprovision => {
                let after = step.after_seconds.unwrap_or(7 * 86_400);
                let when = chrono::Utc::now() + chrono::Duration::seconds(after as i64);
                let when = when.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                if let Some(old) = &ctx.old {
                    io.say(format!(
                        "OLD {} ({} on server {}) is kept until {when}; it is dropped only after that, by `pgshift deprovision --app {} --confirm`",
                        old.id, old.database, old.server, app.name
                    ));
                }
                ctx.deprovision_not_before = Some(when);
                Ok(())
            }
        }
    }

    fn collect(&self, app: &App, ctx: &mut Ctx, io: &mut StepIo) -> Result<(), StepFailure> {
        let wanted = self.runbook.collected_services();
        let svc = app
            .services
            .iter()
            .find(|s| s.provisioned && wanted.contains(&s.service.as_str()));
        let Some(s) = svc else {
            return Err(fail(
                io,
                format!("{} has no provisioned {}", app.name, wanted.join(" / ")),
            ));
        };
        let (Some(server), Some(database), Some(user)) = (&s.server, &s.database, &s.user) else {
            return Err(fail(
                io,
                format!("service {} has no server, database or user", s.id),
            ));
        };
        ctx.old = Some(ServiceRef {
            id: s.id.clone(),
            service: s.service.clone(),
            server: server.clone(),
            database: database.clone(),
            user: user.clone(),
        });
        io.say(format!(
            "collected {} ({}): database {database}, role {user} on server {server}",
            s.id, s.service
        ));
        Ok(())
    }

    async fn reprovision(
        &self,
        app: &App,
        step: &Step,
        ctx: &mut Ctx,
        io: &mut StepIo,
    ) -> Result<(), StepFailure> {
        let old = tri!(io, ctx.old.clone().ok_or("nothing collected"));
        let Some(service) = step.overrides.get(&old.service) else {
            return Err(fail(
                io,
                format!("the runbook has no override for {}", old.service),
            ));
        };
        let ServiceKind::Postgres { major } = ServiceKind::from_service_name(service) else {
            return Err(fail(
                io,
                format!("override target {service} is not a postgresql-database-N service"),
            ));
        };
        let region = tri!(
            io,
            self.inv
                .regions
                .iter()
                .find(|r| r.name == app.region)
                .ok_or("region missing")
        );
        let Some(server) = region.targets.get(&major) else {
            return Err(fail(
                io,
                format!(
                    "region {} names no target server for PostgreSQL {major} (targets = {{ \"{major}\" = \"…\" }})",
                    region.name
                ),
            ));
        };
        // By address, not name: two names for one server are one server.
        if *server == old.server
            || self.servers.identity(server) == self.servers.identity(&old.server)
        {
            return Err(fail(
                io,
                format!(
                    "NEW would be created on OLD's own server {server} ({}): refusing to touch OLD",
                    self.servers.identity(server)
                ),
            ));
        }
        let new = ServiceRef {
            id: format!("{}-{major}", old.id),
            service: service.clone(),
            server: server.clone(),
            database: old.database.clone(),
            user: old.user.clone(),
        };
        // NEW is dropped and created below: it must be nobody's database — not this app's live
        // one, not another app's (same target server, same name).
        if tri!(io, self.platform.status(app).await).service == new {
            return Err(fail(
                io,
                format!(
                    "{} is what {} uses now: refusing to re-create it",
                    new.id, app.name
                ),
            ));
        }
        if let Some(other) =
            self.claimed_by_another(&app.name, &new.server, &new.database, &new.user)
        {
            return Err(fail(
                io,
                format!(
                    "database {} or role {} on server {} belongs (or will belong) to app {other} too: refusing to touch it",
                    new.database, new.user, new.server
                ),
            ));
        }
        let opts = if step.copy_runtime_options {
            tri!(io, self.db.read_options(&old).await)
        } else {
            RuntimeOptions {
                connection_limit: -1,
                ..Default::default()
            }
        };
        let password = tri!(io, self.servers.new_role_password(&new.server, &new.user));
        io.secret(password.expose());
        let force = ctx
            .md5_password
            .then_some(crate::postgres::PasswordMethod::Md5);
        if force.is_some() {
            io.say(format!(
                "remediation md5-password: the role's password is hashed md5 (as with SET password_encryption = 'md5'), since {}'s image has {}; flag: rebuild the image",
                app.name,
                app.client.label()
            ));
        }
        let role = tri!(io, self.db.provision(&new, &password, &opts, force).await);
        let skipped = role.skipped_settings.clone();
        io.say(format!(
            "provisioned {} ({service}) on server {}: role {} with a fresh password ({}), database {}",
            new.id,
            new.server,
            new.user,
            match role.method {
                Some(crate::postgres::PasswordMethod::Md5) => "md5",
                _ => "scram-sha-256",
            },
            new.database
        ));
        for (k, v) in opts
            .role_settings
            .iter()
            .map(|(k, v)| (format!("role {k}"), v))
            .chain(
                opts.database_settings
                    .iter()
                    .map(|(k, v)| (format!("database {k}"), v)),
            )
        {
            if !skipped.iter().any(|s| s.starts_with(&k)) {
                io.say(format!("copied {k} = {v}"));
            }
        }
        for s in &skipped {
            io.say(format!("skipped {s}: NEW does not know this setting"));
        }
        if !opts.extensions.is_empty() {
            io.say(format!("extensions: {}", opts.extensions.join(", ")));
        }
        io.say(format!("connection limit {}", opts.connection_limit));
        ctx.new = Some(new);
        ctx.options = Some(opts);
        ctx.new_untouched = true;
        Ok(())
    }

    async fn backup(
        &self,
        app: &App,
        step: &Step,
        ctx: &mut Ctx,
        io: &mut StepIo,
    ) -> Result<(), StepFailure> {
        let old = tri!(io, ctx.old.clone().ok_or("nothing collected"));
        // Logical: OLD keeps serving; sync counts its writes behind the page instead.
        if !step.logical {
            let writes = tri!(io, self.db.write_count(&old).await);
            ctx.old_writes = Some(writes);
        }
        let replication = if step.logical {
            Some(self.start_replication(app, ctx, io).await?)
        } else {
            None
        };
        let snapshot = replication.as_ref().map(|r| r.holder.snapshot.clone());
        let dir = self
            .state_dir
            .join("backups")
            .join(&app.name)
            .join(format!("step-{}", io.step_id));
        if let Some(new) = ctx.new.clone() {
            // NEW must be empty: fresh from reprovision, or created again.
            let fresh = std::mem::take(&mut ctx.new_untouched);
            // Logical: the copy must be the slot's snapshot, which only the dump imports.
            if self.db.streams() && !step.logical {
                if !fresh {
                    let opts = ctx.options.clone().unwrap_or_default();
                    tri!(io, self.db.recreate_database(&new, &opts).await);
                }
                return self
                    .backup_streamed(app, step, ctx, io, &old, &new, &dir)
                    .await;
            }
            ctx.new_untouched = fresh;
        }
        let compression = match BACKUP_COMPRESSION {
            0 => "no compression".to_string(),
            n => format!("gzip level {n}"),
        };
        io.say(format!(
            "pg_dump of {} on server {} (directory format, 2 jobs, {compression}); OLD fingerprinted meanwhile in the dump's snapshot ({VERIFY_CONNECTIONS} connections)",
            old.database, old.server
        ));
        let outcome = {
            let cancel = io.cancel.clone();
            let mut sink = |s: crate::postgres::process::Stream, l: String| io.line(s.id(), &l);
            self.db
                .backup(&old, &dir, snapshot.as_deref(), &cancel, &mut sink)
                .await
        };
        // The snapshot was imported by the dump's own transaction: the slot's connection can go.
        if let Some(r) = replication {
            r.holder.close().await;
        }
        let outcome = tri!(io, outcome);
        if !outcome.child.success {
            return Err(fail(
                io,
                format!("pg_dump exited with {:?}", outcome.child.code),
            ));
        }
        let (bytes, sha) = outcome
            .files
            .unwrap_or_else(|| (ctx.old_bytes / 8, format!("{:064x}", ctx.old_bytes)));
        if !outcome.seconds.is_empty() {
            io.say(format!(
                "ended after: {}",
                outcome
                    .seconds
                    .iter()
                    .map(|(what, s)| format!("{what} {s:.2} s"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let Some(f) = &outcome.old {
            io.say(format!(
                "OLD in the dump's snapshot: {} tables, {} rows",
                f.tables.len(),
                f.rows()
            ));
        }
        ctx.old_fingerprint = outcome.old;
        self.keep_backup(app, step, ctx, io, &old, &dir, bytes, sha)
            .await
    }

    /// The backup step on pgshift's own copy: one read of OLD feeds NEW, the kept archive and
    /// OLD's row hashes at once (`postgres::copy`); NEW's tables are hashed back as they land.
    #[allow(clippy::too_many_arguments)]
    async fn backup_streamed(
        &self,
        app: &App,
        step: &Step,
        ctx: &mut Ctx,
        io: &mut StepIo,
        old: &ServiceRef,
        new: &ServiceRef,
        dir: &Path,
    ) -> Result<(), StepFailure> {
        let settings = restore_settings(ctx);
        say_remediation(ctx, io, "loading NEW");
        io.say(format!(
            "copying {} on server {} into {} on server {} as {} in one read of OLD ({COPY_JOBS} tables at once, each table's indexes as it lands); kept backup {} written from the same rows (directory format, no compression)",
            old.database,
            old.server,
            new.database,
            new.server,
            new.user,
            dir.display()
        ));
        let outcome = {
            let mut sink = |s: crate::postgres::process::Stream, l: String| io.line(s.id(), &l);
            self.db
                .copy(old, new, settings, dir, &self.cancel, &mut sink)
                .await
        };
        let outcome = match tri!(io, outcome) {
            Some(o) => o,
            None => return Err(fail(io, "this world has no streaming copy")),
        };
        io.say(format!(
            "ended after: {}",
            outcome
                .seconds
                .iter()
                .map(|(what, s)| format!("{what} {s:.2} s"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        io.say(format!(
            "OLD in the copy's snapshot: {} tables, {} rows; NEW loaded and {} of its tables hashed back",
            outcome.tables,
            outcome.rows,
            outcome.new_tables.len()
        ));
        let (bytes, sha) = outcome.archive;
        ctx.old_fingerprint = Some(outcome.old);
        ctx.new_loaded = outcome.new_tables;
        ctx.new_loaded_by_copy = true;
        self.keep_backup(app, step, ctx, io, old, dir, bytes, sha)
            .await
    }

    /// Record a finished backup in the store (with its expiry from the runbook's retention)
    /// and remember it for the steps after: one place for both copy paths.
    #[allow(clippy::too_many_arguments)]
    async fn keep_backup(
        &self,
        app: &App,
        step: &Step,
        ctx: &mut Ctx,
        io: &mut StepIo,
        old: &ServiceRef,
        dir: &Path,
        bytes: u64,
        sha: String,
    ) -> Result<(), StepFailure> {
        let notes = step.notes.clone().unwrap_or_default();
        let expires_at = step.after_seconds.map(|s| {
            (chrono::Utc::now() + chrono::Duration::seconds(s as i64))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        });
        tri!(
            io,
            self.journal
                .backup(BackupRecord {
                    app: app.name.clone(),
                    service_id: old.id.clone(),
                    run_id: io.run_id,
                    server: old.server.clone(),
                    database: old.database.clone(),
                    path: dir.display().to_string(),
                    format: "directory".into(),
                    size_bytes: bytes as i64,
                    sha256: sha.clone(),
                    notes,
                    expires_at: expires_at.clone(),
                })
                .await
        );
        io.say(format!(
            "backup kept: {} ({bytes} bytes, sha256 {sha}), {}",
            dir.display(),
            match &expires_at {
                Some(t) => format!("expires {t}"),
                None => "no expiry".to_string(),
            }
        ));
        ctx.backup_path = Some(dir.display().to_string());
        ctx.backup_bytes = Some(bytes);
        Ok(())
    }

    /// Gzip the backup's data files, the app serving again. Never fails the migration: the
    /// app is on NEW and verified; a backup left (partly) uncompressed is still restorable
    /// and a later run of this step, or a resume, finishes it.
    async fn compress_backup(
        &self,
        app: &App,
        ctx: &mut Ctx,
        io: &mut StepIo,
    ) -> Result<(), StepFailure> {
        let Some(path) = ctx.backup_path.clone() else {
            io.say("no backup to compress");
            return Ok(());
        };
        let dir = std::path::PathBuf::from(&path);
        if !dir.is_dir() {
            io.say(format!("{path} holds no files to compress"));
            return Ok(());
        }
        io.say(format!(
            "gzip (level {}) of each table's data file of {path}, {} serving meanwhile",
            crate::backups::GZIP_LEVEL,
            app.name
        ));
        let stop = io.cancel.clone();
        let d = dir.clone();
        let done =
            tokio::task::spawn_blocking(move || crate::backups::compress_dir(&d, &stop)).await;
        let c = match done {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                io.say(format!(
                    "warning: compressing {path} failed ({e}); the backup stays restorable as it is"
                ));
                return Ok(());
            }
            Err(e) => {
                io.say(format!("warning: compressing {path} did not finish ({e})"));
                return Ok(());
            }
        };
        if c.stopped {
            io.say(format!(
                "compression stopped after {} file(s); the backup stays restorable",
                c.files
            ));
            return Ok(());
        }
        let (bytes, sha) = match crate::platform::databases::hash_dir(&dir) {
            Ok(h) => h,
            Err(e) => {
                io.say(format!("warning: hashing {path} after compression: {e}"));
                return Ok(());
            }
        };
        tri!(
            io,
            self.journal
                .backup_compressed(&app.name, io.run_id, bytes as i64, &sha)
                .await
        );
        io.say(format!(
            "compressed {} data file(s) in {:.2} s: {} → {} bytes on disk ({:.0} %), sha256 {sha}",
            c.files,
            c.seconds,
            c.before,
            c.after,
            if c.before > 0 {
                100.0 * c.after as f64 / c.before as f64
            } else {
                100.0
            }
        ));
        ctx.backup_bytes = Some(bytes);
        Ok(())
    }

    async fn restore(&self, ctx: &mut Ctx, io: &mut StepIo) -> Result<(), StepFailure> {
        if std::mem::take(&mut ctx.new_loaded_by_copy) {
            let new = tri!(io, ctx.new.clone().ok_or("no NEW service"));
            io.say(format!(
                "{} on server {} was loaded from the backup step's read of OLD: nothing to restore",
                new.database, new.server
            ));
            return Ok(());
        }
        let new = tri!(
            io,
            ctx.new
                .clone()
                .ok_or("no NEW service: reprovision did not run")
        );
        let path = tri!(io, ctx.backup_path.clone().ok_or("no backup to restore"));
        let opts = ctx.options.clone().unwrap_or_default();
        // An empty NEW database every time: a restore killed half-way leaves nothing behind.
        // Dropping and creating it again is skipped (~0.15 s behind the page) only when this
        // process provisioned it moments ago and nothing has restored into it since.
        if std::mem::take(&mut ctx.new_untouched) {
            io.say(format!(
                "{} on server {} is as reprovision created it, empty: restoring into it",
                new.database, new.server
            ));
        } else {
            tri!(io, self.db.recreate_database(&new, &opts).await);
        }
        let pgoptions = restore_settings(ctx)
            .iter()
            .map(|s| format!("-c {s}"))
            .collect::<Vec<_>>()
            .join(" ");
        say_remediation(ctx, io, "restoring");
        io.say(format!(
            "pg_restore into {} on server {} as {} (2 jobs, PGOPTIONS '{pgoptions}')",
            new.database, new.server, new.user
        ));
        // NEW's tables are hashed as pg_restore finishes loading each, while it builds their
        // indexes: then verify has little left to read. Only when OLD's fingerprint (and so
        // the row hash to use) is already known.
        ctx.new_loaded.clear();
        let row_hash = ctx.old_fingerprint.as_ref().map(|f| f.row_hash);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let cancel = io.cancel.clone();
        let restored = async {
            let tx = row_hash.map(|_| tx);
            let mut sink = |s: crate::postgres::process::Stream, l: String| {
                if let (Some(tx), Some(t)) = (&tx, verify::loaded_table(&l)) {
                    let _ = tx.send(t.to_string());
                }
                io.line(s.id(), &l)
            };
            self.db
                .restore(&new, Path::new(&path), &pgoptions, &cancel, &mut sink)
                .await
        };
        let hashed = async {
            match row_hash {
                Some(h) => tokio::select! {
                    r = self.db.hash_as_loaded(&new, h, rx) => Some(r),
                    _ = cancel.cancelled() => None,
                },
                None => None,
            }
        };
        let (outcome, hashed) = tokio::join!(restored, hashed);
        let outcome = tri!(io, outcome);
        match hashed {
            Some(Ok(h)) => ctx.new_loaded = h,
            // Verify reads whatever could not be hashed here.
            Some(Err(e)) => io.say(format!("hashing NEW's tables as they loaded: {e:#}")),
            None => {}
        }
        if outcome.success {
            if !ctx.new_loaded.is_empty() {
                io.say(format!(
                    "hashed {} of NEW's tables as pg_restore finished loading them",
                    ctx.new_loaded.len()
                ));
            }
            return Ok(());
        }
        if outcome.cancelled {
            return Err(fail(io, "pg_restore cancelled"));
        }
        let errors: Vec<String> = io
            .lines
            .iter()
            .filter(|l| l.contains("pg_restore: error:"))
            .cloned()
            .collect();
        let harmless = !errors.is_empty() && errors.iter().all(|e| e.contains("must be owner of"));
        if harmless {
            io.say(format!(
                "ignoring {} known-harmless ownership error(s) of a restore as the app role; verification decides",
                errors.len()
            ));
            return Ok(());
        }
        Err(fail(
            io,
            format!("pg_restore exited with {:?}", outcome.code),
        ))
    }

    async fn verify(&self, ctx: &mut Ctx, io: &mut StepIo) -> Result<(), StepFailure> {
        let old = tri!(io, ctx.old.clone().ok_or("nothing collected"));
        let new = tri!(io, ctx.new.clone().ok_or("no NEW service"));
        // OLD as the backup copied it (read during the dump, in its snapshot); live if this run
        // has none (a run an older pgshift began).
        let (a, b) = match ctx.old_fingerprint.clone() {
            Some(a) => {
                let known = ctx.new_loaded.clone();
                io.say(format!(
                    "comparing NEW with OLD as read in the dump's snapshot; {} of NEW's tables hashed as they were restored, the other {} now on {VERIFY_CONNECTIONS} connections, largest first",
                    known.len(),
                    (a.tables.len() + a.matviews.len()).saturating_sub(known.len())
                ));
                let b = self.db.fingerprint(&new, a.row_hash, known).await;
                (
                    a,
                    tri!(io, b.wrap_err("verification: could not fingerprint NEW")),
                )
            }
            None => {
                let (a, b) = tokio::join!(
                    self.db
                        .fingerprint(&old, RowHash::Typed, Default::default()),
                    self.db
                        .fingerprint(&new, RowHash::Typed, Default::default())
                );
                (
                    tri!(io, a.wrap_err("verification: could not fingerprint OLD")),
                    tri!(io, b.wrap_err("verification: could not fingerprint NEW")),
                )
            }
        };
        io.say(format!(
            "OLD: {} tables, {} rows, {:?}",
            a.tables.len(),
            a.rows(),
            a.objects
        ));
        io.say(format!(
            "NEW: {} tables, {} rows, {:?}",
            b.tables.len(),
            b.rows(),
            b.objects
        ));
        // Logical: sequences are not transactional, so the dump carried their values as the
        // app (still serving) had moved them, not as of the snapshot; sync sets them behind
        // the page.
        let diffs = if ctx.logical {
            let (mut a, mut b) = (a.clone(), b.clone());
            a.sequences.clear();
            b.sequences.clear();
            verify::differences(&a, &b)
        } else {
            verify::differences(&a, &b)
        };
        if !diffs.is_empty() {
            for d in &diffs {
                io.say(format!("verification failed: {d}"));
            }
            return Err(StepFailure {
                summary: format!("{} difference(s) between OLD and NEW", diffs.len()),
            });
        }
        for w in verify::warnings(&a, &b) {
            io.say(format!("warning: {w}"));
        }
        io.say(format!(
            "verified: every table's row count and content hash, {} sequences and all object counts are equal",
            b.sequences.len()
        ));
        ctx.fingerprint = Some(b);
        Ok(())
    }

    /// OLD must not have changed since the backup's snapshot: a write there after it would
    /// be lost once the app points at NEW. The maintenance page stops requests; a worker the
    /// platform did not stop would still write.
    async fn old_took_no_writes(&self, ctx: &Ctx, io: &mut StepIo) -> Result<(), StepFailure> {
        let (Some(old), Some(before)) = (&ctx.old, ctx.old_writes) else {
            return Ok(());
        };
        let now = tri!(io, self.db.write_count(old).await);
        let since = if ctx.logical {
            "NEW caught up behind the page"
        } else {
            "the backup's snapshot"
        };
        if now != before {
            return Err(fail(
                io,
                format!(
                    "OLD {} took {} writes after {since} (rows inserted, updated or deleted: {before} → {now}): a process of the app still writes to it, and NEW would miss them",
                    old.database,
                    now - before
                ),
            ));
        }
        io.say(format!(
            "OLD {} took no write since {since} ({now} rows written in all, per its statistics)",
            old.database
        ));
        Ok(())
    }
}
