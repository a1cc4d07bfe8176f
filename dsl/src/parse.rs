//! Turns spanned S-expressions into the [`ast`](crate::ast) of a domain model.
//!
//! Checks the shape of every form (clauses, arity, names, literals) and collects every problem instead of
//! stopping at the first; names and types are checked later, by `anthill-compiler`.

use crate::ast::*;
use crate::diagnostic::{codes, did_you_mean, Diagnostic};
use crate::sexp::{self, Sexp, SexpKind};
use crate::span::{FileId, SourceFile, Span};

/// Parses a file. `expect_domain` is true for a root file (`(domain ...)`) and false for an included fragment.
pub fn parse_file(file: FileId, source: &SourceFile, expect_domain: bool) -> (Module, Vec<Diagnostic>) {
    let (forms, read_error) = sexp::read(file, source);
    let mut parser = Parser { file, diagnostics: Vec::new() };
    let mut module = Module { file, domain: None, items: Vec::new() };
    if let Some(error) = read_error {
        parser.diagnostics.push(error);
        return (module, parser.diagnostics);
    }
    if expect_domain {
        parser.domain_file(&forms, source, &mut module);
    } else {
        for form in &forms {
            if form.head() == Some("domain") {
                parser.error(
                    Diagnostic::new(codes::EXPECTED_DOMAIN, form.span, "an included file cannot declare a domain")
                        .label("a second `domain` form")
                        .help("an included file holds the domain's items directly: `(aggregate ...)`, `(enum ...)`..."),
                );
                continue;
            }
            if let Some(item) = parser.item(form) {
                module.items.push(item);
            }
        }
    }
    (module, parser.diagnostics)
}

/// The forms a domain may contain, for "did you mean" hints.
const DOMAIN_FORMS: &[&str] =
    &["doc", "include", "type", "id", "enum", "record", "aggregate", "process", "view", "scenario"];
const AGGREGATE_CLAUSES: &[&str] = &["doc", "key", "state", "event", "command", "on", "invariant"];
const COMMAND_CLAUSES: &[&str] = &["doc", "params", "extern", "emits", "rejects", "policy"];
const STMT_FORMS: &[&str] = &["require", "reject", "emit", "set", "send", "let", "if", "when", "unless", "cond"];
const VIEW_CLAUSES: &[&str] = &["doc", "key", "column", "on"];
const SCENARIO_CLAUSES: &[&str] = &["doc", "aggregate", "given", "when", "then"];

/// Names the language gives a meaning of its own; they cannot name fields, parameters or bindings.
pub const RESERVED_NAMES: &[&str] = &["id", "version", "true", "false", "none", "state", "else", "nil"];

struct Parser {
    file: FileId,
    diagnostics: Vec<Diagnostic>,
}

