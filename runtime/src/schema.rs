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
}
