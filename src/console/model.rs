//! Everything the console shows, as plain data. Views are functions of this.

use std::collections::HashMap;

use crate::domain::{AppState as AppStateKind, FleetState, StepState};
use crate::inventory::{Client, Environment, Inventory};
use crate::store::AppState;

use super::data::{AppWatch, FailureItem, FailureLog, Night};
use super::effect::{Command, Effect};

/// Who gets the keys: a view, or the popup or input line on top of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Fleet,
    App,
    Failures,
    Run,
    Plan,
    Report,
    Filter,
    Help,
    Confirm,
    Palette,
    Search,
}

/// The screen under any popup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Fleet,
    /// One app: its steps and live log.
    App,
    Failures,
    Run,
    Plan,
    Report,
}

impl View {
    pub fn mode(self) -> Mode {
        match self {
            View::Fleet => Mode::Fleet,
            View::App => Mode::App,
            View::Failures => Mode::Failures,
            View::Run => Mode::Run,
            View::Plan => Mode::Plan,
            View::Report => Mode::Report,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            View::Fleet => "Fleet",
            View::App => "App",
            View::Failures => "Failures",
            View::Run => "Run",
            View::Plan => "Plan",
            View::Report => "Report",
        }
    }
}

/// How the fleet table orders apps inside each region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Inventory order.
    #[default]
    Inventory,
    Name,
    /// Failed first, then running, pending, migrated, not candidates.
    State,
    /// Clients that cannot do SCRAM (libpq < 10, node-postgres < 7.9, …) first.
    Risk,
}

impl Sort {
    pub fn next(self) -> Self {
        match self {
            Sort::Inventory => Sort::Name,
            Sort::Name => Sort::State,
            Sort::State => Sort::Risk,
            Sort::Risk => Sort::Inventory,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Sort::Inventory => "inventory",
            Sort::Name => "name",
            Sort::State => "state",
            Sort::Risk => "risk",
        }
    }
}

fn state_rank(s: FleetState) -> u8 {
    match s {
        FleetState::App(AppStateKind::Failed) => 0,
        FleetState::App(AppStateKind::Running) => 1,
        FleetState::App(AppStateKind::RolledBack) => 2,
        FleetState::App(AppStateKind::Pending) => 3,
        FleetState::App(AppStateKind::Migrated) => 4,
        _ => 5,
    }
}

/// A one-line message in the status bar: what just happened, or what was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub text: String,
    pub error: bool,
}

/// One app as the fleet table shows it.
#[derive(Debug, Clone)]
pub struct FleetRow {
    pub name: String,
    pub region: String,
    /// Index of `region` in the inventory's regions (the table's group order).
    pub region_idx: usize,
    pub environment: Environment,
    pub customer: String,
    pub libpq: Client,
    pub candidate: bool,
    /// `13`, `15`, `13 unprov.`, `—`, `13 → 15` once migrated: the app's PostgreSQL in brief.
    pub postgres: String,
    /// The services as the inventory lists them (before any migration).
    pub inventory_postgres: String,
    /// Store state (`pending`, `migrated`, …), or not a candidate.
    pub state: FleetState,
    pub paused: bool,
    /// OLD's size: measured on the lab's servers when the console opens, else the
    /// inventory's hint (`size_mb`).
    pub size_bytes: Option<u64>,
}

impl FleetRow {
    /// A client older than its family's first SCRAM release cannot authenticate against a
    /// SCRAM-hashed role.
    pub fn scram_risk(&self) -> bool {
        self.candidate && !self.libpq.supports_scram()
    }
}

/// Per-region counts for the region list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionCount {
    pub name: String,
    pub apps: usize,
    pub candidates: usize,
    pub migrated: usize,
    pub failed: usize,
    pub running: usize,
}

