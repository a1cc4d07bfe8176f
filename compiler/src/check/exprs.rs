//! Typing expressions: literals take their type from context, arithmetic is exact, names resolve through
//! the scope (locals, then parameters or event fields, then state).

use super::{Checker, Ctx, Local, Scope};
use crate::model::*;
use anthill_dsl::ast;
use anthill_dsl::diagnostic::{codes, did_you_mean, Diagnostic};
use anthill_dsl::Span;

/// Every operator and built-in function, for "did you mean".
const OPERATORS: &[&str] = &[
    "+",
    "-",
    "*",
    "/",
    "mod",
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "and",
    "or",
    "not",
    "min",
    "max",
    "abs",
    "get",
    "put",
    "remove",
    "contains",
    "insert",
    "push",
    "count",
    "sum",
    "is-empty",
    "first",
    "last",
    "min-key",
    "max-key",
    "some",
    "is-some",
    "is-none",
    "unwrap-or",
    "now",
    "occurred-at",
    "if",
    "cond",
    "let",
    "update",
    "make",
    "as",
];

/// Literals and `none` need a type from context; check the other operand first.
fn needs_context(e: &ast::Expr) -> bool {
    matches!(
        e.kind,
        ast::ExprKind::Int(_) | ast::ExprKind::Decimal { .. } | ast::ExprKind::EnumLit(_) | ast::ExprKind::None
    )
}

fn pow10(scale: u32) -> i128 {
    10i128.pow(scale)
}

impl Checker {
    /// Checks `e`, requiring type `expected` when given.
    pub(super) fn expr(&mut self, e: &ast::Expr, expected: Option<&Ty>, scope: &mut Scope) -> Option<Expr> {
        let checked = self.expr_inner(e, expected, scope)?;
        if let Some(expected) = expected {
            if &checked.ty != expected {
                self.mismatch(e.span, expected, &checked.ty, None);
                return None;
            }
        }
        Some(checked)
    }

    pub(super) fn mismatch(&mut self, span: Span, expected: &Ty, found: &Ty, why: Option<&str>) {
        let (expected_s, found_s) = (self.show(expected), self.show(found));
        let mut d = Diagnostic::new(codes::TYPE_MISMATCH, span, format!("expected `{expected_s}`, found `{found_s}`"))
            .label(format!("this is `{found_s}`"));
        if let Some(why) = why {
            d = d.note(why.to_string());
        }
        let help = match (expected, found) {
            (Ty::Optional(inner), f) if **inner == *f => Some("wrap the value: `(some VALUE)`".to_string()),
            (e, Ty::Optional(inner)) if **inner == *e => Some("unwrap it: `(unwrap-or VALUE DEFAULT)`".to_string()),
            (e, f) if e.is_numeric() && f.is_numeric() => Some(format!("convert it: `(as {expected_s} ...)`")),
            _ => None,
        };
        self.error(d.maybe_help(help));
    }

    fn expected_literal(&mut self, span: Span, expected: &Ty, what: &str) -> Option<Expr> {
        let shown = self.show(expected);
        self.error(
            Diagnostic::new(codes::TYPE_MISMATCH, span, format!("expected `{shown}`, found {what}"))
                .label(format!("this is {what}")),
        );
        None
    }

