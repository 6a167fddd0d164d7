//! The real binary in a real terminal (tmux): opens on the lab fleet grouped by region,
//! filters, shows help, quits cleanly; migrates one app by hand and watches its log; triages
//! forum-live's btree failure with the matched span highlighted, retries it, sees it migrated.

#[path = "support/lab.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(name: &str, cmd: &str, w: u16, h: u16) -> Self {
        let socket = format!("pgshift-e2e-{name}-{}", std::process::id());
        let st = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "new-session",
                "-d",
                "-s",
                "e2e",
                "-x",
                &w.to_string(),
                "-y",
                &h.to_string(),
                cmd,
            ])
            .status()
            .expect("tmux (scripts/install-deps installs it)");
        assert!(st.success(), "tmux new-session");
        Self { socket }
    }

    fn screen(&self) -> String {
        self.capture(false)
    }

    /// The screen; with `escapes`, with its colours and attributes as escape sequences.
    fn capture(&self, escapes: bool) -> String {
        let mut args = vec!["-L", &self.socket, "capture-pane", "-p", "-t", "e2e"];
        if escapes {
            args.push("-e");
        }
        let out = Command::new("tmux")
            .args(args)
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn keys(&self, keys: &[&str]) {
        let st = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "e2e"])
            .args(keys)
            .status()
            .expect("send-keys");
        assert!(st.success());
    }

    /// Wait until the screen satisfies `ok`, or fail showing the last screen.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        self.wait_up_to(15, what, ok)
    }

    /// A real migration on a busy machine: more time.
    fn wait_up_to(&self, secs: u64, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["-L", &self.socket, "has-session", "-t", "e2e"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

#[test]
fn console_opens_on_the_lab_fleet_filters_and_quits() {
    let lab = support::lab();
    let cmd = format!(
        "env PGSHIFT_STATE_DIR={} PGSHIFT_LAB_PORT13={} PGSHIFT_LAB_PORT15={} PGSHIFT_LAB_ROUTER_PORT={} XDG_CONFIG_HOME={} {}",
        lab.state.display(),
        support::PORT13,
        support::PORT15,
        support::router_port(support::PORT13),
        lab.state.join("no-config").display(),
        support::bin()
    );
    let t = Tmux::start("fleet", &cmd, 120, 40);
    let s = t.wait_for("the fleet grouped by region", |s| {
        s.contains("▾ ch-zrh") && s.contains("▾ ch-gva") && s.contains("▾ de-fra")
    });
    assert!(s.contains("33 apps · 28 candidates"), "{s}");
    assert!(s.contains("ledger-live") && s.contains("9.6 ⚠"), "{s}");

    t.keys(&["/", "clinic", "Enter"]);
    // "cl" alone already shows 2 apps: wait for the whole filter, applied (no input cursor).
    let s = t.wait_for("the applied filter", |s| {
        s.contains("filter: clinic · 2 shown")
    });
    assert!(
        s.contains("clinic-live") && s.contains("clinic-stage"),
        "{s}"
    );
    assert!(!s.contains("shop-live"), "{s}");
    assert!(
        s.contains("image libpq 9.6 cannot do SCRAM"),
        "hint for the selected app: {s}"
    );

    // One key at a time after esc: a terminal can't tell esc-then-? from alt-?.
    t.keys(&["Escape"]);
    t.wait_for("the filter cleared", |s| s.contains("33 shown"));
    t.keys(&["?"]);
    t.wait_for("help", |s| s.contains("Keys · Fleet — esc closes"));
    t.keys(&["Escape"]);
    t.wait_for("help closed", |s| !s.contains("esc closes"));
    t.keys(&["Tab"]);
    let s = t.wait_for("one region", |s| s.contains("Apps · ch-zrh · 11 shown"));
    assert!(!s.contains("clinic-live"), "{s}");

    t.keys(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while t.alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!t.alive(), "q quits the console");
}

/// The number in `Log · APP · N lines`, if the log pane shows one.
fn log_lines(s: &str) -> Option<usize> {
    let rest = &s[s.find("Log · ")?..];
    let head = &rest[..rest.find(" lines")?];
    head.rsplit(' ').next()?.parse().ok()
}

#[test]
fn console_migrates_an_app_by_hand_then_triages_and_retries_the_btree_failure() {
    let lab = support::console_lab();
    for app in ["wiki-stage", "forum-live"] {
        let out = lab
            .cmd()
            .args(["lab", "reset", "--app", app])
            .output()
            .expect("lab reset --app");
        support::check(&out, &format!("lab reset --app {app}"));
    }
    // A store of its own: no state from earlier runs, nothing shared with other tests.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("sqlite://{}", dir.path().join("console.db").display());
    let cmd = format!(
        "env PGSHIFT_STATE_DIR={} PGSHIFT_LAB_PORT13={} PGSHIFT_LAB_PORT15={} PGSHIFT_LAB_ROUTER_PORT={} XDG_CONFIG_HOME={} PGSHIFT_STORE={store} {}",
        lab.state.display(),
        lab.ports.0,
        lab.ports.1,
        support::router_port(lab.ports.0),
        lab.state.join("no-config").display(),
        support::bin()
    );
    let t = Tmux::start("migrate", &cmd, 120, 40);
    t.wait_for("the fleet", |s| s.contains("▾ ch-zrh"));

    // One app by hand: filter to it, migrate, confirm, watch.
    t.keys(&["/", "wiki-stage", "Enter"]);
    t.wait_for("the filter", |s| s.contains("filter: wiki-stage · 1 shown"));
    t.keys(&["m"]);
    let s = t.wait_for("the confirmation", |s| {
        s.contains("Migrate wiki-stage now?")
    });
    assert!(s.contains("runs: pgshift migrate --app wiki-stage"), "{s}");
    t.keys(&["y"]);
    // The line counts the pane went through (how many depends on the machine's speed).
    let seen = std::cell::RefCell::new(Vec::<usize>::new());
    let s = t.wait_up_to(90, "wiki-stage migrated", |s| {
        if let Some(n) = log_lines(s) {
            seen.borrow_mut().push(n);
        }
        s.contains("✓ wiki-stage: migrated")
            && s.contains("Steps 12/12")
            && s.contains("postgres 13 → 15")
    });
    let seen = seen.into_inner();
    assert!(s.contains("[App wiki-stage]"), "{s}");
    assert!(
        s.contains("wiki-stage answers its health check") || s.contains("schedule_deprovision "),
        "the log reached the steps after the redeploy: {s}"
    );
    assert!(
        log_lines(&s).is_some_and(|n| n > 20),
        "the step log streamed into the pane: {s}"
    );
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "the log only grows while it runs: {seen:?}"
    );

    // forum-live: migrate from the palette, it fails, triage shows the matched span.
    t.keys(&["Escape"]);
    t.wait_for("back on the fleet", |s| s.contains("[1·Fleet]"));
    t.keys(&[":"]);
    t.wait_for("the palette", |s| s.contains(" Commands "));
    t.keys(&["migrate forum-live", "Enter"]);
    t.wait_for("the confirmation", |s| {
        s.contains("Migrate forum-live now?")
    });
    t.keys(&["y"]);
    t.wait_up_to(90, "forum-live failed", |s| {
        s.contains("✗ forum-live: failed")
    });
    t.keys(&["4"]);
    // Everything in one predicate: a capture can catch the console halfway through a redraw.
    t.wait_for("triage", |s| {
        s.contains("✗ btree-index-row-size · 1")
            && s.contains("▶ pg_restore: error")
            && s.contains("exceeds btree version 4 maximum 2704")
            && s.contains("› pglz-restore")
    });
    // The span is drawn in its own style: an attribute change right where the match begins.
    let raw = t.capture(true);
    let at = raw
        .find("index row size 3696")
        .expect("the matched text on screen");
    let before = &raw[..at];
    assert!(
        before.ends_with('m') && before.rfind('\u{1b}').is_some_and(|e| at - e < 40),
        "an escape sequence starts the highlighted span: {:?}",
        &raw[at.saturating_sub(60)..at + 20]
    );

    t.keys(&["r"]);
    let s = t.wait_for("the retry confirmation", |s| {
        s.contains("Retry forum-live with remediation pglz-restore?")
    });
    assert!(s.contains("--remediation pglz-restore"), "{s}");
    t.keys(&["y"]);
    let s = t.wait_up_to(90, "forum-live migrated", |s| {
        s.contains("✓ forum-live: migrated")
            && s.contains("Steps 12/12")
            && s.contains("postgres 13 → 15")
    });
    assert!(
        s.contains("run #3"),
        "a fresh run, after the failed #2: {s}"
    );
    t.keys(&["4"]);
    t.wait_for("no open failures", |s| s.contains("no open failures"));

    t.keys(&["C-c"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while t.alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!t.alive(), "ctrl-c quits the console");
}

#[test]
fn readonly_console_refuses_a_migration_on_screen() {
    let lab = support::lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("sqlite://{}", dir.path().join("readonly.db").display());
    let cmd = format!(
        "env NO_COLOR=1 PGSHIFT_STATE_DIR={} PGSHIFT_LAB_PORT13={} PGSHIFT_LAB_PORT15={} PGSHIFT_LAB_ROUTER_PORT={} XDG_CONFIG_HOME={} PGSHIFT_STORE={store} {} --readonly",
        lab.state.display(),
        support::PORT13,
        support::PORT15,
        support::router_port(support::PORT13),
        lab.state.join("no-config").display(),
        support::bin()
    );
    let t = Tmux::start("readonly", &cmd, 80, 24);
    t.wait_for("the fleet", |s| {
        s.contains("READ-ONLY") && s.contains("▾ ch-zrh")
    });
    t.keys(&["m"]);
    let s = t.wait_for("the refusal", |s| s.contains("read-only: refused"));
    assert!(s.contains("migrate shop-live now"), "{s}");
    assert!(!s.contains("Confirm"), "no confirmation is offered: {s}");
    t.keys(&["C-c"]);
}
