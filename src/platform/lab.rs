//! The lab platform: the `exec` adapter pointed at the lab's own hooks (`pgshift lab hook OP
//! APP`), which drive real app processes behind a real router. Nothing here pretends: what
//! the step log shows is what the hooks and the apps printed.

use std::path::Path;

use super::ServiceRef;
use crate::inventory::platform::{CommandSpec, ExecSpec, PlatformOp};
use crate::inventory::{App, ServiceKind};

/// The lab's `[platform]`: this very binary's `lab hook`, on the same state dir.
pub fn hook_spec(exe: &Path, state_dir: &Path) -> ExecSpec {
    let exe = exe.display().to_string();
    let timeout = |op: PlatformOp| match op {
        PlatformOp::Redeploy | PlatformOp::Unpause => std::time::Duration::from_secs(60),
        _ => std::time::Duration::from_secs(30),
    };
    ExecSpec {
        commands: PlatformOp::ALL
            .into_iter()
            .map(|op| {
                let words = vec![
                    exe.clone(),
                    "lab".into(),
                    "hook".into(),
                    op.id().into(),
                    "{app}".into(),
                ];
                (
                    op,
                    CommandSpec {
                        words,
                        timeout: timeout(op),
                    },
                )
            })
            .collect(),
        env: [(
            "PGSHIFT_STATE_DIR".to_string(),
            state_dir.display().to_string(),
        )]
        .into(),
    }
}

/// The app's provisioned PostgreSQL service, as the inventory has it: where the platform
/// starts before any migration.
pub fn initial_service(app: &App) -> Option<ServiceRef> {
    app.services
        .iter()
        .filter(|s| s.provisioned && matches!(s.kind, ServiceKind::Postgres { .. }))
        .find_map(ServiceRef::of)
}