    fn expr_inner(&mut self, e: &ast::Expr, expected: Option<&Ty>, scope: &mut Scope) -> Option<Expr> {
        let span = e.span;
        let mk = |kind: ExprKind, ty: Ty| Some(Expr { kind, ty, span });
        match &e.kind {
            ast::ExprKind::Int(v) => {
                let v = *v;
                match expected {
                    Some(Ty::Int(t)) => {
                        if v < t.min() || v > t.max() {
                            return self.out_of_range(
                                span,
                                &format!("{v} does not fit `{}` ({} to {})", t.name(), t.min(), t.max()),
                            );
                        }
                        mk(ExprKind::Int(v), Ty::Int(*t))
                    }
                    Some(Ty::Decimal(s)) => {
                        let m = v.checked_mul(pow10(*s)).filter(|m| *m >= i64::MIN.into() && *m <= i64::MAX.into());
                        match m {
                            Some(m) => mk(ExprKind::Decimal(m), Ty::Decimal(*s)),
                            None => self.out_of_range(span, &format!("{v} does not fit `(decimal {s})`")),
                        }
                    }
                    Some(Ty::Timestamp) => {
                        if v < 0 || v > i64::MAX.into() {
                            return self.out_of_range(span, "a timestamp is microseconds since 1970, from 0");
                        }
                        mk(ExprKind::Int(v), Ty::Timestamp)
                    }
                    Some(ty @ Ty::Id(id)) => match &self.types[id.0 as usize].kind {
                        TypeDefKind::Id { repr: Ty::Int(t) } if v >= t.min() && v <= t.max() => {
                            mk(ExprKind::Int(v), ty.clone())
                        }
                        _ => self.expected_literal(span, &ty.clone(), "an integer"),
                    },
                    Some(other) => self.expected_literal(span, &other.clone(), "an integer"),
                    None => {
                        let t = if v >= i64::MIN.into() && v <= i64::MAX.into() { IntTy::I64 } else { IntTy::U64 };
                        if v < t.min() || v > t.max() {
                            return self.out_of_range(span, "does not fit any integer type");
                        }
                        mk(ExprKind::Int(v), Ty::Int(t))
                    }
                }
            }
            ast::ExprKind::Decimal { mantissa, scale } => {
                let target = match expected {
                    Some(Ty::Decimal(s)) => *s,
                    Some(other) => return self.expected_literal(span, &other.clone(), "a decimal"),
                    None => *scale,
                };
                if *scale > target {
                    return self.out_of_range(
                        span,
                        &format!("this has {scale} digits after the point; `(decimal {target})` keeps {target}"),
                    );
                }
                let m = mantissa
                    .checked_mul(pow10(target - scale))
                    .filter(|m| *m >= i64::MIN.into() && *m <= i64::MAX.into());
                match m {
                    Some(m) => mk(ExprKind::Decimal(m), Ty::Decimal(target)),
                    None => self.out_of_range(span, &format!("does not fit `(decimal {target})`")),
                }
            }
            ast::ExprKind::Str(s) => match expected {
                Some(ty @ Ty::Id(id))
                    if matches!(self.types[id.0 as usize].kind, TypeDefKind::Id { repr: Ty::String }) =>
                {
                    mk(ExprKind::Str(s.clone()), ty.clone())
                }
                _ => mk(ExprKind::Str(s.clone()), Ty::String),
            },
            ast::ExprKind::Bool(b) => mk(ExprKind::Bool(*b), Ty::Bool),
            ast::ExprKind::EnumLit(v) => self.enum_literal(v, expected, span),
            ast::ExprKind::None => match expected {
                Some(ty @ Ty::Optional(_)) => mk(ExprKind::None, ty.clone()),
                Some(other) => self.expected_literal(span, &other.clone(), "`none`"),
                None => {
                    self.error(
                        Diagnostic::new(codes::AMBIGUOUS_ENUM, span, "cannot tell the type of `none` here")
                            .label("type unknown")
                            .help("use `none` where its type is known, e.g. `(set note none)` or `(= note none)`"),
                    );
                    None
                }
            },
            ast::ExprKind::Var(path) => self.var(path, scope, span),
            ast::ExprKind::Call { op, args } => self.call(op, args, expected, scope, span),
            ast::ExprKind::If { cond, then, otherwise } => {
                let cond = self.expr(cond, Some(&Ty::Bool), scope);
                let (pos, neg) = cond.as_ref().map_or((vec![], vec![]), |c| (facts_of(c, true), facts_of(c, false)));
                // A literal branch takes its type from the other branch, whichever comes first: `(if c 0 fee)`.
                let (then, otherwise) = if expected.is_none() && needs_context(then) && !needs_context(otherwise) {
                    let otherwise = self.with_facts(neg, |this| this.expr(otherwise, None, scope));
                    let hint = otherwise.as_ref().map(|o| o.ty.clone());
                    (self.with_facts(pos, |this| this.expr(then, hint.as_ref(), scope)), otherwise)
                } else {
                    let then = self.with_facts(pos, |this| this.expr(then, expected, scope));
                    let hint = expected.cloned().or_else(|| then.as_ref().map(|t| t.ty.clone()));
                    (then, self.with_facts(neg, |this| this.expr(otherwise, hint.as_ref(), scope)))
                };
                let (cond, then, otherwise) = (cond?, then?, otherwise?);
                let ty = then.ty.clone();
                mk(ExprKind::If { cond: Box::new(cond), then: Box::new(then), otherwise: Box::new(otherwise) }, ty)
            }
            ast::ExprKind::Cond { arms, otherwise } => {
                // Lowered to nested `if`s, checking arms in order; literal values before the first typed
                // value wait for its type: `(cond (c 0) (else fee))`.
                let mut checked_arms = Vec::new();
                let mut deferred = Vec::new();
                let mut ty_hint = expected.cloned();
                for (i, (c, v)) in arms.iter().enumerate() {
                    let c = self.expr(c, Some(&Ty::Bool), scope);
                    if ty_hint.is_none() && needs_context(v) {
                        deferred.push(i);
                        checked_arms.push((c, None));
                        continue;
                    }
                    let pos = c.as_ref().map_or(vec![], |c| facts_of(c, true));
                    let v = self.with_facts(pos, |this| this.expr(v, ty_hint.as_ref(), scope));
                    if let Some(v) = &v {
                        ty_hint.get_or_insert(v.ty.clone());
                    }
                    checked_arms.push((c, v));
                }
                let result = self.expr(otherwise, ty_hint.as_ref(), scope);
                if let Some(r) = &result {
                    ty_hint.get_or_insert(r.ty.clone());
                }
                for i in deferred {
                    let pos = checked_arms[i].0.as_ref().map_or(vec![], |c| facts_of(c, true));
                    checked_arms[i].1 = self.with_facts(pos, |this| this.expr(&arms[i].1, ty_hint.as_ref(), scope));
                }
                let mut result = result?;
                for (c, v) in checked_arms.into_iter().rev() {
                    let (c, v) = (c?, v?);
                    let ty = v.ty.clone();
                    let arm_span = c.span.to(v.span);
                    result = Expr {
                        kind: ExprKind::If { cond: Box::new(c), then: Box::new(v), otherwise: Box::new(result) },
                        ty,
                        span: arm_span,
                    };
                }
                result.span = span;
                Some(result)
            }
            ast::ExprKind::Let { bindings, body } => {
                let depth = scope.locals.len();
                let (checked, ok) = self.bindings(bindings, scope);
                let body = self.expr(body, expected, scope);
                self.pop_locals(scope, depth);
                let body = body?;
                if !ok {
                    return None;
                }
                let ty = body.ty.clone();
                mk(ExprKind::Let { bindings: checked, body: Box::new(body) }, ty)
            }
            ast::ExprKind::Update { map, key, binding, default, body } => {
                let map = self.expr(map, expected, scope)?;
                let Ty::Map(k, v) = map.ty.clone() else {
                    return self.unsupported(map.span, "`update` works on maps", &map.ty);
                };
                let key = self.expr(key, Some(&k), scope);
                let default = self.expr(default, Some(&v), scope);
                if self.reserved(binding, "a binding") {
                    return None;
                }
                let depth = scope.locals.len();
                scope.locals.push(Local { name: super::name(binding), ty: Some((*v).clone()), used: false });
                let body = self.expr(body, Some(&v), scope);
                self.pop_locals(scope, depth);
                let ty = map.ty.clone();
                mk(
                    ExprKind::Update {
                        map: Box::new(map),
                        key: Box::new(key?),
                        binding: super::name(binding),
                        default: Box::new(default?),
                        body: Box::new(body?),
                    },
                    ty,
                )
            }
            ast::ExprKind::Make { record, fields } => {
                let Some((id, _)) = self.type_index.get(&record.name).copied() else {
                    let help = super::hint(&record.name, self.type_index.keys().map(String::as_str));
                    self.error(
                        Diagnostic::new(codes::UNKNOWN_TYPE, record.span, format!("unknown record `{}`", record.name))
                            .label("not a record type")
                            .maybe_help(help),
                    );
                    return None;
                };
                let TypeDefKind::Record { fields: decls } = self.types[id.0 as usize].kind.clone() else {
                    self.error(
                        Diagnostic::new(
                            codes::TYPE_MISMATCH,
                            record.span,
                            format!("`{}` is not a record", record.name),
                        )
                        .label("`make` builds records"),
                    );
                    return None;
                };
                let values = self.field_values(&decls, fields, span, &format!("record `{}`", record.name), scope)?;
                mk(ExprKind::Make { record: id, fields: values }, Ty::Record(id))
            }
            ast::ExprKind::As { ty, value } => {
                let target = self.resolve_type(ty)?;
                if !target.is_numeric() {
                    return self.unsupported(ty.span, "`as` converts between numeric types", &target);
                }
                let hint = if needs_context(value) { Some(&target) } else { None };
                let value = self.expr(value, hint, scope)?;
                if !value.ty.is_numeric() {
                    return self.unsupported(value.span, "`as` converts between numeric types", &value.ty);
                }
                mk(ExprKind::As(Box::new(value)), target)
            }
        }
    }

