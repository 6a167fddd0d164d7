//! Rolling back: the app goes back to OLD and is unpaused; NEW is kept for inspection. If NEW
//! has taken writes since it was verified, switching back would lose them: the app then stays
//! on NEW, unpaused, and the failure waits for a human.

use crate::domain::StepState;
use color_eyre::eyre::Result;

use super::databases::Databases;
use super::events::Event;
use super::io::StepIo;
use super::{Ctx, Engine};
use crate::inventory::App;
use crate::platform::Platform;
use crate::postgres::verify;
use crate::store::StepRow;

impl<P: Platform, D: Databases> Engine<P, D> {
    /// `Some(())` when the app is back on OLD, `None` when it had to stay on NEW.
    pub(super) async fn roll_back(
        &self,
        run_id: i64,
        app: &App,
        failed: &StepRow,
        ctx: &mut Ctx,
    ) -> Result<Option<()>> {
        let existing = self.store.steps(run_id, &app.name).await?;
        if let Some(done) = existing
            .iter()
            .find(|r| r.operation == "rollback" && r.state == crate::domain::StepState::Done)
        {
            *ctx = Ctx::from_snapshot(done.detail.as_deref());
            return Ok(Some(()));
        }
        let step_id = match existing.iter().find(|r| r.operation == "rollback") {
            Some(r) => r.id,
            None => {
                self.journal
                    .append_step(run_id, &app.name, "rollback", "{\"kind\":\"rollback\"}")
                    .await?
            }
        };
        self.journal.step_started_in_order(step_id).await?;
        let mut io = StepIo::new(
            run_id,
            step_id,
            &app.name,
            "rollback",
            self.events.clone(),
            self.journal.clone(),
            self.scrubber_for(ctx),
        );
        if failed.operation == "requested" {
            io.say("rolling back on the operator's request");
        } else if self.cancel.is_cancelled() {
            io.say(format!(
                "rolling back: cancelled during {}",
                failed.operation
            ));
        } else {
            io.say(format!("rolling back after {} failed", failed.operation));
        }
        // Logical: the replication goes first, whatever happened (NEW then stops changing).
        if ctx.logical {
            self.drop_replication(app, ctx, &mut io).await;
        }
        let record = self.platform.status(app).await;
        let was_paused = record.as_ref().map_or(true, |r| r.paused);
        // Switching back, with the app behind its page while NEW is compared (no write may
        // slip in between the check and the switch). An error here must not skip the unpause
        // below: it is reported after the app is serving again.
        let switched: Result<bool> = async {
            let record = record?;
            let on_new = ctx.new.as_ref().is_some_and(|n| *n == record.service);
            if !on_new {
                return Ok(true);
            }
            if !record.paused {
                self.platform.pause(app, &mut io).await?;
                io.say(format!("{} is behind its maintenance page while NEW is checked", app.name));
            }
            let diverged = match (&ctx.fingerprint, &ctx.new, ctx.new_writes) {
                (Some(fp), Some(new), _) => {
                    let now = self.db.fingerprint(new, fp.row_hash, Default::default()).await?;
                    verify::differences(fp, &now)
                }
                // Logical: NEW's write counters since enable.
                (None, Some(new), Some(then)) => {
                    let now = self.db.write_count(new).await?;
                    if now == then {
                        Vec::new()
                    } else {
                        vec![format!("{} rows written on NEW since enable ({then} → {now})", now - then)]
                    }
                }
                _ => Vec::new(),
            };
            if !diverged.is_empty() {
                for d in &diverged {
                    io.say(format!("NEW changed since it was verified: {d}"));
                }
                io.say("not switching back: OLD would lose those writes; the app stays on NEW for a human to decide");
                return Ok(false);
            }
            if let Some(old) = &ctx.old {
                self.platform.set_service(app, old, &mut io).await?;
                io.say(format!("DATABASE_URL of {} points at OLD {} again", app.name, old.id));
                // The app ran (or tried to run) on NEW: bring it up on OLD, still behind its
                // page.
                if let Err(e) = self.platform.redeploy(app, &mut io).await {
                    io.say(format!(
                        "warning: the redeploy onto OLD failed too ({e:#}); unpausing starts it again"
                    ));
                }
            }
            ctx.enabled = false;
            Ok(true)
        }
        .await;
        let back_on_old = *switched.as_ref().unwrap_or(&false);
        if let Err(e) = &switched {
            io.say(format!("error while rolling back: {e:#}"));
        }
        let still_paused = match self.platform.status(app).await {
            Ok(r) => r.paused,
            Err(_) => true,
        };
        if was_paused || ctx.paused || still_paused {
            if let Err(e) = self.platform.unpause(app, &mut io).await {
                io.say(format!(
                    "error: {} could not be brought back from its maintenance page: {e:#}",
                    app.name
                ));
                return Err(e.wrap_err(format!(
                    "{} is still behind its maintenance page after the rollback",
                    app.name
                )));
            }
            io.say(format!(
                "{} is serving again (maintenance page off)",
                app.name
            ));
        }
        ctx.paused = false;
        self.journal.set_paused(&app.name, false).await?;
        if let (Some(new), true) = (&ctx.new, back_on_old) {
            io.say(format!(
                "NEW {} ({} on server {}) is kept for inspection",
                new.id, new.database, new.server
            ));
        }
        self.journal
            .step_finished(
                step_id,
                if back_on_old {
                    StepState::Done
                } else {
                    StepState::Failed
                },
                Some(&ctx.snapshot()),
            )
            .await?;
        let service = if back_on_old {
            ctx.old.as_ref()
        } else {
            ctx.new.as_ref()
        };
        let _ = self.events.send(Event::RolledBack {
            app: app.name.clone(),
            service: service.map(|s| s.id.clone()).unwrap_or_default(),
            detail: if back_on_old {
                "back on OLD, unpaused".into()
            } else {
                "left on NEW (it took writes), unpaused".into()
            },
        });
        switched?;
        Ok(back_on_old.then_some(()))
    }
}
