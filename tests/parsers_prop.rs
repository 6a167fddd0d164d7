//! Property test over the three parsers an operator feeds: inventory, config and runbook.
//! Valid files mutated at random (TOML's own punctuation, digits, quotes, long runs, bytes
//! that are not ASCII) never panic a parser, and every refusal names the file and a line
//! that exists. Bounded case counts keep CI fast.

use std::path::Path;

use proptest::prelude::*;

const INVENTORY: &str = pgshift::inventory::LAB_FLEET;
const RUNBOOK: &str = pgshift::runbook::PG13_TO_PG15;
const CONFIG: &str = "log_level = \"debug\"\ntheme = \"default\"\nstore = \"sqlite:///tmp/x.db\"\n\n[lab]\nport13 = 30013\nport15 = 30015\nos_user = \"pgshift\"\n";

/// One edit: at a fraction of the text, delete some bytes and insert a piece.
fn edit() -> impl Strategy<Value = (f64, usize, String)> {
    let piece = prop_oneof![
        Just(String::new()),
        Just("\"".to_string()),
        Just("=".to_string()),
        Just("[".to_string()),
        Just("]]".to_string()),
        Just("{".to_string()),
        Just("\n".to_string()),
        Just("-1".to_string()),
        Just("0".to_string()),
        Just("99999999999999999999".to_string()),
        Just("nan".to_string()),
        Just("é€\u{0}".to_string()),
        Just("x".repeat(300)),
        "[ -~]{0,12}",
    ];
    (0.0..1.0f64, 0usize..8, piece)
}

fn mutate(base: &str, edits: &[(f64, usize, String)]) -> String {
    let mut s = base.to_string();
    for (at, del, piece) in edits {
        let mut i = ((s.len() as f64) * at) as usize;
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        let mut j = (i + del).min(s.len());
        while !s.is_char_boundary(j) {
            j += 1;
        }
        s.replace_range(i..j, piece);
    }
    s
}

/// `name:line:col: message` with a line the text has.
fn names_the_file(msg: &str, name: &str, text: &str) -> Result<(), TestCaseError> {
    let rest = msg
        .strip_prefix(&format!("{name}:"))
        .ok_or_else(|| TestCaseError::fail(format!("{msg:?} does not start with {name}")))?;
    let line: usize = rest
        .split(':')
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| TestCaseError::fail(format!("{msg:?} has no line")))?;
    prop_assert!(line >= 1 && line <= text.lines().count() + 1, "{msg:?}");
    prop_assert!(!msg.contains('\n') || msg.lines().count() <= 2, "{msg:?}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn inventory_parser_never_panics_and_names_the_file(edits in prop::collection::vec(edit(), 1..4)) {
        let text = mutate(INVENTORY, &edits);
        if let Err(e) = pgshift::inventory::parse(&text, "fleet.toml", Path::new(".")) {
            names_the_file(&e.to_string(), "fleet.toml", &text)?;
        }
    }

    #[test]
    fn runbook_parser_never_panics_and_names_the_file(edits in prop::collection::vec(edit(), 1..4)) {
        let text = mutate(RUNBOOK, &edits);
        if let Err(e) = pgshift::runbook::Runbook::parse(&text, "rb.toml") {
            names_the_file(&e.to_string(), "rb.toml", &text)?;
        }
    }

    #[test]
    fn config_parser_never_panics_and_names_the_file(edits in prop::collection::vec(edit(), 1..4)) {
        let text = mutate(CONFIG, &edits);
        if let Err(e) = pgshift::config::Config::parse(&text, "pgshift.toml") {
            names_the_file(&e.to_string(), "pgshift.toml", &text)?;
        }
    }

    #[test]
    fn durations_never_panic(s in "[0-9]{0,25}[smhdwx]?") {
        let _ = pgshift::runbook::parse_duration(&s);
        let _ = pgshift::plan::parse_window(&s);
    }
}