    fn out_of_range(&mut self, span: Span, why: &str) -> Option<Expr> {
        self.error(Diagnostic::new(codes::LITERAL_OUT_OF_RANGE, span, "literal out of range").label(why.to_string()));
        None
    }

    fn unsupported(&mut self, span: Span, what: &str, ty: &Ty) -> Option<Expr> {
        let shown = self.show(ty);
        self.error(
            Diagnostic::new(codes::UNSUPPORTED_OPERAND, span, format!("{what}, not `{shown}`"))
                .label(format!("this is `{shown}`")),
        );
        None
    }

    fn enum_literal(&mut self, v: &ast::Ident, expected: Option<&Ty>, span: Span) -> Option<Expr> {
        let candidates: Vec<TypeId> = match expected {
            Some(Ty::Enum(id)) => vec![*id],
            Some(other) => {
                let other = other.clone();
                return self.expected_literal(span, &other, &format!("the enum value `'{}`", v.name));
            }
            None => (0..self.types.len() as u32)
                .map(TypeId)
                .filter(|id| matches!(self.types[id.0 as usize].kind, TypeDefKind::Enum { .. }))
                .collect(),
        };
        let mut found = Vec::new();
        for id in &candidates {
            if let TypeDefKind::Enum { variants } = &self.types[id.0 as usize].kind {
                if let Some(i) = variants.iter().position(|x| x.name.dsl == v.name) {
                    found.push((*id, i as u32));
                }
            }
        }
        match found.as_slice() {
            [(ty, variant)] => {
                Some(Expr { kind: ExprKind::Enum { ty: *ty, variant: *variant }, ty: Ty::Enum(*ty), span })
            }
            [] => {
                let mut names: Vec<String> = Vec::new();
                for id in &candidates {
                    if let TypeDefKind::Enum { variants } = &self.types[id.0 as usize].kind {
                        names.extend(variants.iter().map(|x| x.name.dsl.clone()));
                    }
                }
                let help = match did_you_mean(&v.name, names.iter().map(String::as_str)) {
                    Some(s) => Some(format!("did you mean `'{s}`?")),
                    None if candidates.len() == 1 => Some(format!("the variants are: {}", names.join(", "))),
                    None => None,
                };
                let what = match candidates.as_slice() {
                    [id] => format!("enum `{}` has no variant `{}`", self.types[id.0 as usize].name.dsl, v.name),
                    _ => format!("no enum has a variant `{}`", v.name),
                };
                let key = format!("variant {candidates:?} {}", v.name);
                self.unknown(
                    key,
                    &format!("'{}", v.name),
                    Diagnostic::new(codes::UNKNOWN_VARIANT, span, what).label("unknown variant").maybe_help(help),
                );
                None
            }
            many => {
                let names: Vec<String> =
                    many.iter().map(|(id, _)| format!("`{}`", self.types[id.0 as usize].name.dsl)).collect();
                self.error(
                    Diagnostic::new(
                        codes::AMBIGUOUS_ENUM,
                        span,
                        format!("`'{}` is a variant of several enums: {}", v.name, names.join(", ")),
                    )
                    .label("which enum?")
                    .help("compare it with a value of the enum, e.g. `(= status 'open)`, so the type is known"),
                );
                None
            }
        }
    }

    fn visible_names(&self, scope: &Scope) -> Vec<String> {
        let mut names: Vec<String> = scope.locals.iter().map(|l| l.name.dsl.clone()).collect();
        names.extend(scope.params.iter().chain(scope.event).chain(scope.state).map(|f| f.name.dsl.clone()));
        names
    }