pub struct Model {
    pub rows: Vec<FleetRow>,
    /// Row index by app name: views look apps up by name thousands of times a frame.
    row_index: HashMap<String, usize>,
    pub regions: Vec<String>,
    /// 0: all regions; i: `regions[i - 1]`.
    pub region: usize,
    /// Index into `visible()`.
    pub selected: usize,
    pub filter: String,
    pub sort: Sort,
    /// Preflight's predicted failure classes by app, once run (`P`).
    pub risks: Option<HashMap<String, Vec<String>>>,
    /// Apps marked with `space` for one migrate.
    pub marked: std::collections::BTreeSet<String>,
    pub mode: Mode,
    pub readonly: bool,
    /// Where the inventory came from and where the store is, for the title bar.
    pub source: String,
    pub store: String,
    pub quit: bool,
    pub view: View,
    /// Views to return to with `q`/`esc`.
    pub back_stack: Vec<View>,
    /// Work `update` asked for; the loop drains it.
    pub effects: Vec<Effect>,
    pub message: Option<Message>,
    /// The command awaiting `y`.
    pub confirm: Option<Command>,
    pub palette: String,
    /// Commands running as children, for the title bar.
    pub running_children: Vec<Command>,
    pub watch: Option<AppWatch>,
    pub failures: Vec<FailureItem>,
    /// Index into `failures` (grouped order).
    pub failure_sel: usize,
    /// Index into the selected failure's retry remediations.
    pub remediation_sel: usize,
    pub failure_log: Option<FailureLog>,
    pub night: Night,
    /// Selected lane (Run) or batch (Plan).
    pub night_sel: usize,
    /// The chosen app inside the selected batch (Plan).
    pub plan_app: usize,
    /// The plan on screen has edits not saved to the store yet.
    pub plan_edited: bool,
    /// Lines a log page moves (the pane height, as last drawn is unknown to `update`).
    pub page: usize,
}

impl Model {
    pub fn new(
        inv: &Inventory,
        states: &HashMap<String, AppState>,
        source: String,
        store: String,
    ) -> Self {
        let rows: Vec<FleetRow> = inv
            .apps
            .iter()
            .map(|a| {
                let candidate = a.is_candidate();
                let mut pg: Vec<String> = a
                    .services
                    .iter()
                    .filter_map(|s| match s.kind {
                        crate::inventory::ServiceKind::Postgres { major } if s.provisioned => {
                            Some(major.to_string())
                        }
                        crate::inventory::ServiceKind::Postgres { major } => {
                            Some(format!("{major} unprov."))
                        }
                        crate::inventory::ServiceKind::Other => None,
                    })
                    .collect();
                if pg.is_empty() {
                    pg.push("—".into());
                }
                let st = states.get(&a.name);
                let state = row_state(candidate, st);
                let inventory_postgres = pg.join(", ");
                FleetRow {
                    name: a.name.clone(),
                    region: a.region.clone(),
                    region_idx: inv
                        .regions
                        .iter()
                        .position(|g| g.name == a.region)
                        .unwrap_or(usize::MAX - 1),
                    environment: a.environment,
                    customer: a.customer.clone(),
                    libpq: a.client,
                    candidate,
                    postgres: postgres_label(&inventory_postgres, state),
                    inventory_postgres,
                    state,
                    paused: st.is_some_and(|s| s.paused),
                    size_bytes: a
                        .services
                        .iter()
                        .filter(|s| s.provisioned)
                        .find_map(|s| s.size_mb)
                        .map(|mb| (mb * 1e6) as u64),
                }
            })
            .collect();
        Self {
            row_index: rows
                .iter()
                .enumerate()
                .map(|(i, r)| (r.name.clone(), i))
                .collect(),
            rows,
            regions: inv.regions.iter().map(|r| r.name.clone()).collect(),
            region: 0,
            selected: 0,
            filter: String::new(),
            sort: Sort::Inventory,
            marked: Default::default(),
            risks: None,
            mode: Mode::Fleet,
            readonly: false,
            source,
            store,
            quit: false,
            view: View::Fleet,
            back_stack: Vec::new(),
            effects: Vec::new(),
            message: None,
            confirm: None,
            palette: String::new(),
            running_children: Vec::new(),
            watch: None,
            failures: Vec::new(),
            failure_sel: 0,
            remediation_sel: 0,
            failure_log: None,
            night: Night::default(),
            night_sel: 0,
            plan_app: 0,
            plan_edited: false,
            page: 20,
        }
    }

    /// Say something in the status bar.
    pub fn say(&mut self, text: impl Into<String>, error: bool) {
        self.message = Some(Message {
            text: text.into(),
            error,
        });
    }

    /// Anything running that the operator is watching (polled faster then).
    pub fn busy(&self) -> bool {
        !self.running_children.is_empty()
            || self.rows.iter().any(|r| r.state == AppStateKind::Running)
            || self
                .watch
                .as_ref()
                .is_some_and(|w| w.steps.iter().any(|s| s.state == StepState::Running))
    }

