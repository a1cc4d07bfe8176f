//! A readable description of what decides a domain's stored format, kept in the store so that opening it with
//! an incompatible model names what changed (not only that the fingerprints differ).

use crate::meta::{DomainMeta, FieldMeta, TypeMeta};

/// Changes listed in an error before the rest are counted.
pub const CHANGES_SHOWN_MAX: usize = 10;

/// One line per stored thing: each aggregate's key, state fields, events and rejection codes, and each view's
/// key and columns, in model order.
pub fn describe(meta: &DomainMeta) -> Vec<String> {
    let mut lines = Vec::new();
    for aggregate in meta.aggregates {
        lines.push(format!("aggregate {} key {}", aggregate.name, type_text(aggregate.key)));
        lines.push(format!("aggregate {} state {}", aggregate.name, fields_text(aggregate.state)));
        for event in aggregate.events {
            lines.push(format!("event {}/{} {}", aggregate.name, event.name, fields_text(event.fields)));
        }
        let codes: Vec<&str> = aggregate.rejections.iter().map(|r| r.code).collect();
        lines.push(format!("aggregate {} rejections {}", aggregate.name, codes.join(" ")));
    }
    for view in meta.views {
        let columns: Vec<String> =
            view.columns.iter().map(|c| format!("{}: {} {}", c.name, c.reducer, type_text(c.ty))).collect();
        lines.push(format!("view {} key {} ({})", view.name, type_text(view.key), columns.join(", ")));
    }
    lines
}

fn fields_text(fields: &[FieldMeta]) -> String {
    let fields: Vec<String> = fields.iter().map(|f| format!("{}: {}", f.name, type_text(f.ty))).collect();
    format!("({})", fields.join(", "))
}

fn type_text(ty: &TypeMeta) -> String {
    match ty {
        TypeMeta::Bool => "bool".into(),
        TypeMeta::Int { name, .. } => (*name).into(),
        TypeMeta::Decimal { scale } => format!("(decimal {scale})"),
        TypeMeta::String => "string".into(),
        TypeMeta::Timestamp => "timestamp".into(),
        TypeMeta::Id { name, repr } => format!("{name} = {}", type_text(repr)),
        TypeMeta::Enum { name, variants } => {
            let names: Vec<&str> = variants.iter().map(|v| v.name).collect();
            format!("{name} = (enum {})", names.join(" "))
        }
        TypeMeta::Record { name, fields } => format!("{name} = (record {})", fields_text(fields)),
        TypeMeta::Optional(inner) => format!("(optional {})", type_text(inner)),
        TypeMeta::Map(key, value) => format!("(map {} {})", type_text(key), type_text(value)),
        TypeMeta::List(inner) => format!("(list {})", type_text(inner)),
        TypeMeta::Set(inner) => format!("(set {})", type_text(inner)),
    }
}

/// What differs between a stored description and the current one: lines removed, then lines added, at most
/// [`CHANGES_SHOWN_MAX`] of them and a count of the rest.
pub fn changes(stored: &[String], current: &[String]) -> Vec<String> {
    let removed = stored.iter().filter(|line| !current.contains(line)).map(|line| format!("was: {line}"));
    let added = current.iter().filter(|line| !stored.contains(line)).map(|line| format!("now: {line}"));
    let all: Vec<String> = removed.chain(added).collect();
    let mut shown: Vec<String> = all.iter().take(CHANGES_SHOWN_MAX).cloned().collect();
    if all.len() > CHANGES_SHOWN_MAX {
        shown.push(format!("and {} more", all.len() - CHANGES_SHOWN_MAX));
    }
    shown
}

/// One event as a description line names it: aggregate, event name, fields text, and its position among the
/// aggregate's events (which decides its stored bytes: events are stored as the aggregate's event enum).
#[derive(Clone, Debug, PartialEq, Eq)]
struct EventLine<'a> {
    aggregate: &'a str,
    name: &'a str,
    fields: &'a str,
    position: usize,
}

/// The parts of a description the upcasting plan needs.
#[derive(Default)]
struct Parsed<'a> {
    /// Aggregate name and key text, in model order (the order decides each aggregate's stored tag).
    aggregates: Vec<(&'a str, &'a str)>,
    events: Vec<EventLine<'a>>,
    rejections: Vec<(&'a str, &'a str)>,
}

fn parse(lines: &[String]) -> Parsed<'_> {
    let mut parsed = Parsed::default();
    for line in lines {
        if let Some(rest) = line.strip_prefix("event ") {
            let (path, fields) = rest.split_once(' ').unwrap_or((rest, ""));
            let (aggregate, name) = path.split_once('/').unwrap_or(("", path));
            let position = parsed.events.iter().filter(|e| e.aggregate == aggregate).count();
            parsed.events.push(EventLine { aggregate, name, fields, position });
        } else if let Some(rest) = line.strip_prefix("aggregate ") {
            let (name, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Some(key) = rest.strip_prefix("key ") {
                parsed.aggregates.push((name, key));
            } else if let Some(codes) = rest.strip_prefix("rejections") {
                parsed.rejections.extend(codes.split_whitespace().map(|code| (name, code)));
            }
        }
    }
    parsed
}

/// A stored event an upcaster must rewrite: its aggregate, name and fields as the store describes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpcastNeed {
    pub aggregate: String,
    pub event: String,
    pub fields: String,
}