    fn var(&mut self, path: &[ast::Ident], scope: &mut Scope, span: Span) -> Option<Expr> {
        let first = &path[0];
        // `state.FIELD` where there is a state (left empty when every field's type is in error).
        let state_in_scope = !scope.state.is_empty() || path.get(1).is_some_and(|f| self.poisoned.contains(&f.name));
        let (mut expr, rest) = if first.name == "state" && path.len() >= 2 && state_in_scope {
            let field = &path[1];
            let Some(i) = scope.state.iter().position(|f| f.name.dsl == field.name) else {
                if self.poisoned(&field.name) {
                    return None;
                }
                let help = super::hint(&field.name, scope.state.iter().map(|f| f.name.dsl.as_str()));
                self.unknown(
                    format!("name {:?} {}", scope.aggregate, field.name),
                    &field.name,
                    Diagnostic::new(
                        codes::UNKNOWN_NAME,
                        field.span,
                        format!("the state has no field `{}`", field.name),
                    )
                    .label("unknown state field")
                    .maybe_help(help),
                );
                return None;
            };
            let e = Expr { kind: ExprKind::State(i), ty: scope.state[i].ty.clone(), span: first.span.to(field.span) };
            (e, &path[2..])
        } else {
            (self.resolve_name(first, scope)?, &path[1..])
        };
        for segment in rest {
            let Ty::Record(id) = expr.ty.clone() else {
                let shown = self.show(&expr.ty);
                self.error(
                    Diagnostic::new(codes::UNKNOWN_FIELD, segment.span, format!("`{shown}` has no fields"))
                        .label(format!("`.{}` on a `{shown}`", segment.name))
                        .help("only records have fields"),
                );
                return None;
            };
            let TypeDefKind::Record { fields } = &self.types[id.0 as usize].kind else { return None };
            let Some(i) = fields.iter().position(|f| f.name.dsl == segment.name) else {
                let help = super::hint(&segment.name, fields.iter().map(|f| f.name.dsl.as_str()));
                let record = self.types[id.0 as usize].name.dsl.clone();
                if self.poisoned(&segment.name) {
                    return None;
                }
                self.error(
                    Diagnostic::new(
                        codes::UNKNOWN_FIELD,
                        segment.span,
                        format!("record `{record}` has no field `{}`", segment.name),
                    )
                    .label("unknown field")
                    .maybe_help(help),
                );
                return None;
            };
            let ty = fields[i].ty.clone();
            let field_span = expr.span.to(segment.span);
            expr = Expr { kind: ExprKind::Field { base: Box::new(expr), record: id, field: i }, ty, span: field_span };
        }
        expr.span = span;
        Some(expr)
    }

    fn resolve_name(&mut self, ident: &ast::Ident, scope: &mut Scope) -> Option<Expr> {
        let span = ident.span;
        let n = ident.name.as_str();
        if let Some(local) = scope.locals.iter_mut().rev().find(|l| l.name.dsl == n) {
            local.used = true;
            let Some(ty) = local.ty.clone() else {
                self.errors_not_shown += 1;
                return None;
            };
            return Some(Expr { kind: ExprKind::Local(local.name.clone()), ty, span });
        }
        if let Some(i) = scope.params.iter().position(|f| f.name.dsl == n) {
            return Some(Expr { kind: ExprKind::Param(i), ty: scope.params[i].ty.clone(), span });
        }
        if let Some(i) = scope.event.iter().position(|f| f.name.dsl == n) {
            return Some(Expr { kind: ExprKind::EventField(i), ty: scope.event[i].ty.clone(), span });
        }
        if let Some(i) = scope.state.iter().position(|f| f.name.dsl == n) {
            return Some(Expr { kind: ExprKind::State(i), ty: scope.state[i].ty.clone(), span });
        }
        if n == "id" {
            if let Some(ty) = &scope.id {
                return Some(Expr { kind: ExprKind::AggregateId, ty: ty.clone(), span });
            }
        }
        if n == "version"
            && scope.aggregate.is_some()
            && matches!(scope.ctx, Ctx::Command | Ctx::Extern | Ctx::Policy | Ctx::Invariant | Ctx::Evolve)
        {
            return Some(Expr { kind: ExprKind::Version, ty: Ty::Int(IntTy::U64), span });
        }
        if self.poisoned(n) {
            return None;
        }
        let visible = self.visible_names(scope);
        let help = if n == "now" || n == "occurred-at" {
            Some(format!("`{n}` is a function: write `({n})`"))
        } else {
            super::hint(n, visible.iter().map(String::as_str))
        };
        let where_ = match scope.ctx {
            Ctx::Command | Ctx::Extern => "in this command",
            Ctx::Evolve => "in this handler",
            Ctx::Invariant => "in this invariant (it sees the state)",
            Ctx::Policy => "in this policy",
            Ctx::Process => "in this process handler (it sees the event's fields and `id`)",
            Ctx::View => "in this view handler (it sees the event's fields and `id`)",
            Ctx::Scenario => "in a scenario (values there are literals)",
            Ctx::Default => "in a default value (it must be a literal)",
        };
        self.unknown(
            format!("name {:?} {n}", scope.aggregate),
            n,
            Diagnostic::new(codes::UNKNOWN_NAME, span, format!("unknown name `{n}` {where_}"))
                .label("not found")
                .maybe_help(help),
        );
        None
    }

    pub(super) fn binding(&mut self, b: &ast::Binding, scope: &mut Scope) -> Option<(Name, Expr)> {
        let value = self.expr(&b.value, None, scope);
        if self.reserved(&b.name, "a binding") {
            return None;
        }
        let Some(value) = value else {
            // Still in scope, so that its uses are not reported as unknown names too.
            scope.locals.push(Local { name: super::name(&b.name), ty: None, used: true });
            return None;
        };
        scope.locals.push(Local { name: super::name(&b.name), ty: Some(value.ty.clone()), used: false });
        Some((super::name(&b.name), value))
    }

    /// Checks sequential `let` bindings, pushing each as a local; `false` when one failed.
    pub(super) fn bindings(&mut self, bindings: &[ast::Binding], scope: &mut Scope) -> (Vec<(Name, Expr)>, bool) {
        let mut checked = Vec::with_capacity(bindings.len());
        let mut ok = true;
        for b in bindings {
            match self.binding(b, scope) {
                Some(pair) => checked.push(pair),
                None => ok = false,
            }
        }
        (checked, ok)
    }