    /// Failures ordered as triage groups them: by class, then app.
    pub fn failure_order(&self) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.failures.len()).collect();
        idx.sort_by(|&a, &b| {
            let (x, y) = (&self.failures[a], &self.failures[b]);
            (&x.class, &x.app, x.id).cmp(&(&y.class, &y.app, y.id))
        });
        idx
    }

    pub fn selected_failure(&self) -> Option<&FailureItem> {
        self.failure_order()
            .get(self.failure_sel)
            .map(|&i| &self.failures[i])
    }

    pub fn row(&self, app: &str) -> Option<&FleetRow> {
        self.row_index.get(app).and_then(|&i| self.rows.get(i))
    }

    /// Sizes measured on the servers (app → bytes), over the inventory's hints.
    pub fn set_sizes(&mut self, sizes: &HashMap<String, u64>) {
        for r in &mut self.rows {
            if let Some(b) = sizes.get(&r.name) {
                r.size_bytes = Some(*b);
            }
        }
    }

    pub fn region_name(&self) -> Option<&str> {
        self.region
            .checked_sub(1)
            .and_then(|i| self.regions.get(i))
            .map(String::as_str)
    }

    /// Rows in the selected region matching the filter, grouped by region in inventory order.
    pub fn visible(&self) -> Vec<&FleetRow> {
        let needle = self.filter.to_lowercase();
        let region = self.region_name();
        let mut out: Vec<&FleetRow> = self
            .rows
            .iter()
            .filter(|r| region.is_none_or(|g| r.region == g))
            .filter(|r| {
                needle.is_empty()
                    || [
                        r.name.as_str(),
                        r.customer.as_str(),
                        r.region.as_str(),
                        r.state.as_str(),
                    ]
                    .iter()
                    .any(|f| f.to_lowercase().contains(&needle))
                    || r.environment.to_string() == needle
            })
            .collect();
        // Stable: inventory order within a region unless sorted otherwise.
        match self.sort {
            Sort::Inventory => out.sort_by_key(|r| r.region_idx),
            Sort::Name => out.sort_by(|a, b| (a.region_idx, &a.name).cmp(&(b.region_idx, &b.name))),
            Sort::State => out.sort_by_key(|r| (r.region_idx, state_rank(r.state))),
            Sort::Risk => out.sort_by_key(|r| (r.region_idx, !r.scram_risk())),
        }
        out
    }

    pub fn selected_row(&self) -> Option<&FleetRow> {
        self.visible().get(self.selected).copied()
    }

    /// `[all regions, regions…]`, in one pass over the rows.
    pub fn region_counts(&self) -> Vec<RegionCount> {
        let zero = |name: &str| RegionCount {
            name: name.to_string(),
            apps: 0,
            candidates: 0,
            migrated: 0,
            failed: 0,
            running: 0,
        };
        let mut out = vec![zero("all regions")];
        out.extend(self.regions.iter().map(|g| zero(g)));
        for r in &self.rows {
            for k in [0, r.region_idx + 1] {
                if let Some(c) = out.get_mut(k) {
                    c.apps += 1;
                    c.candidates += usize::from(r.candidate);
                    c.migrated += usize::from(r.state == AppStateKind::Migrated);
                    c.failed += usize::from(r.state == AppStateKind::Failed);
                    c.running += usize::from(r.state == AppStateKind::Running);
                }
            }
        }
        out
    }

    pub fn apply_states(&mut self, states: &HashMap<String, AppState>) -> bool {
        let mut changed = false;
        for r in &mut self.rows {
            let st = states.get(&r.name);
            let new_state = row_state(r.candidate, st);
            let paused = st.is_some_and(|s| s.paused);
            if new_state != r.state || paused != r.paused {
                r.postgres = postgres_label(&r.inventory_postgres, new_state);
                r.state = new_state;
                r.paused = paused;
                changed = true;
            }
        }
        changed
    }
}

fn postgres_label(inventory: &str, state: FleetState) -> String {
    if state == AppStateKind::Migrated {
        format!("{inventory} → 15")
    } else {
        inventory.to_string()
    }
}

fn row_state(candidate: bool, st: Option<&AppState>) -> FleetState {
    FleetState::of(candidate, st.map(|s| s.state))
}
