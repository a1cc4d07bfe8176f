//! Lowering names to Rust: snake_case and CamelCase spellings that are safe as identifiers, and the check
//! that no two model names collide once spelled the Rust way.

use crate::model::{Domain, Name};
use anthill_dsl::{codes, Diagnostic};
use std::collections::HashMap;

/// Rust keywords (strict, reserved and 2018+) that need `r#` or a suffix.
const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn",
    "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self",
    "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while", "abstract",
    "become", "box", "do", "final", "macro", "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
];

/// Keywords that cannot be raw identifiers.
const NOT_RAW: &[&str] = &["crate", "self", "Self", "super", "_"];

/// `account-id` → `account_id`; keywords become raw (`r#type`) or get a `_` suffix (`self_`).
pub fn snake(name: &str) -> String {
    let s = name.replace('-', "_");
    escape(s)
}

/// `account-id` → `AccountId`; `self` → `Self_`.
pub fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for part in name.split('-') {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    escape(out)
}

/// `account-id` → `ACCOUNT_ID`, for constants.
pub fn screaming(name: &str) -> String {
    name.replace('-', "_").to_ascii_uppercase()
}

fn escape(s: String) -> String {
    if NOT_RAW.contains(&s.as_str()) {
        format!("{s}_")
    } else if RUST_KEYWORDS.contains(&s.as_str()) {
        format!("r#{s}")
    } else {
        s
    }
}

/// Reports names that would be the same Rust identifier in the same namespace.
pub fn check_rust_names(domain: &Domain, diagnostics: &mut Vec<Diagnostic>) {
    let mut namespace = |kind: &str, names: Vec<&Name>, spell: fn(&str) -> String| {
        let mut seen: HashMap<String, &Name> = HashMap::new();
        for name in names {
            let rust = spell(&name.dsl);
            if let Some(first) = seen.get(&rust) {
                if first.dsl != name.dsl {
                    diagnostics.push(
                        Diagnostic::new(
                            codes::RUST_NAME_CLASH,
                            name.span,
                            format!("{kind} `{}` and `{}` are both `{rust}` in Rust", first.dsl, name.dsl),
                        )
                        .label("clashes in generated code")
                        .secondary(first.span, "the other one")
                        .help("rename one of them"),
                    );
                }
            } else {
                seen.insert(rust, name);
            }
        }
    };
    let mut top: Vec<&Name> = domain.types.iter().map(|t| &t.name).collect();
    top.extend(domain.aggregates.iter().map(|a| &a.name));
    namespace("types", top, camel);
    for aggregate in &domain.aggregates {
        namespace("events", aggregate.events.iter().map(|e| &e.name).collect(), camel);
        namespace("commands", aggregate.commands.iter().map(|c| &c.name).collect(), camel);
        namespace("rejections", aggregate.rejections.iter().map(|r| &r.name).collect(), camel);
    }
    for ty in &domain.types {
        if let crate::model::TypeDefKind::Enum { variants } = &ty.kind {
            namespace("variants", variants.iter().map(|v| &v.name).collect(), camel);
        }
    }
    // Names the generated code gives its own items, in the namespaces model names also live in.
    let domain_marker = camel(&domain.name.dsl);
    let mut reserved = |name: &Name, rust: String, taken: &[&str], what: &str| {
        if taken.contains(&rust.as_str()) {
            diagnostics.push(
                Diagnostic::new(
                    codes::RUST_NAME_CLASH,
                    name.span,
                    format!("`{}` is `{rust}` in Rust, which the generated code uses for {what}", name.dsl),
                )
                .label("clashes in generated code")
                .help("rename it"),
            );
        }
    };
    for ty in &domain.types {
        reserved(&ty.name, camel(&ty.name.dsl), &[domain_marker.as_str()], "the domain itself");
        reserved(&ty.name, camel(&ty.name.dsl), &["Command"], "commands to any of the domain's aggregates");
    }
    for aggregate in &domain.aggregates {
        reserved(
            &aggregate.name,
            camel(&aggregate.name.dsl),
            &["State", "Event", "Command", "Rejection", "Extern", "Id"],
            "the aggregate's own types",
        );
        reserved(&aggregate.name, snake(&aggregate.name.dsl), &["views", "scenarios"], "a module of its own");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_spellings() {
        assert_eq!(snake("account-id"), "account_id");
        assert_eq!(snake("type"), "r#type");
        assert_eq!(snake("self"), "self_");
        assert_eq!(camel("account-id"), "AccountId");
        assert_eq!(camel("self"), "Self_");
        assert_eq!(camel("match"), "Match");
        assert_eq!(screaming("max-qty"), "MAX_QTY");
    }
}