    pub(super) fn pop_locals(&mut self, scope: &mut Scope, depth: usize) {
        for local in scope.locals.drain(depth..).collect::<Vec<_>>() {
            if !local.used {
                self.error(
                    Diagnostic::new(
                        codes::UNUSED_BINDING,
                        local.name.span,
                        format!("`{}` is never used", local.name.dsl),
                    )
                    .label("unused binding")
                    .help("remove it, or use it"),
                );
            }
        }
    }

    pub(super) fn with_facts<T>(&mut self, facts: Vec<(Expr, Expr)>, f: impl FnOnce(&mut Self) -> T) -> T {
        let depth = self.facts.len();
        self.facts.extend(facts);
        let out = f(self);
        self.facts.truncate(depth);
        out
    }

    /// Field values for an event, command or record, in declaration order; reports unknown, repeated and
    /// missing fields.
    pub(super) fn field_values(
        &mut self,
        decls: &[Field],
        inits: &[ast::FieldInit],
        span: Span,
        what: &str,
        scope: &mut Scope,
    ) -> Option<Vec<Expr>> {
        let mut values: Vec<Option<Expr>> = vec![None; decls.len()];
        let mut given: Vec<Option<Span>> = vec![None; decls.len()];
        let mut ok = true;
        for init in inits {
            let Some(i) = decls.iter().position(|f| f.name.dsl == init.name.name) else {
                ok = false;
                if self.poisoned(&init.name.name) {
                    continue;
                }
                let help = super::hint(&init.name.name, decls.iter().map(|f| f.name.dsl.as_str())).or_else(|| {
                    Some(format!(
                        "the fields of {what} are: {}",
                        decls.iter().map(|f| f.name.dsl.as_str()).collect::<Vec<_>>().join(", ")
                    ))
                });
                self.error(
                    Diagnostic::new(
                        codes::UNKNOWN_FIELD,
                        init.name.span,
                        format!("{what} has no field `{}`", init.name.name),
                    )
                    .label("unknown field")
                    .maybe_help(help),
                );
                continue;
            };
            if let Some(first) = given[i] {
                self.error(
                    Diagnostic::new(
                        codes::DUPLICATE_DEFINITION,
                        init.span,
                        format!("field `{}` is given twice", init.name.name),
                    )
                    .label("given again")
                    .secondary(first, "first given here"),
                );
                ok = false;
                continue;
            }
            given[i] = Some(init.span);
            let ty = decls[i].ty.clone();
            values[i] = self.expr(&init.value, Some(&ty), scope);
            ok &= values[i].is_some();
        }
        let missing: Vec<&str> =
            decls.iter().zip(&given).filter(|(_, g)| g.is_none()).map(|(f, _)| f.name.dsl.as_str()).collect();
        if !missing.is_empty() {
            let list = missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ");
            self.error(
                Diagnostic::new(codes::MISSING_FIELD, span, format!("{what} is missing {list}"))
                    .label(format!("missing {list}"))
                    .help(format!(
                        "add {}",
                        missing.iter().map(|m| format!("`({m} ...)`")).collect::<Vec<_>>().join(" ")
                    )),
            );
            return None;
        }
        if !ok {
            return None;
        }
        values.into_iter().collect()
    }

    fn arity(&mut self, op: &ast::Ident, span: Span, expected: &str, found: usize) -> Option<Expr> {
        self.error(
            Diagnostic::new(codes::WRONG_ARITY, span, format!("`{}` takes {expected}, found {found}", op.name))
                .label(format!("{found} argument(s)")),
        );
        None
    }

