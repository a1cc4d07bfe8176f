//! Resolve and check: turns the AST of one domain (its root file and includes) into the typed [`model`].
//!
//! Every name is resolved ("did you mean" on misses), every expression typed, every rule of the language
//! enforced. All problems are collected; the model is returned only when there is no error.

use crate::model::*;
use anthill_dsl::ast;
use anthill_dsl::diagnostic::{codes, did_you_mean, Diagnostic};
use anthill_dsl::parse::RESERVED_NAMES;
use anthill_dsl::Span;
use std::collections::{HashMap, HashSet};

/// Rejections every aggregate has: the runtime returns them when checked arithmetic fails.
pub const BUILTIN_REJECTIONS: &[(&str, &str)] =
    &[("arithmetic-overflow", "a computed value does not fit its type"), ("division-by-zero", "division by zero")];

const BUILTIN_TYPES: &[&str] = &["bool", "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "string", "timestamp"];

fn builtin_type(name: &str) -> Option<Ty> {
    Some(match name {
        "bool" => Ty::Bool,
        "string" => Ty::String,
        "timestamp" => Ty::Timestamp,
        _ => Ty::Int(*IntTy::ALL.iter().find(|i| i.name() == name)?),
    })
}

fn name(ident: &ast::Ident) -> Name {
    Name { dsl: ident.name.clone(), span: ident.span }
}

fn doc(d: &Option<ast::Doc>) -> Option<String> {
    d.as_ref().map(|d| d.text.clone())
}

/// Checks one domain. `items` are the root's items followed by those of included files, in order.
pub fn check_domain(
    header: &ast::DomainHeader,
    file: anthill_dsl::FileId,
    files: Vec<anthill_dsl::FileId>,
    items: &[&ast::Item],
) -> (Option<Domain>, Vec<Diagnostic>) {
    let mut checker = Checker {
        diagnostics: Vec::new(),
        types: Vec::new(),
        type_index: HashMap::new(),
        aggregates: Vec::new(),
        facts: Vec::new(),
        emit_facts: HashMap::new(),
        poisoned: HashSet::new(),
        commands_in_error: HashSet::new(),
        errors_not_shown: 0,
        unknown: HashMap::new(),
    };
    let mut domain = Domain {
        name: name(&header.name),
        doc: doc(&header.doc),
        file,
        files,
        types: Vec::new(),
        aggregates: Vec::new(),
        processes: Vec::new(),
        views: Vec::new(),
        scenarios: Vec::new(),
    };
    checker.declare_types(items);
    let aggregate_decls: Vec<&ast::AggregateDecl> = items
        .iter()
        .filter_map(|i| match i {
            ast::Item::Aggregate(a) => Some(a),
            _ => None,
        })
        .collect();
    checker.declare_aggregates(&aggregate_decls);
    for (index, decl) in aggregate_decls.iter().enumerate() {
        checker.check_aggregate(AggregateId(index as u32), decl);
    }
    let mut seen: HashMap<&str, Span> = HashMap::new();
    for item in items {
        match item {
            ast::Item::Process(p) => {
                checker.unique(&mut seen, &p.name, "process or view");
                domain.processes.push(checker.check_process(p));
            }
            ast::Item::View(v) => {
                checker.unique(&mut seen, &v.name, "process or view");
                if let Some(view) = checker.check_view(v) {
                    domain.views.push(view);
                }
            }
            _ => {}
        }
    }
    let mut titles: HashMap<&str, Span> = HashMap::new();
    for item in items {
        if let ast::Item::Scenario(s) = item {
            if let Some(first) = titles.insert(&s.title, s.title_span) {
                checker.error(
                    Diagnostic::new(
                        codes::DUPLICATE_DEFINITION,
                        s.title_span,
                        format!("scenario \"{}\" is defined twice", s.title),
                    )
                    .label("second scenario with this title")
                    .secondary(first, "first one here")
                    .help("give every scenario its own title"),
                );
            }
            if let Some(scenario) = checker.check_scenario(s) {
                domain.scenarios.push(scenario);
            }
        }
    }
    // Only on an error-free model: a failed `emit` would otherwise cascade into "never emitted".
    if !checker.diagnostics.iter().any(Diagnostic::is_error) {
        checker.event_warnings(&aggregate_decls);
    }
    domain.types = std::mem::take(&mut checker.types);
    domain.aggregates = std::mem::take(&mut checker.aggregates);
    let mut diagnostics = checker.diagnostics;
    for (index, unknown_name, more) in checker.unknown.into_values() {
        if more > 0 {
            let (uses, are) = if more == 1 { ("use", "is") } else { ("uses", "are") };
            diagnostics[index].notes.push(format!("{more} more {uses} of `{unknown_name}` {are} not shown"));
        }
    }
    // Errors not shown are consequences of one that is.
    assert!(
        checker.errors_not_shown == 0 || diagnostics.iter().any(Diagnostic::is_error),
        "errors were left unreported without the one they follow from"
    );
    if !diagnostics.iter().any(Diagnostic::is_error) {
        crate::lower::check_rust_names(&domain, &mut diagnostics);
    }
    let ok = !diagnostics.iter().any(Diagnostic::is_error);
    (ok.then_some(domain), diagnostics)
}

/// Where a statement or expression is checked: decides which names and statements are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ctx {
    Command,
    /// The `require`s an extern command checks before its Rust function runs.
    Extern,
    Evolve,
    Invariant,
    /// A policy's condition, tolerance or on-violation reaction.
    Policy,
    Process,
    View,
    Scenario,
    Default,
}

