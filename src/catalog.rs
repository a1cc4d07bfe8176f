//! The domain catalog: a server-rendered page (askama) describing every domain from its metadata, with an
//! SVG diagram of which command emits which event and which process reacts to it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anthill_runtime::meta::{AggregateMeta, DomainMeta, TypeMeta};
use askama::Template;

/// The catalog page of a set of domains.
#[derive(Template)]
#[template(path = "catalog.html")]
pub struct Catalog<'a> {
    pub domains: Vec<DomainView<'a>>,
    /// Whether the page is served live (with the stream browser and the changes feed) or written as a file.
    pub live: bool,
}

/// A domain with what the template shows beyond its metadata.
pub struct DomainView<'a> {
    pub meta: &'a DomainMeta,
    pub diagram: String,
}

impl<'a> Catalog<'a> {
    pub fn new(domains: &[&'a DomainMeta], live: bool) -> Catalog<'a> {
        Catalog { domains: domains.iter().map(|meta| DomainView { meta, diagram: diagram(meta) }).collect(), live }
    }
}

/// A type as the model spells it.
pub fn type_name(ty: &TypeMeta) -> String {
    match ty {
        TypeMeta::Bool => "bool".into(),
        TypeMeta::Int { name, .. } => (*name).into(),
        TypeMeta::Decimal { scale } => format!("(decimal {scale})"),
        TypeMeta::String => "string".into(),
        TypeMeta::Timestamp => "timestamp".into(),
        TypeMeta::Id { name, .. } | TypeMeta::Enum { name, .. } | TypeMeta::Record { name, .. } => (*name).into(),
        TypeMeta::Optional(inner) => format!("(optional {})", type_name(inner)),
        TypeMeta::Map(k, v) => format!("(map {} {})", type_name(k), type_name(v)),
        TypeMeta::List(e) => format!("(list {})", type_name(e)),
        TypeMeta::Set(e) => format!("(set {})", type_name(e)),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const ROW_PX: u32 = 24;
const COLUMN_X: [u32; 3] = [10, 330, 650];
const BOX_WIDTH_PX: u32 = 250;

/// Commands (left) emit events (middle); processes (right) react to events and send commands (dashed arrows
/// back to the left column).
pub fn diagram(domain: &DomainMeta) -> String {
    let mut commands: BTreeMap<(&str, &str), u32> = BTreeMap::new();
    let mut events: BTreeMap<(&str, &str), u32> = BTreeMap::new();
    let mut order_commands = Vec::new();
    let mut order_events = Vec::new();
    for a in domain.aggregates {
        for c in a.commands {
            commands.insert((a.name, c.name), order_commands.len() as u32);
            order_commands.push((a, c.name, c.is_extern));
        }
        for e in a.events {
            events.insert((a.name, e.name), order_events.len() as u32);
            order_events.push((a.name, e.name));
        }
    }
    let rows = order_commands.len().max(order_events.len()).max(domain.processes.len()).max(1) as u32;
    let height = rows * ROW_PX + 20;
    let y = |row: u32| 10 + row * ROW_PX + ROW_PX / 2;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="diagram" viewBox="0 0 920 {height}" width="920" height="{height}" role="img" aria-label="commands, events and processes of {}">"#,
        escape(domain.name)
    );
    svg.push_str(r#"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/></marker></defs>"#);
    let node = |svg: &mut String, column: usize, row: u32, class: &str, label: &str| {
        let (x, top) = (COLUMN_X[column], y(row) - ROW_PX / 2 + 2);
        let _ = write!(
            svg,
            r#"<g class="{class}"><rect x="{x}" y="{top}" width="{BOX_WIDTH_PX}" height="{}" rx="4"/><text x="{}" y="{}">{}</text></g>"#,
            ROW_PX - 4,
            x + 8,
            y(row) + 4,
            escape(label)
        );
    };
    let edge = |svg: &mut String, from: (usize, u32), to: (usize, u32), class: &str| {
        let (x1, y1) = (COLUMN_X[from.0] + BOX_WIDTH_PX, y(from.1));
        let (x2, y2) = (COLUMN_X[to.0], y(to.1));
        if to.0 > from.0 {
            let mid = (x1 + x2) / 2;
            let _ = write!(
                svg,
                r#"<path class="{class}" d="M {x1} {y1} C {mid} {y1}, {mid} {y2}, {x2} {y2}" marker-end="url(#arrow)"/>"#
            );
        } else {
            // Back to an earlier column: leave on the right, come round below the boxes, enter from the left.
            let (left, right) = (COLUMN_X[to.0] - 6, x1 + 40);
            let _ = write!(
                svg,
                r#"<path class="{class}" d="M {x1} {y1} C {right} {y1}, {right} {y2}, {} {y2} S {left} {y2}, {x2} {y2}" marker-end="url(#arrow)"/>"#,
                (COLUMN_X[to.0] + x1) / 2
            );
        }
    };
    for (a, c) in domain.aggregates.iter().flat_map(|a| a.commands.iter().map(move |c| (a, c))) {
        let from = commands[&(a.name, c.name)];
        for e in c.emits {
            if let Some(&to) = events.get(&(a.name, *e)) {
                edge(&mut svg, (0, from), (1, to), "emits");
            }
        }
    }
    for (row, p) in domain.processes.iter().enumerate() {
        for h in p.handlers {
            if let Some(&from) = events.get(&(h.aggregate, h.event)) {
                edge(&mut svg, (1, from), (2, row as u32), "reacts");
            }
            for (a, c) in h.sends {
                if let Some(&to) = commands.get(&(*a, *c)) {
                    edge(&mut svg, (2, row as u32), (0, to), "sends");
                }
            }
        }
    }
    for (row, (a, c, is_extern)) in order_commands.iter().enumerate() {
        let label = if *is_extern { format!("{}.{c} (extern)", a.name) } else { format!("{}.{c}", a.name) };
        node(&mut svg, 0, row as u32, "command", &label);
    }
    for (row, (a, e)) in order_events.iter().enumerate() {
        node(&mut svg, 1, row as u32, "event", &format!("{a}.{e}"));
    }
    for (row, p) in domain.processes.iter().enumerate() {
        node(&mut svg, 2, row as u32, "process", &format!("process {}", p.name));
    }
    svg.push_str("</svg>");
    svg
}

/// Which rejections of the aggregate a command may return, with their messages.
pub fn rejections_of<'a>(
    aggregate: &'a AggregateMeta,
    codes: &'a [&'static str],
) -> impl Iterator<Item = (&'static str, &'static str)> + 'a {
    codes.iter().filter_map(move |code| aggregate.rejection(code).map(|r| (r.code, r.message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_catalog_shows_its_commands_rules_and_diagram() {
        let page = Catalog::new(&[&crate::ledger::META], false).render().expect("the template renders");
        for needle in [
            "<h2 id=\"ledger\">ledger</h2>",
            "send-transfer",
            "non-negative",
            "(relaxed (tolerance overdraft-limit)",
            "not-open",
            "process transfer",
            "account-activity",
            "<svg",
        ] {
            assert!(page.contains(needle), "the page shows {needle}");
        }
        let svg = diagram(&crate::ledger::META);
        assert_eq!(svg.matches("class=\"command\"").count(), 20);
        assert_eq!(svg.matches("class=\"event\"").count(), 22);
        assert!(svg.matches("class=\"sends\"").count() >= 2, "transfer sends receive-transfer and refund-transfer");
    }
}
