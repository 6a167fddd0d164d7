//! The logical strategy's steps: the replication set up with the backup, the subscription,
//! catching up while the app serves from OLD, and behind the page the last changes, the
//! sequences and a count of every table before the replication is dropped. Whatever ends a
//! run (failure, cancel, a rollback after kill -9 and resume) drops the subscription, slot,
//! publication and role: a slot left behind would keep OLD's WAL forever.

use std::time::{Duration, Instant};

use super::databases::Databases;
use super::io::StepIo;
use super::steps::{fail, tri};
use super::{Ctx, Engine, StepFailure};
use crate::inventory::{App, Strategy};
use crate::platform::replication::{Replication, Started};
use crate::platform::{Platform, ServiceRef};
use crate::postgres::logical::{Names, fresh_password};

/// Behind the page, how long NEW may take to confirm OLD's last changes.
const SYNC_LIMIT: Duration = Duration::from_secs(30);
/// While catching up: no progress for this long fails the run (before the page goes up).
const STALL_LIMIT: Duration = Duration::from_secs(120);

impl<P: Platform, D: Databases> Engine<P, D> {
    fn replication(&self, io: &mut StepIo) -> Result<Replication, StepFailure> {
        self.db.replication().ok_or_else(|| {
            fail(
                io,
                "the logical strategy needs real servers: these cannot replicate",
            )
        })
    }

    /// The app's OLD service as the inventory names it (before `collect`).
    fn old_service(&self, app: &App) -> Option<ServiceRef> {
        let wanted = self.runbook.collected_services();
        let s = app
            .services
            .iter()
            .find(|s| s.provisioned && wanted.contains(&s.service.as_str()))?;
        Some(ServiceRef {
            id: s.id.clone(),
            service: s.service.clone(),
            server: s.server.clone()?,
            database: s.database.clone()?,
            user: s.user.clone()?,
        })
    }

    /// The strategy this run uses, and the lines that say why (logged by `collect`): the
    /// app's or runbook's choice, unless OLD cannot replicate it — then dump, naming why.
    pub(super) async fn choose_strategy(&self, app: &App) -> (Strategy, String) {
        let (want, why) = self.runbook.strategy_for(app);
        if want == Strategy::Dump {
            return (Strategy::Dump, format!("strategy dump ({why})"));
        }
        let (Some(rep), Some(old)) = (self.db.replication(), self.old_service(app)) else {
            return (
                Strategy::Dump,
                format!("strategy dump, not logical ({why}): these servers cannot replicate"),
            );
        };
        match rep.blockers(&old).await {
            Ok(b) if b.is_empty() => (Strategy::Logical, format!("strategy logical ({why})")),
            Ok(b) => (
                Strategy::Dump,
                format!("strategy dump, not logical ({why}): {}", b.join("; ")),
            ),
            Err(e) => (
                Strategy::Dump,
                format!("strategy dump, not logical ({why}): OLD could not be checked: {e:#}"),
            ),
        }
    }

    /// Before the logical backup: leftovers of an earlier attempt dropped, OLD checked again,
    /// then the publication and the slot whose exported snapshot the dump is taken in.
    pub(super) async fn start_replication(
        &self,
        app: &App,
        ctx: &mut Ctx,
        io: &mut StepIo,
    ) -> Result<Started, StepFailure> {
        let rep = self.replication(io)?;
        let old = tri!(io, ctx.old.clone().ok_or("nothing collected"));
        let names = Names::for_app(&app.name);
        let dropped = tri!(io, rep.drop_all(&old, ctx.new.as_ref(), &names).await);
        if !dropped.is_empty() {
            io.say(format!(
                "dropped what an earlier attempt left: {}",
                dropped.join(", ")
            ));
        }
        let blockers = tri!(io, rep.blockers(&old).await);
        if !blockers.is_empty() {
            return Err(fail(
                io,
                format!(
                    "OLD can no longer use the logical strategy: {}",
                    blockers.join("; ")
                ),
            ));
        }
        let started = tri!(io, rep.start(&old, &names).await);
        io.say(format!(
            "publication {} of {} tables and logical slot {} on OLD (consistent point {}, snapshot {} exported for the dump)",
            names.publication,
            started.tables.len(),
            names.slot,
            started.holder.lsn,
            started.holder.snapshot
        ));
        ctx.replicated_tables = started.tables.clone();
        ctx.schema = Some(started.schema.clone());
        Ok(started)
    }

    /// What subscribe and sync work on: the replication, OLD, NEW and the app's object names.
    fn both_ends(
        &self,
        app: &App,
        ctx: &Ctx,
        io: &mut StepIo,
    ) -> Result<(Replication, ServiceRef, ServiceRef, Names), StepFailure> {
        let rep = self.replication(io)?;
        let old = tri!(io, ctx.old.clone().ok_or("nothing collected"));
        let new = tri!(io, ctx.new.clone().ok_or("no NEW service"));
        Ok((rep, old, new, Names::for_app(&app.name)))
    }

    pub(super) async fn subscribe(
        &self,
        app: &App,
        ctx: &mut Ctx,
        io: &mut StepIo,
    ) -> Result<(), StepFailure> {
        let (rep, old, new, names) = self.both_ends(app, ctx, io)?;
        let password = fresh_password();
        io.secret(password.expose());
        if tri!(io, rep.subscribe(&old, &new, &names, &password).await) {
            io.say(format!(
                "subscription {} on NEW streams from slot {} what OLD committed after the backup's snapshot (login role {} on OLD, a fresh password)",
                names.subscription, names.slot, names.role
            ));
        } else {
            io.say(format!(
                "subscription {} on NEW is there already: it goes on from what it applied",
                names.subscription
            ));
        }
        Ok(())
    }