struct Local {
    name: Name,
    /// `None` when its value is in error (reported there): a use of it is not reported again.
    ty: Option<Ty>,
    used: bool,
}

/// The names visible to an expression.
struct Scope<'s> {
    ctx: Ctx,
    aggregate: Option<AggregateId>,
    params: &'s [Field],
    state: &'s [Field],
    event: &'s [Field],
    /// The type of `id`, where there is an aggregate id in scope.
    id: Option<Ty>,
    locals: Vec<Local>,
}

impl<'s> Scope<'s> {
    fn new(ctx: Ctx) -> Scope<'s> {
        Scope { ctx, aggregate: None, params: &[], state: &[], event: &[], id: None, locals: Vec::new() }
    }
}

struct Checker {
    diagnostics: Vec<Diagnostic>,
    types: Vec<TypeDef>,
    type_index: HashMap<String, (TypeId, Span)>,
    aggregates: Vec<Aggregate>,
    /// Known `lhs >= rhs` facts from enclosing guards, for the unsigned-subtraction warning.
    facts: Vec<(Expr, Expr)>,
    /// Per event: the `lhs >= rhs` facts over state and event fields that hold at every place the event is
    /// emitted, so that its `on` handler knows the command's guards (`None`: not emitted yet).
    emit_facts: HashMap<(AggregateId, EventId), Vec<(Expr, Expr)>>,
    /// Names of fields dropped because their type is in error (reported there): a use of one is not reported
    /// again, so that one misspelt type gives one diagnostic, not one per use of its field.
    poisoned: HashSet<String>,
    /// Commands (aggregate and command index) with an error in their body or policies: what they can be
    /// rejected with is not known, so a scenario expecting a rejection of one is not checked against it.
    commands_in_error: HashSet<(u32, u32)>,
    /// Errors not reported again: uses of a poisoned name or of a binding whose value failed, and the later
    /// uses of an unknown name (counted in a note on the first).
    errors_not_shown: usize,
    /// Per unknown name (by kind and scope, see [`Checker::unknown`]): the first use's diagnostic (an index
    /// into `diagnostics`), the name, and how many more uses were not reported (a misspelt declaration would
    /// otherwise give one error per use).
    unknown: HashMap<String, (usize, String, usize)>,
}

impl Checker {
    fn error(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// Errors so far, those not shown again included.
    fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count() + self.errors_not_shown
    }

    /// Reports a name that is not found, once per `key` (its kind and where it was looked up): later uses are
    /// counted in a note on the first, since a misspelt declaration makes every one of them unknown.
    fn unknown(&mut self, key: String, unknown_name: &str, diagnostic: Diagnostic) {
        if let Some((_, _, more)) = self.unknown.get_mut(&key) {
            *more += 1;
            self.errors_not_shown += 1;
            return;
        }
        self.unknown.insert(key, (self.diagnostics.len(), unknown_name.to_string(), 0));
        self.error(diagnostic);
    }

    /// Whether `name` is a field dropped for an error in its type; a use of it counts as an error not shown.
    fn poisoned(&mut self, name: &str) -> bool {
        let poisoned = self.poisoned.contains(name);
        self.errors_not_shown += usize::from(poisoned);
        poisoned
    }