    fn call(
        &mut self,
        op: &ast::Ident,
        args: &[ast::Expr],
        expected: Option<&Ty>,
        scope: &mut Scope,
        span: Span,
    ) -> Option<Expr> {
        let n = args.len();
        let mk = |kind: ExprKind, ty: Ty| Some(Expr { kind, ty, span });
        match op.name.as_str() {
            "+" | "*" | "min" | "max" if n >= 2 => {
                let bin = match op.name.as_str() {
                    "+" => BinOp::Add,
                    "*" => BinOp::Mul,
                    "min" => BinOp::Min,
                    _ => BinOp::Max,
                };
                let mut acc = self.binary(bin, &args[0], &args[1], expected, scope, span)?;
                for arg in &args[2..] {
                    acc = self.binary_checked(bin, acc, arg, scope, span)?;
                }
                Some(acc)
            }
            "+" | "*" | "min" | "max" => self.arity(op, span, "at least 2 arguments", n),
            "-" if n == 1 => {
                let arg = self.expr(&args[0], expected, scope)?;
                if !(matches!(arg.ty, Ty::Decimal(_)) || matches!(arg.ty, Ty::Int(t) if t.is_signed())) {
                    return self.unsupported(arg.span, "negation needs a signed number", &arg.ty);
                }
                let ty = arg.ty.clone();
                mk(ExprKind::Unary { op: UnOp::Neg, arg: Box::new(arg) }, ty)
            }
            "-" if n == 2 => self.binary(BinOp::Sub, &args[0], &args[1], expected, scope, span),
            "-" => self.arity(op, span, "1 or 2 arguments", n),
            "/" | "mod" if n == 2 => {
                let bin = if op.name == "/" { BinOp::Div } else { BinOp::Rem };
                self.binary(bin, &args[0], &args[1], expected, scope, span)
            }
            "/" | "mod" => self.arity(op, span, "2 arguments", n),
            "=" | "!=" | "<" | "<=" | ">" | ">=" if n == 2 => {
                let bin = match op.name.as_str() {
                    "=" => BinOp::Eq,
                    "!=" => BinOp::Ne,
                    "<" => BinOp::Lt,
                    "<=" => BinOp::Le,
                    ">" => BinOp::Gt,
                    _ => BinOp::Ge,
                };
                self.binary(bin, &args[0], &args[1], None, scope, span)
            }
            "=" | "!=" | "<" | "<=" | ">" | ">=" => self.arity(op, span, "2 arguments", n),
            "and" | "or" if n >= 1 => {
                let mut checked = Vec::new();
                let mut facts = Vec::new();
                for a in args {
                    // In `(and a b)`, `b` is only evaluated when `a` holds.
                    let c = self.with_facts(facts.clone(), |this| this.expr(a, Some(&Ty::Bool), scope));
                    if let (Some(c), "and") = (&c, op.name.as_str()) {
                        facts.extend(facts_of(c, true));
                    }
                    checked.push(c);
                }
                let checked: Option<Vec<Expr>> = checked.into_iter().collect();
                let kind = if op.name == "and" { ExprKind::And(checked?) } else { ExprKind::Or(checked?) };
                mk(kind, Ty::Bool)
            }
            "and" | "or" => self.arity(op, span, "at least 1 argument", n),
            "not" if n == 1 => {
                let arg = self.expr(&args[0], Some(&Ty::Bool), scope)?;
                mk(ExprKind::Unary { op: UnOp::Not, arg: Box::new(arg) }, Ty::Bool)
            }
            "abs" if n == 1 => {
                let arg = self.expr(&args[0], expected, scope)?;
                if !(matches!(arg.ty, Ty::Decimal(_)) || matches!(arg.ty, Ty::Int(t) if t.is_signed())) {
                    return self.unsupported(arg.span, "`abs` needs a signed number", &arg.ty);
                }
                let ty = arg.ty.clone();
                mk(ExprKind::Unary { op: UnOp::Abs, arg: Box::new(arg) }, ty)
            }
            "not" | "abs" => self.arity(op, span, "1 argument", n),
            "now" => {
                if n != 0 {
                    return self.arity(op, span, "no arguments", n);
                }
                if !matches!(scope.ctx, Ctx::Command | Ctx::Extern | Ctx::Policy) {
                    self.error(
                        Diagnostic::new(codes::NOT_ALLOWED_HERE, span, "`(now)` is only available in commands")
                            .label("no clock here")
                            .help("events must replay the same way every time: record the time in an event field when the command runs"),
                    );
                    return None;
                }
                mk(ExprKind::Now, Ty::Timestamp)
            }
            "occurred-at" => {
                if n != 0 {
                    return self.arity(op, span, "no arguments", n);
                }
                if !matches!(scope.ctx, Ctx::Evolve | Ctx::Process | Ctx::View) {
                    self.error(
                        Diagnostic::new(
                            codes::NOT_ALLOWED_HERE,
                            span,
                            "`(occurred-at)` is only available where an event is handled",
                        )
                        .label("no event here")
                        .help("use it in `on` handlers, processes and views; commands use `(now)`"),
                    );
                    return None;
                }
                mk(ExprKind::OccurredAt, Ty::Timestamp)
            }
            "get" | "put" | "remove" | "contains" | "insert" | "push" | "count" | "sum" | "is-empty" | "first"
            | "last" | "min-key" | "max-key" | "some" | "is-some" | "is-none" | "unwrap-or" => {
                self.builtin(op, args, expected, scope, span)
            }
            _ => {
                let reversed: String = op.name.chars().rev().collect();
                let help = OPERATORS
                    .iter()
                    .copied()
                    .find(|o| *o == reversed && reversed != op.name)
                    .or_else(|| did_you_mean(&op.name, OPERATORS.iter().copied()))
                    .map(|s| format!("did you mean `{s}`?"))
                    .or_else(|| Some("see docs/language.md for the operators and functions".to_string()));
                self.error(
                    Diagnostic::new(
                        codes::UNKNOWN_OPERATOR,
                        op.span,
                        format!("unknown operator or function `{}`", op.name),
                    )
                    .label("not known")
                    .maybe_help(help),
                );
                None
            }
        }
    }

