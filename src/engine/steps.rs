//! What each step does, through the Databases and Platform the engine was given. Every step
//! is safe to run again: resume re-runs the first unfinished one.

use std::path::Path;

use super::databases::{BACKUP_COMPRESSION, Databases, NO_TIMEOUTS, VERIFY_CONNECTIONS};
use super::io::StepIo;
use super::{Ctx, Engine, StepFailure};
use crate::inventory::{App, ServiceKind};
use crate::platform::{Platform, ServiceRef};
use crate::postgres::provision::RuntimeOptions;
use crate::postgres::verify::{self, RowHash};
use crate::runbook::{Step, StepKind};
use crate::store::BackupRecord;
use color_eyre::eyre::WrapErr;

fn fail(io: &mut StepIo, summary: impl Into<String>) -> StepFailure {
    let summary = summary.into();
    io.say(format!("error: {summary}"));
    StepFailure { summary }
}

/// Turn an internal error into a logged step failure (diagnosis reads the line).
macro_rules! tri {
    ($io:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Err(fail($io, format!("{e:#}"))),
        }
    };
}

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
        let compression = match BACKUP_COMPRESSION {
            0 => "no compression".to_string(),
            n => format!("gzip level {n}"),
        };
        io.say(format!(
            "pg_dump of {} on server {} (directory format, 2 jobs, {compression}); OLD fingerprinted meanwhile in the dump's snapshot ({VERIFY_CONNECTIONS} connections)",
            old.database, old.server
        ));
        let outcome = {
            let mut sink = |s: crate::postgres::process::Stream, l: String| io.line(s.id(), &l);
            self.db
                .backup(&old, &dir, snapshot.as_deref(), &self.cancel, &mut sink)
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
        let notes = step.notes.clone().unwrap_or_default();
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
                })
                .await
        );
        io.say(format!(
            "backup kept: {} ({bytes} bytes, sha256 {sha})",
            dir.display()
        ));
        ctx.backup_path = Some(dir.display().to_string());
        ctx.backup_bytes = Some(bytes);
        Ok(())
    }

    async fn restore(&self, ctx: &mut Ctx, io: &mut StepIo) -> Result<(), StepFailure> {
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
        let mut pgoptions = NO_TIMEOUTS.to_string();
        for o in &ctx.restore_options {
            pgoptions.push_str(&format!(" -c {o}"));
        }
        if let (Some(r), false) = (&ctx.remediation, ctx.restore_options.is_empty()) {
            io.say(format!(
                "remediation {r}: restoring with {}",
                ctx.restore_options.join(", ")
            ));
        }
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
        let restored = async {
            let tx = row_hash.map(|_| tx);
            let mut sink = |s: crate::postgres::process::Stream, l: String| {
                if let (Some(tx), Some(t)) = (&tx, verify::loaded_table(&l)) {
                    let _ = tx.send(t.to_string());
                }
                io.line(s.id(), &l)
            };
            self.db
                .restore(&new, Path::new(&path), &pgoptions, &self.cancel, &mut sink)
                .await
        };
        let hashed = async {
            match row_hash {
                Some(h) => tokio::select! {
                    r = self.db.hash_as_loaded(&new, h, rx) => Some(r),
                    _ = self.cancel.cancelled() => None,
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