    fn unique<'a>(&mut self, seen: &mut HashMap<&'a str, Span>, ident: &'a ast::Ident, what: &str) -> bool {
        if let Some(first) = seen.get(ident.name.as_str()) {
            self.error(
                Diagnostic::new(
                    codes::DUPLICATE_DEFINITION,
                    ident.span,
                    format!("{what} `{}` is defined more than once", ident.name),
                )
                .label("defined again here")
                .secondary(*first, "first defined here")
                .help("rename or remove one of them"),
            );
            false
        } else {
            seen.insert(&ident.name, ident.span);
            true
        }
    }

    fn reserved(&mut self, ident: &ast::Ident, what: &str) -> bool {
        if RESERVED_NAMES.contains(&ident.name.as_str()) {
            let help = match ident.name.as_str() {
                "id" => "every aggregate already has `id` (its key); name the field after what it identifies, e.g. `order-id`".to_string(),
                "version" => "every aggregate already has `version`; pick another name, e.g. `revision`".to_string(),
                other => format!("pick another name than `{other}`"),
            };
            self.error(
                Diagnostic::new(
                    codes::RESERVED_NAME,
                    ident.span,
                    format!("`{}` is reserved and cannot name {what}", ident.name),
                )
                .label("reserved name")
                .help(help),
            );
            return true;
        }
        false
    }

    // --- types ----------------------------------------------------------------------------------------

    fn declare_types(&mut self, items: &[&ast::Item]) {
        // First pass: register every name so that declarations can refer to each other in any order.
        let mut decls: Vec<&ast::Item> = Vec::new();
        for item in items {
            let (ident, doc_text) = match item {
                ast::Item::Type(t) => (&t.name, &t.doc),
                ast::Item::Id(t) => (&t.name, &t.doc),
                ast::Item::Enum(t) => (&t.name, &t.doc),
                ast::Item::Record(t) => (&t.name, &t.doc),
                _ => continue,
            };
            if BUILTIN_TYPES.contains(&ident.name.as_str()) || ident.name == "decimal" {
                self.error(
                    Diagnostic::new(codes::RESERVED_NAME, ident.span, format!("`{}` is a built-in type", ident.name))
                        .label("cannot be redefined")
                        .help("pick another name for your type"),
                );
                continue;
            }
            if let Some((_, first)) = self.type_index.get(&ident.name) {
                let first = *first;
                self.error(
                    Diagnostic::new(
                        codes::DUPLICATE_DEFINITION,
                        ident.span,
                        format!("type `{}` is defined more than once", ident.name),
                    )
                    .label("defined again here")
                    .secondary(first, "first defined here")
                    .help("rename or remove one of them"),
                );
                continue;
            }
            let id = TypeId(self.types.len() as u32);
            self.type_index.insert(ident.name.clone(), (id, ident.span));
            // A placeholder of the right category until resolved below, so that uses of a type declared
            // later resolve to `Ty::Record`/`Ty::Enum`/`Ty::Id` already.
            let placeholder = match item {
                ast::Item::Id(_) => TypeDefKind::Id { repr: Ty::String },
                ast::Item::Enum(_) => TypeDefKind::Enum { variants: Vec::new() },
                ast::Item::Record(_) => TypeDefKind::Record { fields: Vec::new() },
                _ => TypeDefKind::Alias { ty: Ty::Bool },
            };
            self.types.push(TypeDef { name: name(ident), doc: doc(doc_text), kind: placeholder });
            decls.push(item);
        }
        // Aliases first (with cycle detection), then the rest, which may use aliases.
        let mut alias_state: HashMap<String, AliasState> = HashMap::new();
        for item in &decls {
            if let ast::Item::Type(t) = item {
                self.resolve_alias(t, items, &mut alias_state);
            }
        }
        for item in &decls {
            match item {
                ast::Item::Id(t) => {
                    let repr = match &t.repr {
                        None => Ty::String,
                        Some(r) => match self.resolve_type(r) {
                            Some(ty @ (Ty::String | Ty::Int(_))) => ty,
                            Some(_) => {
                                self.error(
                                    Diagnostic::new(codes::TYPE_MISMATCH, r.span, "an id is a string or an integer")
                                        .label("not allowed as an id's representation")
                                        .help("write `(id order-id)` for a string id or `(id order-id u64)`"),
                                );
                                Ty::String
                            }
                            None => Ty::String,
                        },
                    };
                    self.set_type_kind(&t.name, TypeDefKind::Id { repr });
                }
                ast::Item::Enum(t) => {
                    let mut seen = HashMap::new();
                    let mut variants = Vec::new();
                    for v in &t.variants {
                        if self.unique(&mut seen, &v.name, "variant") {
                            variants.push(Variant { name: name(&v.name), doc: doc(&v.doc) });
                        }
                    }
                    self.set_type_kind(&t.name, TypeDefKind::Enum { variants });
                }
                ast::Item::Record(t) => {
                    let fields = self.fields(&t.fields, "a record field");
                    self.set_type_kind(&t.name, TypeDefKind::Record { fields });
                }
                _ => {}
            }
        }
        self.check_record_recursion(&decls);
    }

    fn set_type_kind(&mut self, ident: &ast::Ident, kind: TypeDefKind) {
        if let Some((id, _)) = self.type_index.get(&ident.name) {
            self.types[id.0 as usize].kind = kind;
        }
    }

    fn resolve_alias(
        &mut self,
        t: &ast::TypeAlias,
        items: &[&ast::Item],
        state: &mut HashMap<String, AliasState>,
    ) -> Option<Ty> {
        match state.get(&t.name.name) {
            Some(AliasState::Done(ty)) => return ty.clone(),
            Some(AliasState::InProgress) => {
                self.error(
                    Diagnostic::new(
                        codes::UNKNOWN_TYPE,
                        t.name.span,
                        format!("type alias `{}` refers to itself", t.name.name),
                    )
                    .label("cycle through this alias")
                    .help("an alias must end in a concrete type such as `(decimal 2)`"),
                );
                state.insert(t.name.name.clone(), AliasState::Done(None));
                return None;
            }
            None => {}
        }
        state.insert(t.name.name.clone(), AliasState::InProgress);
        // Resolve aliases this one mentions before it.
        let mut mentioned = Vec::new();
        collect_type_names(&t.ty, &mut mentioned);
        for n in mentioned {
            if let Some(other) = items.iter().find_map(|i| match i {
                ast::Item::Type(o) if o.name.name == n && o.span != t.span => Some(o),
                _ => None,
            }) {
                self.resolve_alias(other, items, state);
            }
        }
        let ty = if matches!(state.get(&t.name.name), Some(AliasState::Done(None))) {
            None
        } else {
            self.resolve_type(&t.ty)
        };
        if let Some(ty) = &ty {
            self.set_type_kind(&t.name, TypeDefKind::Alias { ty: ty.clone() });
        }
        state.insert(t.name.name.clone(), AliasState::Done(ty.clone()));
        ty
    }

    fn check_record_recursion(&mut self, decls: &[&ast::Item]) {
        for item in decls {
            let ast::Item::Record(r) = item else { continue };
            let Some((id, _)) = self.type_index.get(&r.name.name).copied() else { continue };
            let mut stack = vec![id];
            let mut visited = HashSet::new();
            while let Some(current) = stack.pop() {
                let TypeDefKind::Record { fields } = &self.types[current.0 as usize].kind else { continue };
                for f in fields {
                    let mut inner = &f.ty;
                    while let Ty::Optional(t) = inner {
                        inner = t;
                    }
                    if let Ty::Record(next) = inner {
                        if *next == id {
                            let span = r.name.span;
                            self.error(
                                Diagnostic::new(
                                    codes::TYPE_MISMATCH,
                                    span,
                                    format!("record `{}` contains itself", r.name.name),
                                )
                                .label("infinitely large")
                                .help("hold the nested values in a `(list ...)` or a `(map ...)` instead"),
                            );
                            stack.clear();
                            break;
                        }
                        if visited.insert(*next) {
                            stack.push(*next);
                        }
                    }
                }
            }
        }
    }

    fn type_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = BUILTIN_TYPES.to_vec();
        names.extend(self.type_index.keys().map(String::as_str));
        names
    }

    fn resolve_type(&mut self, t: &ast::TypeExpr) -> Option<Ty> {
        match &t.kind {
            ast::TypeExprKind::Named(ident) => {
                if let Some(ty) = builtin_type(&ident.name) {
                    return Some(ty);
                }
                match self.type_index.get(&ident.name) {
                    Some((id, _)) => {
                        let def = &self.types[id.0 as usize];
                        Some(match &def.kind {
                            TypeDefKind::Id { .. } => Ty::Id(*id),
                            TypeDefKind::Enum { .. } => Ty::Enum(*id),
                            TypeDefKind::Record { .. } => Ty::Record(*id),
                            TypeDefKind::Alias { ty } => ty.clone(),
                        })
                    }
                    None => {
                        let help = match ident.name.as_str() {
                            "int" | "integer" | "number" => {
                                Some("integers are sized: `u64`, `i64`, `u32`...".to_string())
                            }
                            "float" | "f64" | "f32" | "double" | "money" | "decimal" => Some(
                                "use an exact fixed-point type: `(decimal 2)`, e.g. `(type money (decimal 2))`"
                                    .to_string(),
                            ),
                            "str" | "text" => Some("did you mean `string`?".to_string()),
                            _ => hint(&ident.name, self.type_names()),
                        };
                        self.unknown(
                            format!("type {}", ident.name),
                            &ident.name,
                            Diagnostic::new(codes::UNKNOWN_TYPE, ident.span, format!("unknown type `{}`", ident.name))
                                .label("not a type")
                                .maybe_help(help.or_else(|| {
                                    Some(
                                        "declare it with `(type ...)`, `(id ...)`, `(enum ...)` or `(record ...)`"
                                            .into(),
                                    )
                                })),
                        );
                        None
                    }
                }
            }
            ast::TypeExprKind::Decimal(scale) => Some(Ty::Decimal(*scale)),
            ast::TypeExprKind::Optional(inner) => Some(Ty::Optional(Box::new(self.resolve_type(inner)?))),
            ast::TypeExprKind::List(inner) => Some(Ty::List(Box::new(self.resolve_type(inner)?))),
            ast::TypeExprKind::Set(inner) => {
                let ty = self.resolve_type(inner)?;
                self.require_key_type(&ty, inner.span, "a set's element")?;
                Some(Ty::Set(Box::new(ty)))
            }
            ast::TypeExprKind::Map(k, v) => {
                let key = self.resolve_type(k);
                let value = self.resolve_type(v);
                let key = key?;
                self.require_key_type(&key, k.span, "a map's key")?;
                Some(Ty::Map(Box::new(key), Box::new(value?)))
            }
        }
    }

    fn require_key_type(&mut self, ty: &Ty, span: Span, what: &str) -> Option<()> {
        if ty.is_ordered(&self.types) {
            return Some(());
        }
        let shown = self.show(ty);
        self.error(
            Diagnostic::new(codes::INVALID_KEY_TYPE, span, format!("`{shown}` cannot be {what}"))
                .label("not an ordered type")
                .help("keys are numbers, strings, ids, enums, timestamps or records of those"),
        );
        None
    }

    fn fields(&mut self, decls: &[ast::FieldDecl], what: &str) -> Vec<Field> {
        let mut seen = HashMap::new();
        let mut fields = Vec::new();
        for f in decls {
            if !self.unique(&mut seen, &f.name, "field") || self.reserved(&f.name, what) {
                continue;
            }
            match self.resolve_type(&f.ty) {
                Some(ty) => fields.push(Field { name: name(&f.name), ty, doc: doc(&f.doc), default: None }),
                None => {
                    self.poisoned.insert(f.name.name.clone());
                }
            }
        }
        fields
    }

    /// How a type is written in the model, for messages.
    fn show(&self, ty: &Ty) -> String {
        match ty {
            Ty::Bool => "bool".into(),
            Ty::Int(i) => i.name().into(),
            Ty::Decimal(s) => format!("(decimal {s})"),
            Ty::String => "string".into(),
            Ty::Timestamp => "timestamp".into(),
            Ty::Id(id) | Ty::Enum(id) | Ty::Record(id) => self.types[id.0 as usize].name.dsl.clone(),
            Ty::Optional(t) => format!("(optional {})", self.show(t)),
            Ty::Map(k, v) => format!("(map {} {})", self.show(k), self.show(v)),
            Ty::List(t) => format!("(list {})", self.show(t)),
            Ty::Set(t) => format!("(set {})", self.show(t)),
        }
    }
}

enum AliasState {
    InProgress,
    Done(Option<Ty>),
}

fn collect_type_names(t: &ast::TypeExpr, out: &mut Vec<String>) {
    match &t.kind {
        ast::TypeExprKind::Named(i) => out.push(i.name.clone()),
        ast::TypeExprKind::Decimal(_) => {}
        ast::TypeExprKind::Optional(x) | ast::TypeExprKind::List(x) | ast::TypeExprKind::Set(x) => {
            collect_type_names(x, out)
        }
        ast::TypeExprKind::Map(k, v) => {
            collect_type_names(k, out);
            collect_type_names(v, out);
        }
    }
}

mod aggregates;
mod exprs;
mod items;
mod stmts;

/// "did you mean `x`?" for the candidate closest to `name`, if one is close enough.
fn hint<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    did_you_mean(name, candidates).map(|s| format!("did you mean `{s}`?"))
}