    fn builtin(
        &mut self,
        op: &ast::Ident,
        args: &[ast::Expr],
        expected: Option<&Ty>,
        scope: &mut Scope,
        span: Span,
    ) -> Option<Expr> {
        let n = args.len();
        let (func, arity): (Builtin, &[usize]) = match op.name.as_str() {
            "get" => (Builtin::Get, &[2, 3]),
            "put" => (Builtin::Put, &[3]),
            "remove" => (Builtin::Remove, &[2]),
            "contains" => (Builtin::Contains, &[2]),
            "insert" => (Builtin::Insert, &[2]),
            "push" => (Builtin::Push, &[2]),
            "count" => (Builtin::Count, &[1]),
            "sum" => (Builtin::Sum, &[1]),
            "is-empty" => (Builtin::IsEmpty, &[1]),
            "first" => (Builtin::First, &[1]),
            "last" => (Builtin::Last, &[1]),
            "min-key" => (Builtin::MinKey, &[1]),
            "max-key" => (Builtin::MaxKey, &[1]),
            "some" => (Builtin::Some, &[1]),
            "is-some" => (Builtin::IsSome, &[1]),
            "is-none" => (Builtin::IsNone, &[1]),
            _ => (Builtin::UnwrapOr, &[2]),
        };
        if !arity.contains(&n) {
            let expected_s = arity.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" or ");
            return self.arity(op, span, &format!("{expected_s} arguments"), n);
        }
        let func = if func == Builtin::Get && n == 3 { Builtin::GetOr } else { func };
        if func == Builtin::Some {
            let inner = match expected {
                Some(Ty::Optional(t)) => Some((**t).clone()),
                _ => None,
            };
            let arg = self.expr(&args[0], inner.as_ref(), scope)?;
            let ty = Ty::Optional(Box::new(arg.ty.clone()));
            return Some(Expr { kind: ExprKind::Call { func, args: vec![arg] }, ty, span });
        }
        // The first argument is the collection or optional; it fixes the types of the rest.
        let hint = match (func, expected) {
            (Builtin::Put | Builtin::Remove | Builtin::Insert | Builtin::Push, Some(t)) => Some(t.clone()),
            _ => None,
        };
        let subject = self.expr(&args[0], hint.as_ref(), scope)?;
        let sty = subject.ty.clone();
        let bad = |this: &mut Self, what: &str| {
            this.unsupported(subject.span, &format!("`{}` works on {what}", op.name), &sty)
        };
        let (arg_types, result): (Vec<Ty>, Ty) = match (func, &sty) {
            (Builtin::Get, Ty::Map(k, v)) => (vec![(**k).clone()], Ty::Optional(v.clone())),
            (Builtin::GetOr, Ty::Map(k, v)) => (vec![(**k).clone(), (**v).clone()], (**v).clone()),
            (Builtin::Get | Builtin::GetOr, _) => return bad(self, "maps"),
            (Builtin::Put, Ty::Map(k, v)) => (vec![(**k).clone(), (**v).clone()], sty.clone()),
            (Builtin::Put, _) => return bad(self, "maps"),
            (Builtin::Remove, Ty::Map(k, _)) => (vec![(**k).clone()], sty.clone()),
            (Builtin::Remove, Ty::Set(e)) => (vec![(**e).clone()], sty.clone()),
            (Builtin::Remove, _) => return bad(self, "maps and sets"),
            (Builtin::Contains, Ty::Map(k, _)) => (vec![(**k).clone()], Ty::Bool),
            (Builtin::Contains, Ty::Set(e) | Ty::List(e)) => (vec![(**e).clone()], Ty::Bool),
            (Builtin::Contains, _) => return bad(self, "maps, sets and lists"),
            (Builtin::Insert, Ty::Set(e)) => (vec![(**e).clone()], sty.clone()),
            (Builtin::Insert, _) => return bad(self, "sets"),
            (Builtin::Push, Ty::List(e)) => (vec![(**e).clone()], sty.clone()),
            (Builtin::Push, _) => return bad(self, "lists"),
            (Builtin::Count, Ty::Map(..) | Ty::Set(_) | Ty::List(_) | Ty::String) => (vec![], Ty::Int(IntTy::U64)),
            (Builtin::IsEmpty, Ty::Map(..) | Ty::Set(_) | Ty::List(_) | Ty::String) => (vec![], Ty::Bool),
            (Builtin::Count | Builtin::IsEmpty, _) => return bad(self, "maps, sets, lists and strings"),
            (Builtin::Sum, Ty::Map(_, e) | Ty::Set(e) | Ty::List(e)) if e.is_numeric() => (vec![], (**e).clone()),
            (Builtin::Sum, _) => return bad(self, "collections of numbers"),
            (Builtin::First | Builtin::Last, Ty::List(e) | Ty::Set(e)) => (vec![], Ty::Optional(e.clone())),
            (Builtin::First | Builtin::Last, _) => return bad(self, "lists and sets"),
            (Builtin::MinKey | Builtin::MaxKey, Ty::Map(k, _)) => (vec![], Ty::Optional(k.clone())),
            (Builtin::MinKey | Builtin::MaxKey, _) => return bad(self, "maps"),
            (Builtin::IsSome | Builtin::IsNone, Ty::Optional(_)) => (vec![], Ty::Bool),
            (Builtin::UnwrapOr, Ty::Optional(t)) => (vec![(**t).clone()], (**t).clone()),
            (Builtin::IsSome | Builtin::IsNone | Builtin::UnwrapOr, _) => return bad(self, "optional values"),
            (Builtin::Some, _) => unreachable!("handled above"),
        };
        let mut checked = vec![subject];
        for (arg, ty) in args[1..].iter().zip(&arg_types) {
            checked.push(self.expr(arg, Some(ty), scope)?);
        }
        Some(Expr { kind: ExprKind::Call { func, args: checked }, ty: result, span })
    }

    /// Checks a binary operation on two unchecked operands, typing literals from the other side.
    fn binary(
        &mut self,
        op: BinOp,
        a: &ast::Expr,
        b: &ast::Expr,
        expected: Option<&Ty>,
        scope: &mut Scope,
        span: Span,
    ) -> Option<Expr> {
        let hint = expected.filter(|t| t.is_numeric() && !matches!(op, BinOp::Mul | BinOp::Div));
        if needs_context(a) && !needs_context(b) {
            let r = self.expr(b, hint, scope)?;
            let l = self.operand_for(op, a, &r.ty, scope)?;
            return self.binary_typed(op, l, r, scope, span);
        }
        let l = self.expr(a, if needs_context(a) { hint } else { None }, scope)?;
        self.binary_checked(op, l, b, scope, span)
    }

    fn binary_checked(&mut self, op: BinOp, l: Expr, b: &ast::Expr, scope: &mut Scope, span: Span) -> Option<Expr> {
        let r = self.operand_for(op, b, &l.ty, scope)?;
        self.binary_typed(op, l, r, scope, span)
    }

    /// Checks one operand given the other's type: the same type, except that a decimal may be scaled
    /// (multiplied or divided) by an integer.
    fn operand_for(&mut self, op: BinOp, e: &ast::Expr, other: &Ty, scope: &mut Scope) -> Option<Expr> {
        if matches!(op, BinOp::Mul | BinOp::Div) && matches!(other, Ty::Decimal(_)) {
            return match e.kind {
                ast::ExprKind::Int(_) => self.expr(e, Some(&Ty::Int(IntTy::I64)), scope),
                _ => self.expr(e, None, scope),
            };
        }
        if op == BinOp::Mul && matches!(other, Ty::Int(_)) && !needs_context(e) {
            return self.expr(e, None, scope);
        }
        // A decimal literal is never an integer: it scales the integer, `(* 0.19 qty)`, `(/ 10.00 qty)`.
        if matches!(op, BinOp::Mul | BinOp::Div)
            && matches!(other, Ty::Int(_))
            && matches!(e.kind, ast::ExprKind::Decimal { .. })
        {
            return self.expr(e, None, scope);
        }
        self.expr(e, Some(other), scope)
    }

    fn binary_typed(&mut self, op: BinOp, l: Expr, r: Expr, scope: &mut Scope, span: Span) -> Option<Expr> {
        let ty = match op {
            BinOp::Eq | BinOp::Ne => {
                if l.ty != r.ty {
                    self.mismatch(r.span, &l.ty, &r.ty, Some("both sides of a comparison have the same type"));
                    return None;
                }
                Ty::Bool
            }
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                if l.ty != r.ty {
                    self.mismatch(r.span, &l.ty, &r.ty, Some("both sides of a comparison have the same type"));
                    return None;
                }
                if !l.ty.is_ordered(&self.types) || matches!(l.ty, Ty::Bool) {
                    return self.unsupported(
                        l.span,
                        "ordering comparisons need numbers, strings, timestamps, ids or enums",
                        &l.ty,
                    );
                }
                Ty::Bool
            }
            BinOp::Min | BinOp::Max => {
                if l.ty != r.ty {
                    self.mismatch(r.span, &l.ty, &r.ty, None);
                    return None;
                }
                if !l.ty.is_ordered(&self.types) {
                    return self.unsupported(l.span, "`min` and `max` need ordered values", &l.ty);
                }
                l.ty.clone()
            }
            BinOp::Add | BinOp::Sub | BinOp::Rem => {
                if !l.ty.is_numeric() {
                    let what = match op {
                        BinOp::Add => "`+` adds numbers",
                        BinOp::Sub => "`-` subtracts numbers",
                        _ => "`mod` works on integers",
                    };
                    return self.unsupported(l.span, what, &l.ty);
                }
                if op == BinOp::Rem && !matches!(l.ty, Ty::Int(_)) {
                    return self.unsupported(l.span, "`mod` works on integers", &l.ty);
                }
                if l.ty != r.ty {
                    self.mismatch(r.span, &l.ty, &r.ty, Some("arithmetic needs both sides of the same type"));
                    return None;
                }
                if op == BinOp::Sub && l.ty.is_unsigned_int() && !self.guarded(&l, &r) {
                    self.underflow_warning(span, scope.ctx);
                }
                l.ty.clone()
            }
            BinOp::Mul | BinOp::Div => match (&l.ty, &r.ty) {
                (Ty::Decimal(_), Ty::Int(_)) => l.ty.clone(),
                (Ty::Int(_), Ty::Decimal(_)) if op == BinOp::Mul => r.ty.clone(),
                (Ty::Int(a), Ty::Int(b)) if a == b => l.ty.clone(),
                (Ty::Decimal(_), Ty::Decimal(_)) => {
                    self.error(
                        Diagnostic::new(
                            codes::UNSUPPORTED_OPERAND,
                            span,
                            "multiplying or dividing two decimals is not supported",
                        )
                        .label("decimal with decimal")
                        .help("scale by an integer instead, e.g. `(* price (as u64 qty))`"),
                    );
                    return None;
                }
                (a, b) if a.is_numeric() && b.is_numeric() => {
                    self.mismatch(r.span, &l.ty, &r.ty, Some("integer arithmetic needs both sides of the same type"));
                    return None;
                }
                (a, _) if !a.is_numeric() => return self.unsupported(l.span, "arithmetic needs numbers", &l.ty),
                _ => return self.unsupported(r.span, "arithmetic needs numbers", &r.ty),
            },
        };
        Some(Expr { kind: ExprKind::Binary { op, lhs: Box::new(l), rhs: Box::new(r) }, ty, span })
    }

    /// Whether `l - r` is known not to go below zero: `r` is zero, `r` is `(min l ...)`, or a guard says `l >= r`.
    fn guarded(&self, l: &Expr, r: &Expr) -> bool {
        if matches!(r.kind, ExprKind::Int(0)) {
            return true;
        }
        if let ExprKind::Binary { op: BinOp::Min, lhs, rhs } = &r.kind {
            if lhs.same(l) || rhs.same(l) {
                return true;
            }
        }
        self.facts.iter().any(|(a, b)| a.same(l) && b.same(r))
    }

    fn underflow_warning(&mut self, span: Span, ctx: Ctx) {
        let help = if ctx == Ctx::Evolve {
            "guard it in every command that emits this event, e.g. `(require (>= stock qty) not-enough \"...\")`, or use a signed type"
        } else {
            "guard it first, e.g. `(require (>= a b) not-enough \"...\")`, or use a signed type"
        };
        self.diagnostics.push(
            Diagnostic::new(codes::UNSIGNED_UNDERFLOW, span, "this unsigned subtraction may go below zero")
                .label("no guard shows the left side is at least the right side")
                .note("at run time the command is rejected with `arithmetic-overflow` instead")
                .help(help),
        );
    }
}

/// What a condition tells about `lhs >= rhs` pairs when it holds (`positive`) or fails.
pub(super) fn facts_of(cond: &Expr, positive: bool) -> Vec<(Expr, Expr)> {
    match &cond.kind {
        ExprKind::Binary { op, lhs, rhs } => {
            let (l, r) = ((**lhs).clone(), (**rhs).clone());
            match (op, positive) {
                (BinOp::Ge | BinOp::Gt, true) | (BinOp::Lt | BinOp::Le, false) => vec![(l, r)],
                (BinOp::Le | BinOp::Lt, true) | (BinOp::Gt | BinOp::Ge, false) => vec![(r, l)],
                _ => vec![],
            }
        }
        ExprKind::And(parts) if positive => parts.iter().flat_map(|p| facts_of(p, true)).collect(),
        ExprKind::Or(parts) if !positive => parts.iter().flat_map(|p| facts_of(p, false)).collect(),
        ExprKind::Unary { op: UnOp::Not, arg } => facts_of(arg, !positive),
        _ => vec![],
    }
}