    /// DDL on OLD since the snapshot is not replicated: stop before the page goes up.
    async fn schema_unchanged(
        &self,
        rep: &Replication,
        old: &ServiceRef,
        ctx: &Ctx,
        io: &mut StepIo,
    ) -> Result<(), StepFailure> {
        let Some(then) = &ctx.schema else {
            return Ok(());
        };
        let now = tri!(io, rep.schema(old).await);
        if &now != then {
            return Err(fail(
                io,
                format!(
                    "OLD's schema changed since the backup's snapshot (DDL, schema hash {then} → {now}): logical replication does not carry DDL; migrate again (dump, or logical once the DDL is done)"
                ),
            ));
        }
        Ok(())
    }

    /// NEW applies what OLD took since the snapshot, the app still serving from OLD: until it
    /// has confirmed everything OLD had written when the step began.
    pub(super) async fn catch_up(
        &self,
        app: &App,
        ctx: &mut Ctx,
        io: &mut StepIo,
    ) -> Result<(), StepFailure> {
        let rep = self.replication(io)?;
        let old = tri!(io, ctx.old.clone().ok_or("nothing collected"));
        let names = Names::for_app(&app.name);
        let started = Instant::now();
        let (first, _) = tri!(io, rep.lag(&old, &names).await);
        io.say(format!(
            "NEW is {:.1} MB of OLD's WAL behind; catching up while {} serves from OLD",
            first as f64 / 1e6,
            app.name
        ));
        let target = tri!(io, rep.current_lsn(&old).await);
        let mut best = first;
        let mut progress = Instant::now();
        let mut said = Instant::now();
        loop {
            if self.cancel.is_cancelled() {
                return Err(fail(io, "cancelled while NEW caught up"));
            }
            self.schema_unchanged(&rep, &old, ctx, io).await?;
            if tri!(io, rep.confirmed(&old, &names, &target).await) {
                break;
            }
            let (lag, active) = tri!(io, rep.lag(&old, &names).await);
            if lag < best {
                best = lag;
                progress = Instant::now();
            }
            if progress.elapsed() > STALL_LIMIT {
                return Err(fail(
                    io,
                    format!(
                        "NEW made no progress applying OLD's changes for {} s ({:.1} MB behind, WAL sender {}): see NEW's server log",
                        STALL_LIMIT.as_secs(),
                        lag as f64 / 1e6,
                        if active { "streaming" } else { "not connected" }
                    ),
                ));
            }
            if said.elapsed() > Duration::from_secs(5) {
                io.say(format!("NEW is {:.1} MB behind", lag as f64 / 1e6));
                said = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        io.say(format!(
            "NEW caught up with OLD as of {target} in {:.1} s; OLD's schema unchanged",
            started.elapsed().as_secs_f64()
        ));
        Ok(())
    }

    /// Behind the page: OLD's writes counted, NEW confirms all of them (lag 0), sequences
    /// copied, row counts compared, then the replication dropped before enable.
    pub(super) async fn sync(
        &self,
        app: &App,
        ctx: &mut Ctx,
        io: &mut StepIo,
    ) -> Result<(), StepFailure> {
        let (rep, old, new, names) = self.both_ends(app, ctx, io)?;
        let started = Instant::now();
        self.schema_unchanged(&rep, &old, ctx, io).await?;
        // The count enable compares with, read while NEW catches up; then everything OLD had
        // written once it was read, confirmed.
        let (writes, first) = tokio::join!(
            self.db.write_count(&old),
            rep.wait_caught_up(&old, &names, SYNC_LIMIT)
        );
        let writes = tri!(io, writes);
        tri!(io, first);
        tri!(io, rep.wait_caught_up(&old, &names, SYNC_LIMIT).await);
        let waited = started.elapsed().as_secs_f64();
        let synced = tri!(io, rep.finish(&old, &new, &ctx.replicated_tables).await);
        for (t, a, b) in &synced.differences {
            io.say(format!(
                "verification failed: table {t} has {a} rows on OLD, {b} on NEW"
            ));
        }
        if !synced.differences.is_empty() {
            return Err(StepFailure {
                summary: format!(
                    "{} table(s) differ in row count between OLD and NEW after catching up",
                    synced.differences.len()
                ),
            });
        }
        io.say(format!(
            "NEW has every change OLD committed ({writes} rows written in all, per its statistics; lag 0 after {waited:.2} s); {} sequences set to OLD's values; {} tables, {} rows, counts equal",
            synced.sequences, synced.tables, synced.rows
        ));
        let dropped = tri!(io, rep.drop_all(&old, Some(&new), &names).await);
        io.say(format!("dropped {}", dropped.join(", ")));
        ctx.old_writes = Some(writes);
        // NEW's fingerprint is of the snapshot; enable records NEW's write count instead.
        ctx.fingerprint = None;
        Ok(())
    }

    /// Every exit before or after enable: drop the subscription, slot, publication and role.
    pub(super) async fn drop_replication(&self, app: &App, ctx: &Ctx, io: &mut StepIo) {
        let (Some(rep), Some(old)) = (self.db.replication(), ctx.old.as_ref()) else {
            return;
        };
        let names = Names::for_app(&app.name);
        match rep.drop_all(old, ctx.new.as_ref(), &names).await {
            Ok(d) if d.is_empty() => io.say("no replication left to drop"),
            Ok(d) => io.say(format!("dropped {}", d.join(", "))),
            Err(e) => io.say(format!("error: {e:#}")),
        }
    }
}