fn is_kebab(name: &str) -> bool {
    let mut parts = name.split('-');
    let first_ok =
        parts.next().is_some_and(|p| p.starts_with(|c: char| c.is_ascii_lowercase()) && p.chars().all(is_name_char));
    first_ok && parts.all(|p| !p.is_empty() && p.chars().all(is_name_char))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Suggests the kebab-case spelling of a name written in another style.
fn kebab_hint(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('-') {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else if c == '_' || c == ' ' {
            out.push('-');
        } else {
            out.push(c);
        }
    }
    out.trim_matches('-').to_string()
}

impl Parser {
    fn error(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn malformed(&mut self, span: Span, message: impl Into<String>, help: impl Into<String>) {
        self.error(Diagnostic::new(codes::MALFORMED, span, message).help(help));
    }

    fn domain_file(&mut self, forms: &[Sexp], source: &SourceFile, module: &mut Module) {
        let domain_forms: Vec<&Sexp> = forms.iter().filter(|f| f.head() == Some("domain")).collect();
        let Some(domain) = domain_forms.first() else {
            let span = forms.first().map_or(Span::new(self.file, 0, source.text.len().min(1) as u32), |f| f.span);
            self.error(
                Diagnostic::new(codes::EXPECTED_DOMAIN, span, "expected a `(domain NAME ...)` form")
                    .label(if forms.is_empty() { "the file is empty" } else { "found this instead" })
                    .help("a model file starts with `(domain my-domain ...)` and holds everything inside it"),
            );
            return;
        };
        for extra in forms.iter().filter(|f| f.span != domain.span) {
            let label = if extra.head() == Some("domain") { "a second domain" } else { "outside the domain" };
            self.error(
                Diagnostic::new(
                    codes::EXPECTED_DOMAIN,
                    extra.span,
                    "a model file holds exactly one `(domain ...)` form",
                )
                .label(label)
                .help("put one domain per file, with every item inside its `(domain ...)` form"),
            );
        }
        let items = domain.as_list().unwrap_or_default();
        let Some(name) = self.name_at(items, 1, domain.span, "the domain's name") else {
            return;
        };
        let mut header = DomainHeader { name, doc: None, span: domain.span };
        for form in &items[2..] {
            if form.head() == Some("doc") {
                self.set_doc(&mut header.doc, form);
                continue;
            }
            if let Some(item) = self.item(form) {
                module.items.push(item);
            }
        }
        module.domain = Some(header);
    }

    fn item(&mut self, form: &Sexp) -> Option<Item> {
        let items = self.form(form, "a domain item like `(aggregate ...)`")?;
        let head = items[0].as_symbol().unwrap_or_default();
        match head {
            "include" => {
                let (path, _) = self.string_at(items, 1, form.span, "the included file's path")?;
                self.no_extra(items, 2, "`(include \"file.sexp\")`");
                Some(Item::Include(Include { path, span: form.span }))
            }
            "type" => {
                let name = self.name_at(items, 1, form.span, "the type's name")?;
                let mut doc = None;
                let mut ty = None;
                let mut ty_given = false;
                for arg in &items[2..] {
                    if arg.head() == Some("doc") {
                        self.set_doc(&mut doc, arg);
                    } else if !ty_given {
                        ty_given = true;
                        ty = self.type_expr(arg);
                    } else {
                        self.malformed(arg.span, "`type` takes one type", "write `(type money (decimal 2))`");
                    }
                }
                let Some(ty) = ty else {
                    if ty_given {
                        return None; // the type itself was reported
                    }
                    self.missing(form.span, "`type` needs the aliased type", "write `(type money (decimal 2))`");
                    return None;
                };
                Some(Item::Type(TypeAlias { name, doc, ty, span: form.span }))
            }
            "id" => {
                let name = self.name_at(items, 1, form.span, "the id type's name")?;
                let mut doc = None;
                let mut repr = None;
                for arg in &items[2..] {
                    if arg.head() == Some("doc") {
                        self.set_doc(&mut doc, arg);
                    } else if repr.is_none() {
                        repr = self.type_expr(arg);
                    } else {
                        self.malformed(
                            arg.span,
                            "`id` takes at most one representation",
                            "write `(id order-id)` or `(id order-id u64)`",
                        );
                    }
                }
                Some(Item::Id(IdDecl { name, doc, repr, span: form.span }))
            }
            "enum" => {
                let name = self.name_at(items, 1, form.span, "the enum's name")?;
                let mut doc = None;
                let mut variants = Vec::new();
                for arg in &items[2..] {
                    match &arg.kind {
                        SexpKind::List(_) if arg.head() == Some("doc") => self.set_doc(&mut doc, arg),
                        SexpKind::List(parts) => {
                            // `(variant (doc "..."))`
                            if let Some(vname) = self.name_at(parts, 0, arg.span, "a variant name") {
                                let mut vdoc = None;
                                for part in &parts[1..] {
                                    self.set_doc(&mut vdoc, part);
                                }
                                variants.push(Variant { name: vname, doc: vdoc });
                            }
                        }
                        _ => {
                            if let Some(vname) = self.name(arg, "a variant name") {
                                variants.push(Variant { name: vname, doc: None });
                            }
                        }
                    }
                }
                if variants.is_empty() {
                    self.missing(
                        form.span,
                        "an enum needs at least one variant",
                        "write `(enum status open frozen closed)`",
                    );
                }
                Some(Item::Enum(EnumDecl { name, doc, variants, span: form.span }))
            }
            "record" => {
                let name = self.name_at(items, 1, form.span, "the record's name")?;
                let mut doc = None;
                let mut fields = Vec::new();
                for arg in &items[2..] {
                    if arg.head() == Some("doc") {
                        self.set_doc(&mut doc, arg);
                    } else if let Some(field) = self.field(arg, false, "`(FIELD TYPE)`") {
                        fields.push(field);
                    }
                }
                Some(Item::Record(RecordDecl { name, doc, fields, span: form.span }))
            }
            "aggregate" => self.aggregate(form, items).map(Item::Aggregate),
            "process" => self.process(form, items).map(Item::Process),
            "view" => self.view(form, items).map(Item::View),
            "scenario" => self.scenario(form, items).map(Item::Scenario),
            "domain" => {
                self.error(
                    Diagnostic::new(codes::EXPECTED_DOMAIN, form.span, "a domain cannot contain another domain")
                        .label("nested domain")
                        .help("put each domain in its own file"),
                );
                None
            }
            _ => {
                self.unknown_form(&items[0], "in a domain", DOMAIN_FORMS);
                None
            }
        }
    }

    fn aggregate(&mut self, form: &Sexp, items: &[Sexp]) -> Option<AggregateDecl> {
        let name = self.name_at(items, 1, form.span, "the aggregate's name")?;
        let mut decl = AggregateDecl {
            name,
            doc: None,
            key: None,
            state: Vec::new(),
            events: Vec::new(),
            commands: Vec::new(),
            handlers: Vec::new(),
            invariants: Vec::new(),
            span: form.span,
        };
        let mut state_seen: Option<Span> = None;
        for clause in &items[2..] {
            let Some(parts) = self.form(clause, "an aggregate clause like `(state ...)`") else {
                continue;
            };
            match parts[0].as_symbol().unwrap_or_default() {
                "doc" => self.set_doc(&mut decl.doc, clause),
                "key" => {
                    if decl.key.is_some() {
                        self.duplicate_clause(clause, "key");
                        continue;
                    }
                    if let Some(ty_sexp) = self.arg_at(parts, 1, clause.span, "the key's type, e.g. `(key account-id)`")
                    {
                        decl.key = self.type_expr(ty_sexp);
                    }
                    self.no_extra(parts, 2, "`(key TYPE)`");
                }
                "state" => {
                    if let Some(first) = state_seen {
                        self.error(
                            Diagnostic::new(codes::DUPLICATE_CLAUSE, clause.span, "`state` given twice")
                                .label("second `state`")
                                .secondary(first, "first `state` here")
                                .help("list every state field in one `(state ...)` clause"),
                        );
                        continue;
                    }
                    state_seen = Some(clause.span);
                    for field in &parts[1..] {
                        if let Some(f) = self.field(field, true, "`(FIELD TYPE [DEFAULT])`") {
                            decl.state.push(f);
                        }
                    }
                }
                "event" => {
                    let Some(event_name) = self.name_at(parts, 1, clause.span, "the event's name") else {
                        continue;
                    };
                    let mut doc = None;
                    let mut fields = Vec::new();
                    for arg in &parts[2..] {
                        if arg.head() == Some("doc") {
                            self.set_doc(&mut doc, arg);
                        } else if let Some(f) = self.field(arg, false, "`(FIELD TYPE)`") {
                            fields.push(f);
                        }
                    }
                    decl.events.push(EventDecl { name: event_name, doc, fields, span: clause.span });
                }
                "command" => {
                    if let Some(command) = self.command(clause, parts) {
                        decl.commands.push(command);
                    }
                }
                "on" => {
                    let Some(event) = self.name_at(parts, 1, clause.span, "the event this handler applies") else {
                        continue;
                    };
                    let body = self.stmts(&parts[2..]);
                    decl.handlers.push(OnDecl { event, body, span: clause.span });
                }
                "invariant" => {
                    let Some(inv_name) = self.name_at(parts, 1, clause.span, "the invariant's name") else {
                        continue;
                    };
                    let mut doc = None;
                    let mut expr = None;
                    let mut expr_given = false;
                    let mut policy = None;
                    for arg in &parts[2..] {
                        match arg.head() {
                            Some("doc") => self.set_doc(&mut doc, arg),
                            Some("policy") => {
                                if policy.is_some() {
                                    self.duplicate_clause(arg, "policy");
                                    continue;
                                }
                                let pparts = arg.as_list().unwrap_or_default();
                                if let Some(p) =
                                    self.arg_at(pparts, 1, arg.span, "a policy: `strict` or `(relaxed ...)`")
                                {
                                    policy = self.policy(p, false);
                                }
                                self.no_extra(pparts, 2, "`(policy POLICY)`");
                            }
                            _ if !expr_given => {
                                expr_given = true;
                                expr = self.expr(arg);
                            }
                            _ => self.malformed(
                                arg.span,
                                "an invariant has one condition",
                                "combine conditions with `(and ...)`; give the policy as `(policy ...)`",
                            ),
                        }
                    }
                    let Some(expr) = expr else {
                        if expr_given {
                            continue; // the condition itself was reported
                        }
                        self.missing(
                            clause.span,
                            "an invariant needs a condition",
                            "write `(invariant non-negative (>= balance 0))`",
                        );
                        continue;
                    };
                    decl.invariants.push(InvariantDecl { name: inv_name, doc, expr, policy, span: clause.span });
                }
                _ => self.unknown_form(&parts[0], "in an aggregate", AGGREGATE_CLAUSES),
            }
        }
        Some(decl)
    }

    fn command(&mut self, form: &Sexp, parts: &[Sexp]) -> Option<CommandDecl> {
        let name = self.name_at(parts, 1, form.span, "the command's name")?;
        let mut decl = CommandDecl {
            name,
            doc: None,
            params: Vec::new(),
            extern_span: None,
            emits: Vec::new(),
            rejects: Vec::new(),
            policies: Vec::new(),
            body: Vec::new(),
            span: form.span,
        };
        let mut params_seen = false;
        let mut body_forms = Vec::new();
        for clause in &parts[2..] {
            let Some(head) = clause.head() else {
                body_forms.push(clause);
                continue;
            };
            let cparts = clause.as_list().unwrap_or_default();
            match head {
                "doc" => self.set_doc(&mut decl.doc, clause),
                "params" => {
                    if params_seen {
                        self.duplicate_clause(clause, "params");
                        continue;
                    }
                    params_seen = true;
                    for p in &cparts[1..] {
                        if let Some(f) = self.field(p, false, "`(PARAM TYPE)`") {
                            decl.params.push(f);
                        }
                    }
                }
                "extern" => {
                    if decl.extern_span.is_some() {
                        self.duplicate_clause(clause, "extern");
                        continue;
                    }
                    decl.extern_span = Some(clause.span);
                    self.no_extra(cparts, 1, "`(extern)`");
                }
                "emits" => {
                    for e in &cparts[1..] {
                        if let Some(n) = self.name(e, "an event name") {
                            decl.emits.push(n);
                        }
                    }
                }
                "rejects" => {
                    let Some(rname) = self.name_at(cparts, 1, clause.span, "the rejection's name") else {
                        continue;
                    };
                    let Some((message, _)) = self.string_at(cparts, 2, clause.span, "the rejection's message") else {
                        continue;
                    };
                    self.no_extra(cparts, 3, "`(rejects NAME \"message\")`");
                    decl.rejects.push(RejectDecl { name: rname, message, span: clause.span });
                }
                "policy" => {
                    let Some(invariant) = self.name_at(cparts, 1, clause.span, "the invariant this policy is for")
                    else {
                        continue;
                    };
                    let Some(p) = self.arg_at(cparts, 2, clause.span, "a policy: `strict`, `relaxed` or `(if ...)`")
                    else {
                        continue;
                    };
                    let Some(policy) = self.policy(p, true) else {
                        continue;
                    };
                    self.no_extra(cparts, 3, "`(policy INVARIANT POLICY)`");
                    decl.policies.push(PolicyOverride { invariant, policy, span: clause.span });
                }
                _ if STMT_FORMS.contains(&head) => body_forms.push(clause),
                _ => {
                    let mut known: Vec<&str> = COMMAND_CLAUSES.to_vec();
                    known.extend_from_slice(STMT_FORMS);
                    self.unknown_form(&cparts[0], "in a command", &known);
                }
            }
        }
        decl.body = body_forms.into_iter().filter_map(|s| self.stmt(s)).collect();
        Some(decl)
    }

    fn policy(&mut self, sexp: &Sexp, in_command: bool) -> Option<Policy> {
        let span = sexp.span;
        match &sexp.kind {
            SexpKind::Symbol(s) if s == "strict" => Some(Policy { kind: PolicyKind::Strict, span }),
            SexpKind::Symbol(s) if s == "relaxed" && in_command => {
                Some(Policy { kind: PolicyKind::RelaxedDeclared, span })
            }
            SexpKind::List(parts) if sexp.head() == Some("relaxed") => {
                let mut tolerance = None;
                let mut on_violation = Vec::new();
                for clause in &parts[1..] {
                    match clause.head() {
                        Some("tolerance") => {
                            let tparts = clause.as_list().unwrap_or_default();
                            if let Some(t) =
                                self.arg_at(tparts, 1, clause.span, "the tolerance, e.g. `(tolerance 100)`")
                            {
                                tolerance = self.expr(t);
                            }
                            self.no_extra(tparts, 2, "`(tolerance EXPR)`");
                        }
                        Some("on-violation") => {
                            let vparts = clause.as_list().unwrap_or_default();
                            on_violation.extend(self.stmts(&vparts[1..]));
                        }
                        _ => self.unknown_form(clause, "in a relaxed policy", &["tolerance", "on-violation"]),
                    }
                }
                let Some(tolerance) = tolerance else {
                    self.missing(
                        span,
                        "a relaxed policy needs a tolerance",
                        "write `(relaxed (tolerance 100) (on-violation ...))`",
                    );
                    return None;
                };
                Some(Policy { kind: PolicyKind::Relaxed { tolerance, on_violation }, span })
            }
            SexpKind::List(parts) if sexp.head() == Some("if") => {
                if parts.len() != 4 {
                    self.error(
                        Diagnostic::new(
                            codes::WRONG_ARITY,
                            span,
                            "`if` in a policy takes a condition and two policies",
                        )
                        .help("write `(if (> amount 1000) strict relaxed)`"),
                    );
                    return None;
                }
                let cond = self.expr(&parts[1])?;
                let then = self.policy(&parts[2], in_command)?;
                let otherwise = self.policy(&parts[3], in_command)?;
                Some(Policy {
                    kind: PolicyKind::If { cond, then: Box::new(then), otherwise: Box::new(otherwise) },
                    span,
                })
            }
            _ => {
                let help = if in_command {
                    "a policy is `strict`, `relaxed` (the invariant's own), `(relaxed (tolerance EXPR) ...)` or `(if COND POLICY POLICY)`"
                } else {
                    "a policy is `strict`, `(relaxed (tolerance EXPR) (on-violation ...))` or `(if COND POLICY POLICY)`"
                };
                self.malformed(span, "expected a consistency policy", help);
                None
            }
        }
    }

    fn process(&mut self, form: &Sexp, items: &[Sexp]) -> Option<ProcessDecl> {
        let name = self.name_at(items, 1, form.span, "the process's name")?;
        let mut decl = ProcessDecl { name, doc: None, handlers: Vec::new(), span: form.span };
        for clause in &items[2..] {
            let Some(parts) = self.form(clause, "`(on AGGREGATE/EVENT ...)`") else {
                continue;
            };
            match parts[0].as_symbol().unwrap_or_default() {
                "doc" => self.set_doc(&mut decl.doc, clause),
                "on" => {
                    let Some(event) = self.event_ref_at(parts, 1, clause.span) else {
                        continue;
                    };
                    let body = self.stmts(&parts[2..]);
                    decl.handlers.push(ProcessOn { event, body, span: clause.span });
                }
                _ => self.unknown_form(&parts[0], "in a process", &["doc", "on"]),
            }
        }
        Some(decl)
    }

    fn view(&mut self, form: &Sexp, items: &[Sexp]) -> Option<ViewDecl> {
        let name = self.name_at(items, 1, form.span, "the view's name")?;
        let mut decl =
            ViewDecl { name, doc: None, key: None, columns: Vec::new(), handlers: Vec::new(), span: form.span };
        for clause in &items[2..] {
            let Some(parts) = self.form(clause, "a view clause like `(column ...)`") else {
                continue;
            };
            match parts[0].as_symbol().unwrap_or_default() {
                "doc" => self.set_doc(&mut decl.doc, clause),
                "key" => {
                    if decl.key.is_some() {
                        self.duplicate_clause(clause, "key");
                        continue;
                    }
                    if let Some(t) = self.arg_at(parts, 1, clause.span, "the key's type") {
                        decl.key = self.type_expr(t);
                    }
                    self.no_extra(parts, 2, "`(key TYPE)`");
                }
                "column" => {
                    let Some(cname) = self.name_at(parts, 1, clause.span, "the column's name") else {
                        continue;
                    };
                    let Some(r) = self.arg_at(
                        parts,
                        2,
                        clause.span,
                        "a reducer: count, (sum T), (min T), (max T), (latest T) or (list T [MAX])",
                    ) else {
                        continue;
                    };
                    let mut doc = None;
                    for extra in &parts[3..] {
                        if extra.head() == Some("doc") {
                            self.set_doc(&mut doc, extra);
                        } else {
                            self.malformed(
                                extra.span,
                                "a column has one reducer",
                                "write `(column total (sum money))`",
                            );
                        }
                    }
                    if let Some(reducer) = self.reducer(r) {
                        decl.columns.push(ColumnDecl { name: cname, doc, reducer, span: clause.span });
                    }
                }
                "on" => {
                    let Some(event) = self.event_ref_at(parts, 1, clause.span) else {
                        continue;
                    };
                    let mut on = ViewOn { event, filter: None, key: None, updates: Vec::new(), span: clause.span };
                    for u in &parts[2..] {
                        let Some(uparts) = self.form(u, "`(key EXPR)`, `(when EXPR)` or `(COLUMN [EXPR])`") else {
                            continue;
                        };
                        let head = uparts[0].as_symbol().unwrap_or_default();
                        match head {
                            "key" | "when" => {
                                let slot = if head == "key" { &mut on.key } else { &mut on.filter };
                                if slot.is_some() {
                                    self.duplicate_clause(u, head);
                                    continue;
                                }
                                let value = self.arg_at(uparts, 1, u.span, "an expression").and_then(|e| self.expr(e));
                                let slot = if head == "key" { &mut on.key } else { &mut on.filter };
                                *slot = value;
                                self.no_extra(uparts, 2, "`(key EXPR)` or `(when EXPR)`");
                            }
                            _ => {
                                let Some(column) = self.name(&uparts[0], "a column name") else {
                                    continue;
                                };
                                let value = uparts.get(1).and_then(|e| self.expr(e));
                                self.no_extra(uparts, 2, "`(COLUMN EXPR)`");
                                on.updates.push(ColumnUpdate { column, value, span: u.span });
                            }
                        }
                    }
                    decl.handlers.push(on);
                }
                _ => self.unknown_form(&parts[0], "in a view", VIEW_CLAUSES),
            }
        }
        Some(decl)
    }

    fn reducer(&mut self, sexp: &Sexp) -> Option<Reducer> {
        if sexp.as_symbol() == Some("count") {
            return Some(Reducer::Count);
        }
        let known = ["count", "sum", "min", "max", "latest", "list"];
        let Some(parts) = sexp.as_list().filter(|p| !p.is_empty()) else {
            self.malformed(
                sexp.span,
                "expected a reducer",
                "a reducer is count, (sum T), (min T), (max T), (latest T) or (list T [MAX])",
            );
            return None;
        };
        let head = parts[0].as_symbol().unwrap_or_default();
        if !known.contains(&head) || head == "count" {
            self.unknown_form(&parts[0], "as a reducer", &known);
            return None;
        }
        let ty = self.arg_at(parts, 1, sexp.span, "the column's type").and_then(|t| self.type_expr(t))?;
        let reducer = match head {
            "sum" => Reducer::Sum(ty),
            "min" => Reducer::Min(ty),
            "max" => Reducer::Max(ty),
            "latest" => Reducer::Latest(ty),
            _ => {
                let max = match parts.get(2) {
                    Some(n) => match &n.kind {
                        SexpKind::Number(text) => match text.parse::<u32>() {
                            Ok(v) if v > 0 => Some(v),
                            _ => {
                                self.error(
                                    Diagnostic::new(
                                        codes::LITERAL_OUT_OF_RANGE,
                                        n.span,
                                        "a list's length bound must be from 1 to 4294967295",
                                    )
                                    .label("not a valid bound"),
                                );
                                None
                            }
                        },
                        _ => {
                            self.malformed(n.span, "expected the list's maximum length", "write `(list money 10)`");
                            None
                        }
                    },
                    None => None,
                };
                self.no_extra(parts, 3, "`(list TYPE [MAX])`");
                return Some(Reducer::List(ty, max));
            }
        };
        self.no_extra(parts, 2, &format!("`({head} TYPE)`"));
        Some(reducer)
    }

    fn scenario(&mut self, form: &Sexp, items: &[Sexp]) -> Option<ScenarioDecl> {
        let (title, title_span) = self.string_at(items, 1, form.span, "the scenario's title")?;
        let mut decl = ScenarioDecl {
            title,
            title_span,
            doc: None,
            aggregate: None,
            given: Vec::new(),
            when: None,
            then: None,
            span: form.span,
        };
        let mut given_seen = false;
        for clause in &items[2..] {
            let Some(parts) = self.form(clause, "`(given ...)`, `(when ...)` or `(then ...)`") else {
                continue;
            };
            match parts[0].as_symbol().unwrap_or_default() {
                "doc" => self.set_doc(&mut decl.doc, clause),
                "aggregate" => {
                    if decl.aggregate.is_some() {
                        self.duplicate_clause(clause, "aggregate");
                        continue;
                    }
                    decl.aggregate = self.name_at(parts, 1, clause.span, "the aggregate's name");
                    self.no_extra(parts, 2, "`(aggregate NAME)`");
                }
                "given" => {
                    if given_seen {
                        self.duplicate_clause(clause, "given");
                        continue;
                    }
                    given_seen = true;
                    for e in &parts[1..] {
                        if let Some(m) = self.message(e, "an event like `(deposited (amount 10))`") {
                            decl.given.push(m);
                        }
                    }
                }
                "when" => {
                    if decl.when.is_some() {
                        self.duplicate_clause(clause, "when");
                        continue;
                    }
                    if let Some(c) = self.arg_at(parts, 1, clause.span, "the command, e.g. `(withdraw (amount 10))`") {
                        decl.when = self.message(c, "a command like `(withdraw (amount 10))`");
                    }
                    self.no_extra(parts, 2, "`(when COMMAND)`: one command per scenario");
                }
                "then" => {
                    if decl.then.is_some() {
                        self.duplicate_clause(clause, "then");
                        continue;
                    }
                    if let [_, rejected] = parts {
                        if rejected.head() == Some("rejected") {
                            let rparts = rejected.as_list().unwrap_or_default();
                            if let Some(n) = self.name_at(rparts, 1, rejected.span, "the rejection's name") {
                                self.no_extra(rparts, 2, "`(rejected NAME)`");
                                decl.then = Some(Then::Rejected(n, rejected.span));
                            }
                            continue;
                        }
                    }
                    let events = parts[1..]
                        .iter()
                        .filter_map(|e| self.message(e, "an event like `(withdrawn (amount 10))`"))
                        .collect();
                    decl.then = Some(Then::Events(events, clause.span));
                }
                _ => self.unknown_form(&parts[0], "in a scenario", SCENARIO_CLAUSES),
            }
        }
        if decl.when.is_none() {
            self.missing(form.span, "a scenario needs a `(when COMMAND)`", "add `(when (deposit (amount 10)))`");
        }
        if decl.then.is_none() {
            self.missing(
                form.span,
                "a scenario needs a `(then ...)`",
                "add `(then (deposited (amount 10)))` or `(then (rejected NAME))`",
            );
        }
        Some(decl)
    }

    /// `(NAME (field EXPR)...)` or a bare `NAME` when there are no fields.
    fn message(&mut self, sexp: &Sexp, what: &str) -> Option<Message> {
        if let SexpKind::Symbol(_) = sexp.kind {
            let name = self.name(sexp, what)?;
            return Some(Message { name, fields: Vec::new(), span: sexp.span });
        }
        let parts = self.form(sexp, what)?;
        let name = self.name(&parts[0], what)?;
        let fields = parts[1..].iter().filter_map(|f| self.field_init(f)).collect();
        Some(Message { name, fields, span: sexp.span })
    }

    fn field_init(&mut self, sexp: &Sexp) -> Option<FieldInit> {
        match &sexp.kind {
            SexpKind::Symbol(_) => {
                let name = self.name(sexp, "a field name")?;
                let value = Expr { kind: ExprKind::Var(vec![name.clone()]), span: sexp.span };
                Some(FieldInit { name, value, span: sexp.span })
            }
            SexpKind::List(parts) if parts.len() == 2 => {
                let name = self.name(&parts[0], "a field name")?;
                let value = self.expr(&parts[1])?;
                Some(FieldInit { name, value, span: sexp.span })
            }
            _ => {
                self.malformed(
                    sexp.span,
                    "expected `(FIELD EXPR)` or a bare field name",
                    "write `(amount 10)`, or `amount` to pass the name of the same name",
                );
                None
            }
        }
    }

    fn event_ref_at(&mut self, parts: &[Sexp], index: usize, span: Span) -> Option<EventRef> {
        let sexp = self.arg_at(parts, index, span, "an event as `AGGREGATE/EVENT`")?;
        let text = sexp.as_symbol().unwrap_or_default();
        let Some((agg, event)) = text.split_once('/') else {
            self.malformed(
                sexp.span,
                "expected an event as `AGGREGATE/EVENT`",
                "name the aggregate too: `account/deposited`",
            );
            return None;
        };
        let agg_span = Span::new(self.file, sexp.span.start, sexp.span.start + agg.len() as u32);
        let event_span = Span::new(self.file, agg_span.end + 1, sexp.span.end);
        let aggregate = self.check_name(agg, agg_span, "an aggregate name")?;
        let event = self.check_name(event, event_span, "an event name")?;
        Some(EventRef { aggregate, event, span: sexp.span })
    }

    fn stmts(&mut self, forms: &[Sexp]) -> Vec<Stmt> {
        forms.iter().filter_map(|f| self.stmt(f)).collect()
    }

    fn stmt(&mut self, sexp: &Sexp) -> Option<Stmt> {
        let span = sexp.span;
        let parts = self.form(sexp, "a statement like `(emit ...)` or `(require ...)`")?;
        let head = parts[0].as_symbol().unwrap_or_default();
        let kind = match head {
            "require" => {
                let cond = self.arg_at(parts, 1, span, "the condition that must hold").and_then(|c| self.expr(c));
                let name = self.name_at(parts, 2, span, "the rejection's name, e.g. `insufficient-funds`");
                let message = self.string_at(parts, 3, span, "the rejection's message");
                self.no_extra(parts, 4, "`(require COND NAME \"message\")`");
                StmtKind::Require { cond: cond?, name: name?, message: message?.0 }
            }
            "reject" => {
                let name = self.name_at(parts, 1, span, "the rejection's name");
                let message = self.string_at(parts, 2, span, "the rejection's message");
                self.no_extra(parts, 3, "`(reject NAME \"message\")`");
                StmtKind::Reject { name: name?, message: message?.0 }
            }
            "emit" => {
                let name = self.name_at(parts, 1, span, "the event to emit")?;
                let fields = parts[2..].iter().filter_map(|f| self.field_init(f)).collect();
                StmtKind::Emit(Message { name, fields, span })
            }
            "set" => {
                let field = self.name_at(parts, 1, span, "the state field to set");
                let value = self.arg_at(parts, 2, span, "the new value").and_then(|v| self.expr(v));
                self.no_extra(parts, 3, "`(set FIELD EXPR)`");
                StmtKind::Set { field: field?, value: value? }
            }
            "send" => {
                let aggregate = self.name_at(parts, 1, span, "the target aggregate");
                let id = self.arg_at(parts, 2, span, "the target aggregate's id").and_then(|e| self.expr(e));
                let command_name = self.name_at(parts, 3, span, "the command to send");
                let mut fields = Vec::new();
                let mut on_rejected = Vec::new();
                for arg in parts.iter().skip(4) {
                    if arg.head() == Some("on-rejected") {
                        let rparts = arg.as_list().unwrap_or_default();
                        on_rejected.extend(self.stmts(&rparts[1..]));
                    } else if let Some(f) = self.field_init(arg) {
                        fields.push(f);
                    }
                }
                let command = Message { name: command_name?, fields, span };
                StmtKind::Send { aggregate: aggregate?, id: id?, command, on_rejected }
            }
            "let" => {
                let bindings = self.bindings(parts, span)?;
                let body = self.stmts(&parts[2..]);
                StmtKind::Let { bindings, body }
            }
            "if" => {
                if !(3..=4).contains(&parts.len()) {
                    self.arity(
                        span,
                        "`if` takes a condition, a statement and an optional else statement",
                        "for several statements use `(when COND ...)` or `(cond ...)`",
                    );
                    return None;
                }
                let cond = self.expr(&parts[1])?;
                let then = self.stmts(&parts[2..3]);
                let otherwise = self.stmts(&parts[3..]);
                StmtKind::If { cond, then, otherwise }
            }
            "when" | "unless" => {
                let cond = self.arg_at(parts, 1, span, "the condition").and_then(|c| self.expr(c))?;
                let body = self.stmts(&parts[2..]);
                if head == "when" {
                    StmtKind::If { cond, then: body, otherwise: Vec::new() }
                } else {
                    StmtKind::If { cond, then: Vec::new(), otherwise: body }
                }
            }
            "cond" => {
                let mut arms = Vec::new();
                let mut otherwise = Vec::new();
                for (i, arm) in parts[1..].iter().enumerate() {
                    let Some(aparts) = arm.as_list().filter(|a| !a.is_empty()) else {
                        self.malformed(
                            arm.span,
                            format!("expected a `cond` arm: `(COND STMT...)`, found {}", arm.describe()),
                            "write `(cond ((> qty 10) (emit big ...)) (else (emit small ...)))`",
                        );
                        continue;
                    };
                    if aparts[0].as_symbol() == Some("else") {
                        if i + 2 != parts.len() {
                            self.malformed(arm.span, "`else` must be the last arm", "move the `else` arm to the end");
                        }
                        otherwise = self.stmts(&aparts[1..]);
                    } else if let Some(c) = self.expr(&aparts[0]) {
                        arms.push((c, self.stmts(&aparts[1..])));
                    }
                }
                StmtKind::Cond { arms, otherwise }
            }
            _ => {
                self.unknown_form(&parts[0], "as a statement", STMT_FORMS);
                return None;
            }
        };
        Some(Stmt { kind, span })
    }

    fn bindings(&mut self, parts: &[Sexp], span: Span) -> Option<Vec<Binding>> {
        let list = self.arg_at(parts, 1, span, "the bindings: `((name expr)...)`")?;
        let Some(items) = list.as_list() else {
            self.malformed(list.span, "expected bindings: `((name expr)...)`", "write `(let ((total (+ a b))) ...)`");
            return None;
        };
        let mut bindings = Vec::new();
        for b in items {
            match b.as_list() {
                Some([name, value]) => {
                    let name = self.name(name, "a binding name");
                    let value = self.expr(value);
                    if let (Some(name), Some(value)) = (name, value) {
                        bindings.push(Binding { name, value, span: b.span });
                    }
                }
                _ => self.malformed(b.span, "expected a binding: `(name expr)`", "write `(let ((total (+ a b))) ...)`"),
            }
        }
        Some(bindings)
    }

    fn expr(&mut self, sexp: &Sexp) -> Option<Expr> {
        let span = sexp.span;
        let kind = match &sexp.kind {
            SexpKind::Number(text) => return self.number(text, span),
            SexpKind::Str(s) => ExprKind::Str(s.clone()),
            SexpKind::Bool(b) => ExprKind::Bool(*b),
            SexpKind::Quote(inner) => {
                let name = self.name(inner, "an enum variant after `'`")?;
                ExprKind::EnumLit(name)
            }
            SexpKind::Symbol(s) => match s.as_str() {
                "true" => ExprKind::Bool(true),
                "false" => ExprKind::Bool(false),
                "none" => ExprKind::None,
                _ if s.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+' || c == '.')
                    && s.len() > 1
                    && s[1..].starts_with(|c: char| c.is_ascii_digit() || c == '.') =>
                {
                    return self.number(s, span);
                }
                _ => {
                    let mut path = Vec::new();
                    let mut offset = span.start;
                    for part in s.split('.') {
                        let part_span = Span::new(self.file, offset, offset + part.len() as u32);
                        offset += part.len() as u32 + 1;
                        path.push(self.check_name(part, part_span, "a name")?);
                    }
                    ExprKind::Var(path)
                }
            },
            SexpKind::List(parts) => {
                if parts.is_empty() {
                    self.malformed(
                        span,
                        "expected an expression, found `()`",
                        "write a value such as `0`, a name or a call like `(+ a b)`",
                    );
                    return None;
                }
                let Some(head) = parts[0].as_symbol() else {
                    self.malformed(
                        parts[0].span,
                        "expected an operator or function name",
                        "a call looks like `(+ a b)` or `(max a b)`",
                    );
                    return None;
                };
                match head {
                    "if" => {
                        if parts.len() != 4 {
                            self.arity(
                                span,
                                "`if` takes a condition and two expressions",
                                "write `(if COND THEN ELSE)`",
                            );
                            return None;
                        }
                        let cond = self.expr(&parts[1]);
                        let then = self.expr(&parts[2]);
                        let otherwise = self.expr(&parts[3]);
                        ExprKind::If { cond: Box::new(cond?), then: Box::new(then?), otherwise: Box::new(otherwise?) }
                    }
                    "cond" => {
                        let mut arms = Vec::new();
                        let mut otherwise = None;
                        for arm in &parts[1..] {
                            match arm.as_list() {
                                Some([c, v]) if c.as_symbol() == Some("else") => otherwise = self.expr(v),
                                Some([c, v]) => {
                                    if let (Some(c), Some(v)) = (self.expr(c), self.expr(v)) {
                                        arms.push((c, v));
                                    }
                                }
                                _ => self.malformed(
                                    arm.span,
                                    "expected a `cond` arm: `(COND VALUE)`",
                                    "write `(cond ((> a b) a) (else b))`",
                                ),
                            }
                        }
                        let Some(otherwise) = otherwise else {
                            self.missing(
                                span,
                                "a `cond` expression needs an `else` arm",
                                "add `(else VALUE)` as the last arm",
                            );
                            return None;
                        };
                        ExprKind::Cond { arms, otherwise: Box::new(otherwise) }
                    }
                    "let" => {
                        let bindings = self.bindings(parts, span)?;
                        if parts.len() != 3 {
                            self.arity(
                                span,
                                "`let` in an expression takes bindings and one body expression",
                                "write `(let ((x 1)) (+ x 1))`",
                            );
                            return None;
                        }
                        let body = self.expr(&parts[2])?;
                        ExprKind::Let { bindings, body: Box::new(body) }
                    }
                    "update" => {
                        if parts.len() != 5 {
                            self.arity(
                                span,
                                "`update` takes a map, a key, a binding and an expression",
                                "write `(update stock sku (qty 0) (+ qty 1))`",
                            );
                            return None;
                        }
                        let map = self.expr(&parts[1]);
                        let key = self.expr(&parts[2]);
                        let (binding, default) = match parts[3].as_list() {
                            Some([n, d]) => (self.name(n, "a binding name"), self.expr(d)),
                            _ => {
                                self.malformed(
                                    parts[3].span,
                                    "expected `(NAME DEFAULT)`",
                                    "write `(update stock sku (qty 0) (+ qty 1))`",
                                );
                                (None, None)
                            }
                        };
                        let body = self.expr(&parts[4]);
                        ExprKind::Update {
                            map: Box::new(map?),
                            key: Box::new(key?),
                            binding: binding?,
                            default: Box::new(default?),
                            body: Box::new(body?),
                        }
                    }
                    "make" => {
                        let record = self.name_at(parts, 1, span, "the record type")?;
                        let fields = parts[2..].iter().filter_map(|f| self.field_init(f)).collect();
                        ExprKind::Make { record, fields }
                    }
                    "as" => {
                        if parts.len() != 3 {
                            self.arity(span, "`as` takes a type and a value", "write `(as u64 count)`");
                            return None;
                        }
                        let ty = self.type_expr(&parts[1]);
                        let value = self.expr(&parts[2]);
                        ExprKind::As { ty: ty?, value: Box::new(value?) }
                    }
                    _ => {
                        let op = Ident { name: head.to_string(), span: parts[0].span };
                        let args: Vec<Expr> = parts[1..].iter().filter_map(|a| self.expr(a)).collect();
                        if args.len() != parts.len() - 1 {
                            return None;
                        }
                        ExprKind::Call { op, args }
                    }
                }
            }
        };
        Some(Expr { kind, span })
    }

    fn number(&mut self, text: &str, span: Span) -> Option<Expr> {
        let invalid = |this: &mut Parser, help: &str| {
            this.error(
                Diagnostic::new(codes::INVALID_NUMBER, span, format!("invalid number `{text}`"))
                    .label("not a number the language reads")
                    .help(help.to_string()),
            );
            None
        };
        let (negative, digits) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (whole, fraction) = match digits.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (digits, None),
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && fraction.is_some_and(all_digits) {
            let sign = if negative { "-" } else { "" };
            return invalid(self, &format!("write a digit before the point: `{sign}0.{}`", fraction.unwrap_or("")));
        }
        if !all_digits(whole) || fraction.is_some_and(|f| !all_digits(f)) {
            return invalid(self, "numbers are exact: write `42`, `-7` or `12.50` (no exponents, no floats)");
        }
        let scale = fraction.map_or(0, str::len);
        if scale > 18 {
            return invalid(self, "a decimal has at most 18 digits after the point");
        }
        let mut mantissa: i128 = 0;
        for b in whole.bytes().chain(fraction.unwrap_or("").bytes()) {
            mantissa = match mantissa.checked_mul(10).and_then(|m| m.checked_add(i128::from(b - b'0'))) {
                Some(m) if m <= i128::from(u64::MAX) * 1_000_000_000_000_000_000 => m,
                _ => {
                    self.error(
                        Diagnostic::new(codes::LITERAL_OUT_OF_RANGE, span, format!("number `{text}` is too large"))
                            .label("does not fit any numeric type"),
                    );
                    return None;
                }
            };
        }
        if negative {
            mantissa = -mantissa;
        }
        let kind = match fraction {
            Some(_) => ExprKind::Decimal { mantissa, scale: scale as u32 },
            None => ExprKind::Int(mantissa),
        };
        Some(Expr { kind, span })
    }

    fn type_expr(&mut self, sexp: &Sexp) -> Option<TypeExpr> {
        let span = sexp.span;
        let kind = match &sexp.kind {
            SexpKind::Symbol(_) => TypeExprKind::Named(self.name(sexp, "a type")?),
            SexpKind::List(parts) if !parts.is_empty() => {
                let head = parts[0].as_symbol().unwrap_or_default();
                let arity = match head {
                    "decimal" | "optional" | "list" | "set" => 2,
                    "map" => 3,
                    _ => {
                        self.unknown_form(
                            &parts[0],
                            "as a type constructor",
                            &["decimal", "optional", "map", "list", "set"],
                        );
                        return None;
                    }
                };
                if parts.len() != arity {
                    let shape = match head {
                        "decimal" => "`(decimal SCALE)`, e.g. `(decimal 2)`",
                        "map" => "`(map KEY VALUE)`",
                        _ => "a single type argument",
                    };
                    self.arity(span, format!("`{head}` takes {shape}"), format!("write {shape}"));
                    return None;
                }
                match head {
                    "decimal" => match &parts[1].kind {
                        SexpKind::Number(n) => match n.parse::<u32>() {
                            Ok(scale) if scale <= 18 => TypeExprKind::Decimal(scale),
                            _ => {
                                self.error(
                                    Diagnostic::new(
                                        codes::LITERAL_OUT_OF_RANGE,
                                        parts[1].span,
                                        "a decimal's scale must be from 0 to 18",
                                    )
                                    .label("scale out of range")
                                    .help("money usually has 2 to 4 digits after the point: `(decimal 2)`"),
                                );
                                return None;
                            }
                        },
                        _ => {
                            self.malformed(
                                parts[1].span,
                                "expected the number of digits after the point",
                                "write `(decimal 2)`",
                            );
                            return None;
                        }
                    },
                    "optional" => TypeExprKind::Optional(Box::new(self.type_expr(&parts[1])?)),
                    "list" => TypeExprKind::List(Box::new(self.type_expr(&parts[1])?)),
                    "set" => TypeExprKind::Set(Box::new(self.type_expr(&parts[1])?)),
                    _ => {
                        let k = self.type_expr(&parts[1]);
                        let v = self.type_expr(&parts[2]);
                        TypeExprKind::Map(Box::new(k?), Box::new(v?))
                    }
                }
            }
            _ => {
                self.malformed(span, format!("expected a type, found {}", sexp.describe()), "a type is a name like `u64`, `string`, `money`, or `(decimal 2)`, `(optional T)`, `(map K V)`, `(list T)`, `(set T)`");
                return None;
            }
        };
        Some(TypeExpr { kind, span })
    }

    /// `(NAME TYPE [DEFAULT] [(doc "...")])`
    fn field(&mut self, sexp: &Sexp, allow_default: bool, shape: &str) -> Option<FieldDecl> {
        let Some(parts) = sexp.as_list().filter(|p| p.len() >= 2) else {
            self.malformed(
                sexp.span,
                format!("expected a field: {shape}"),
                format!("write {shape}, e.g. `(amount money)`"),
            );
            return None;
        };
        let name = self.name(&parts[0], "a field name");
        let ty = self.type_expr(&parts[1]);
        let mut doc = None;
        let mut default = None;
        let mut default_given = false;
        for extra in &parts[2..] {
            if extra.head() == Some("doc") {
                self.set_doc(&mut doc, extra);
            } else if allow_default && !default_given {
                default_given = true;
                default = self.expr(extra);
            } else {
                self.malformed(
                    extra.span,
                    format!("unexpected item in a field; expected {shape}"),
                    if allow_default {
                        "a state field is `(name type default)`"
                    } else {
                        "only state fields have defaults"
                    },
                );
            }
        }
        Some(FieldDecl { name: name?, ty: ty?, default, default_given, doc, span: sexp.span })
    }

    // --- small helpers ---------------------------------------------------------------------------------

    /// A non-empty list whose head is a symbol; reports anything else.
    fn form<'s>(&mut self, sexp: &'s Sexp, what: &str) -> Option<&'s [Sexp]> {
        match sexp.as_list() {
            Some(parts) if parts.first().is_some_and(|h| h.as_symbol().is_some()) => Some(parts),
            _ => {
                self.malformed(
                    sexp.span,
                    format!("expected {what}, found {}", sexp.describe()),
                    "every form is a list that starts with a name: `(name ...)`",
                );
                None
            }
        }
    }

    fn arg_at<'s>(&mut self, parts: &'s [Sexp], index: usize, form_span: Span, what: &str) -> Option<&'s Sexp> {
        match parts.get(index) {
            Some(sexp) => Some(sexp),
            None => {
                let head = parts.first().and_then(Sexp::as_symbol).unwrap_or("form");
                self.error(
                    Diagnostic::new(codes::WRONG_ARITY, form_span, format!("`{head}` is missing {what}"))
                        .label(format!("expected {what} here")),
                );
                None
            }
        }
    }

    fn name_at(&mut self, parts: &[Sexp], index: usize, form_span: Span, what: &str) -> Option<Ident> {
        let sexp = self.arg_at(parts, index, form_span, what)?;
        self.name(sexp, what)
    }

    fn string_at(&mut self, parts: &[Sexp], index: usize, form_span: Span, what: &str) -> Option<(String, Span)> {
        let sexp = self.arg_at(parts, index, form_span, what)?;
        match &sexp.kind {
            SexpKind::Str(s) => Some((s.clone(), sexp.span)),
            _ => {
                self.error(
                    Diagnostic::new(
                        codes::EXPECTED_STRING,
                        sexp.span,
                        format!("expected {what} as a string, found {}", sexp.describe()),
                    )
                    .label("expected a string")
                    .help("put text in double quotes: \"like this\""),
                );
                None
            }
        }
    }

    fn name(&mut self, sexp: &Sexp, what: &str) -> Option<Ident> {
        match &sexp.kind {
            SexpKind::Symbol(s) => self.check_name(s, sexp.span, what),
            _ => {
                self.error(
                    Diagnostic::new(
                        codes::INVALID_NAME,
                        sexp.span,
                        format!("expected {what}, found {}", sexp.describe()),
                    )
                    .label("expected a name")
                    .help("names are kebab-case words: `account-id`"),
                );
                None
            }
        }
    }

    fn check_name(&mut self, name: &str, span: Span, what: &str) -> Option<Ident> {
        if is_kebab(name) {
            return Some(Ident { name: name.to_string(), span });
        }
        let hint = kebab_hint(name);
        let help = if is_kebab(&hint) {
            format!("names are kebab-case: write `{hint}`")
        } else {
            "names are kebab-case: lowercase letters and digits joined by `-`, starting with a letter".to_string()
        };
        self.error(
            Diagnostic::new(codes::INVALID_NAME, span, format!("`{name}` is not a valid name"))
                .label(format!("expected {what}"))
                .help(help),
        );
        None
    }

    fn no_extra(&mut self, parts: &[Sexp], max: usize, shape: &str) {
        if parts.len() > max {
            let span = parts[max].span.to(parts[parts.len() - 1].span);
            self.error(
                Diagnostic::new(codes::WRONG_ARITY, span, "too many arguments")
                    .label("unexpected")
                    .help(format!("the form is {shape}")),
            );
        }
    }

    fn arity(&mut self, span: Span, message: impl Into<String>, help: impl Into<String>) {
        self.error(Diagnostic::new(codes::WRONG_ARITY, span, message).help(help));
    }

    fn missing(&mut self, span: Span, message: &str, help: &str) {
        self.error(Diagnostic::new(codes::MISSING_CLAUSE, span, message).label("in this form").help(help));
    }

    fn duplicate_clause(&mut self, clause: &Sexp, name: &str) {
        self.error(
            Diagnostic::new(codes::DUPLICATE_CLAUSE, clause.span, format!("`{name}` given twice"))
                .label("second one")
                .help(format!("give `{name}` once")),
        );
    }

    fn set_doc(&mut self, slot: &mut Option<Doc>, form: &Sexp) {
        let parts = form.as_list().unwrap_or_default();
        if form.head() != Some("doc") {
            self.malformed(
                form.span,
                format!("expected `(doc \"...\")`, found {}", form.describe()),
                "write `(doc \"what this is for\")`",
            );
            return;
        }
        if slot.is_some() {
            self.duplicate_clause(form, "doc");
            return;
        }
        let Some((text, _)) = self.string_at(parts, 1, form.span, "the documentation text") else {
            return;
        };
        self.no_extra(parts, 2, "`(doc \"...\")`");
        *slot = Some(Doc { text, span: form.span });
    }

    fn unknown_form(&mut self, head: &Sexp, context: &str, known: &[&str]) {
        let name = head.as_symbol().unwrap_or_default();
        let suggestion = did_you_mean(name, known.iter().copied());
        let help = match suggestion {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("expected one of: {}", known.join(", ")),
        };
        self.error(
            Diagnostic::new(codes::UNKNOWN_FORM, head.span, format!("unknown form `{name}` {context}"))
                .label("not known here")
                .help(help),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kebab_names() {
        assert!(is_kebab("account-id"));
        assert!(is_kebab("a1"));
        assert!(!is_kebab("AccountId"));
        assert!(!is_kebab("account_id"));
        assert!(!is_kebab("-x"));
        assert!(!is_kebab("x--y"));
        assert!(!is_kebab("x-"));
        assert_eq!(kebab_hint("AccountId"), "account-id");
        assert_eq!(kebab_hint("account_id"), "account-id");
    }
}