/// Decides how a store described by `stored` can be brought to the `current` description: the stored events
/// whose bytes no longer decode (their event, fields or position changed) each need one of the `declared`
/// upcasters (aggregate, stored event name, stored fields text); states and views are derived, so they are
/// rebuilt. Returns the events to upcast, or every problem: an event no upcaster covers, an aggregate whose
/// key or position changed, a rejection code stored outcomes may name that is gone.
pub fn upcast_plan(
    stored: &[String],
    current: &[String],
    declared: &[(&str, &str, &str)],
) -> Result<Vec<UpcastNeed>, Vec<String>> {
    let (stored, current) = (parse(stored), parse(current));
    let mut problems = Vec::new();
    for (position, (aggregate, key)) in stored.aggregates.iter().enumerate() {
        match current.aggregates.iter().position(|(name, _)| name == aggregate) {
            None => problems.push(format!("aggregate `{aggregate}` was removed; its stored events cannot be read")),
            Some(now) if now != position => problems.push(format!(
                "aggregate `{aggregate}` moved from position {position} to {now}; stored records name it by position"
            )),
            Some(now) if current.aggregates[now].1 != *key => problems.push(format!(
                "aggregate `{aggregate}` key was `{key}`, now `{}`; stored keys cannot be upcast",
                current.aggregates[now].1
            )),
            Some(_) => {}
        }
    }
    for (aggregate, code) in &stored.rejections {
        if !current.rejections.contains(&(aggregate, code)) {
            problems.push(format!(
                "aggregate `{aggregate}` rejection `{code}` was removed; stored command outcomes may name it"
            ));
        }
    }
    let mut needs = Vec::new();
    for event in &stored.events {
        let now = current.events.iter().find(|e| e.aggregate == event.aggregate && e.name == event.name);
        let change = match now {
            Some(now) if now.fields == event.fields && now.position == event.position => continue,
            Some(now) if now.fields != event.fields => format!("now `{}`", now.fields),
            Some(now) => format!("moved from position {} to {}", event.position, now.position),
            None => "removed or renamed".to_owned(),
        };
        if declared.contains(&(event.aggregate, event.name, event.fields)) {
            needs.push(UpcastNeed {
                aggregate: event.aggregate.to_owned(),
                event: event.name.to_owned(),
                fields: event.fields.to_owned(),
            });
        } else {
            problems.push(format!(
                "no upcaster for stored event `{}/{}` `{}` ({change})",
                event.aggregate, event.name, event.fields
            ));
        }
    }
    if problems.is_empty() {
        Ok(needs)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_name_what_was_removed_and_added() {
        let stored = vec!["event a/x (n: u32)".to_owned(), "aggregate a key u64".to_owned()];
        let current = vec!["event a/x (n: u64)".to_owned(), "aggregate a key u64".to_owned()];
        assert_eq!(changes(&stored, &current), vec!["was: event a/x (n: u32)", "now: event a/x (n: u64)"]);
        let many: Vec<String> = (0..30).map(|i| format!("line {i}")).collect();
        let shown = changes(&many, &[]);
        assert_eq!(shown.len(), CHANGES_SHOWN_MAX + 1);
        assert_eq!(shown.last().map(String::as_str), Some("and 20 more"));
    }

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn an_upcast_plan_names_each_uncovered_event() {
        let stored = lines(
            "aggregate a key u64\naggregate a state (n: u32)\nevent a/x (n: u32)\nevent a/y ()\nevent a/z ()\n\
             aggregate a rejections full",
        );
        // `x` changed its field, `y` was renamed `w`, `z` kept its place; a state change needs nothing.
        let current = lines(
            "aggregate a key u64\naggregate a state (n: u64)\nevent a/x (n: u64)\nevent a/w ()\nevent a/z ()\n\
             aggregate a rejections full empty",
        );
        let problems = upcast_plan(&stored, &current, &[("a", "x", "(n: u32)")]).expect_err("y is not covered");
        assert_eq!(problems, vec!["no upcaster for stored event `a/y` `()` (removed or renamed)"]);
        let plan = upcast_plan(&stored, &current, &[("a", "x", "(n: u32)"), ("a", "y", "()")]).expect("covered");
        assert_eq!(plan.iter().map(|n| n.event.as_str()).collect::<Vec<_>>(), ["x", "y"]);
        // An upcaster for other stored fields does not cover the event.
        assert!(upcast_plan(&stored, &current, &[("a", "x", "(n: u16)"), ("a", "y", "()")]).is_err());
        // Inserting an event before `z` changes `z`'s stored bytes (its position in the event enum).
        let moved = lines("aggregate a key u64\nevent a/x (n: u32)\nevent a/y ()\nevent a/new ()\nevent a/z ()");
        let problems = upcast_plan(&stored, &moved, &[]).expect_err("z moved");
        assert!(problems.iter().any(|p| p.contains("`a/z` `()` (moved from position 2 to 3)")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("rejection `full` was removed")), "{problems:?}");
        // Keys and aggregate positions cannot be upcast.
        let rekeyed = lines("aggregate b key u64\naggregate a key string\nevent a/x (n: u32)");
        let problems = upcast_plan(&stored[..1], &rekeyed, &[]).expect_err("a moved");
        assert_eq!(problems, vec!["aggregate `a` moved from position 0 to 1; stored records name it by position"]);
        // An unchanged description needs nothing.
        assert_eq!(upcast_plan(&stored, &stored, &[]), Ok(Vec::new()));
    }
}
