//! Checking aggregates: keys, state and defaults, events, commands, `on` handlers, invariants and their
//! consistency policies.

use super::stmts::collect_effects;
use super::{doc, name, Checker, Ctx, Scope, BUILTIN_REJECTIONS};
use crate::model::*;
use anthill_dsl::ast;
use anthill_dsl::diagnostic::{codes, Diagnostic};
use std::collections::HashMap;

impl Checker {
    /// Registers every aggregate with its key, state, events and command signatures, so that bodies,
    /// processes and scenarios can refer to any of them. Vectors stay aligned with the declarations
    /// (duplicates included, reported) so that indices match.
    pub(super) fn declare_aggregates(&mut self, decls: &[&ast::AggregateDecl]) {
        let mut seen = HashMap::new();
        for decl in decls {
            self.unique(&mut seen, &decl.name, "aggregate");
            let key = match &decl.key {
                Some(k) => match self.resolve_type(k) {
                    Some(ty) => {
                        if matches!(ty, Ty::Id(_) | Ty::String | Ty::Int(_)) {
                            ty
                        } else {
                            let shown = self.show(&ty);
                            self.error(
                                Diagnostic::new(
                                    codes::INVALID_KEY_TYPE,
                                    k.span,
                                    format!("`{shown}` cannot key an aggregate"),
                                )
                                .label("not an id, string or integer")
                                .help("declare an id type, e.g. `(id account-id)`, and write `(key account-id)`"),
                            );
                            Ty::String
                        }
                    }
                    None => Ty::String,
                },
                None => {
                    self.error(
                        Diagnostic::new(
                            codes::MISSING_CLAUSE,
                            decl.name.span,
                            format!("aggregate `{}` needs a `(key TYPE)`", decl.name.name),
                        )
                        .label("no key")
                        .help("declare an id type, e.g. `(id account-id)`, and add `(key account-id)`"),
                    );
                    Ty::String
                }
            };
            let state = self.fields(&decl.state, "a state field");
            let mut event_names = HashMap::new();
            let mut events = Vec::new();
            for e in &decl.events {
                self.unique(&mut event_names, &e.name, "event");
                let fields = self.fields(&e.fields, "an event field");
                events.push(Event { name: name(&e.name), doc: doc(&e.doc), fields });
            }
            let mut command_names = HashMap::new();
            let mut commands = Vec::new();
            for c in &decl.commands {
                self.unique(&mut command_names, &c.name, "command");
                let params = self.fields(&c.params, "a command parameter");
                commands.push(Command {
                    name: name(&c.name),
                    doc: doc(&c.doc),
                    params,
                    body: CommandBody::Handler(Vec::new()),
                    policies: Vec::new(),
                    emits: Vec::new(),
                    rejections: Vec::new(),
                });
            }
            let rejections = BUILTIN_REJECTIONS
                .iter()
                .map(|(n, message)| Rejection {
                    name: Name { dsl: (*n).to_string(), span: decl.name.span },
                    message: (*message).to_string(),
                    source: RejectionSource::Builtin,
                })
                .collect();
            self.aggregates.push(Aggregate {
                name: name(&decl.name),
                doc: doc(&decl.doc),
                key,
                state,
                events,
                commands,
                handlers: Vec::new(),
                invariants: Vec::new(),
                rejections,
            });
        }
    }

    fn scope_for(&self, ctx: Ctx, aggregate: AggregateId) -> Scope<'static> {
        let mut scope = Scope::new(ctx);
        scope.aggregate = Some(aggregate);
        scope.id = Some(self.aggregates[aggregate.0 as usize].key.clone());
        scope
    }

    pub(super) fn check_aggregate(&mut self, id: AggregateId, decl: &ast::AggregateDecl) {
        let a = id.0 as usize;
        self.state_defaults(a, decl);
        let state = self.aggregates[a].state.clone();

        // Invariants first: they name rejections that commands must not reuse.
        let mut invariant_names = HashMap::new();
        for inv in &decl.invariants {
            if !self.unique(&mut invariant_names, &inv.name, "invariant") {
                continue;
            }
            let mut scope = self.scope_for(Ctx::Invariant, id);
            scope.state = &state;
            let expr = self.expr(&inv.expr, Some(&Ty::Bool), &mut scope);
            let bound = expr.as_ref().and_then(bound_of);
            let rejection = {
                let rejections = &mut self.aggregates[a].rejections;
                if let Some(existing) = rejections.iter().find(|r| r.name.dsl == inv.name.name) {
                    let span = existing.name.span;
                    self.error(
                        Diagnostic::new(
                            codes::DUPLICATE_DEFINITION,
                            inv.name.span,
                            format!("`{}` is a built-in rejection", inv.name.name),
                        )
                        .label("name taken")
                        .secondary(span, "in this aggregate")
                        .help("name the invariant after the rule it keeps, e.g. `non-negative-balance`"),
                    );
                    continue;
                }
                let message = match &inv.doc {
                    Some(d) => d.text.clone(),
                    None => format!("the command would break the invariant `{}`", inv.name.name),
                };
                rejections.push(Rejection { name: name(&inv.name), message, source: RejectionSource::Invariant });
                RejectionId(rejections.len() as u32 - 1)
            };
            let policy = match &inv.policy {
                None => Some(Policy::Strict),
                // Whether it may be relaxed depends on the expression, whose error is reported already.
                Some(p) if expr.is_none() && !matches!(p.kind, ast::PolicyKind::Strict) => None,
                Some(p) => {
                    let mut scope = self.scope_for(Ctx::Policy, id);
                    scope.state = &state;
                    self.policy(p, bound.as_ref(), None, &inv.name, &mut scope)
                }
            };
            if let (Some(expr), Some(policy)) = (expr, policy) {
                self.aggregates[a].invariants.push(Invariant {
                    name: name(&inv.name),
                    doc: doc(&inv.doc),
                    expr,
                    bound,
                    policy,
                    rejection,
                });
            }
        }

        for (c, cdecl) in decl.commands.iter().enumerate() {
            self.check_command(id, c, cdecl, &state, decl);
        }

        let mut handled: HashMap<String, ast::Ident> = HashMap::new();
        for on in &decl.handlers {
            let Some(event) = self.lookup_event(id, &on.event) else { continue };
            if let Some(first) = handled.get(&on.event.name) {
                let first = first.span;
                self.error(
                    Diagnostic::new(
                        codes::DUPLICATE_DEFINITION,
                        on.event.span,
                        format!("event `{}` has two `on` handlers", on.event.name),
                    )
                    .label("second handler")
                    .secondary(first, "first handler here")
                    .help("put every change for this event in one `(on ...)`"),
                );
                continue;
            }
            handled.insert(on.event.name.clone(), on.event.clone());
            let fields = self.aggregates[a].events[event.0 as usize].fields.clone();
            let mut scope = self.scope_for(Ctx::Evolve, id);
            scope.state = &state;
            scope.event = &fields;
            let guards = self.emit_facts.get(&(id, event)).cloned().unwrap_or_default();
            let body = self.with_facts(guards, |this| this.stmts(&on.body, &mut scope));
            self.aggregates[a].handlers.push(Handler { event, body });
        }
    }

    fn state_defaults(&mut self, a: usize, decl: &ast::AggregateDecl) {
        for field_decl in &decl.state {
            let Some(index) = self.aggregates[a].state.iter().position(|f| f.name.dsl == field_decl.name.name) else {
                continue;
            };
            if self.aggregates[a].state[index].default.is_some() {
                continue; // a duplicate field, already reported
            }
            let ty = self.aggregates[a].state[index].ty.clone();
            let default = match &field_decl.default {
                Some(e) => {
                    let mut scope = Scope::new(Ctx::Default);
                    self.expr(e, Some(&ty), &mut scope)
                }
                None if field_decl.default_given => None, // the default itself was reported
                None => {
                    match ty {
                        Ty::Optional(_) => Some(Expr { kind: ExprKind::None, ty: ty.clone(), span: field_decl.span }),
                        Ty::Map(..) | Ty::List(_) | Ty::Set(_) => {
                            Some(Expr { kind: ExprKind::Empty, ty: ty.clone(), span: field_decl.span })
                        }
                        _ => {
                            let example = match ty {
                                Ty::Bool => "false",
                                Ty::Int(_) | Ty::Decimal(_) | Ty::Timestamp => "0",
                                Ty::Enum(_) => "'some-variant",
                                Ty::Record(_) => "(make RECORD ...)",
                                _ => "\"\"",
                            };
                            let shown = self.show(&ty);
                            self.error(
                            Diagnostic::new(codes::MISSING_DEFAULT, field_decl.span, format!("state field `{}` needs a default", field_decl.name.name))
                                .label("no default value")
                                .help(format!("a new aggregate starts from the defaults: write `({} {shown} {example})`", field_decl.name.name))
                                .note("optional values default to `none` and collections to empty; other types need a value"),
                        );
                            None
                        }
                    }
                }
            };
            self.aggregates[a].state[index].default = default;
        }
    }

    fn check_command(
        &mut self,
        id: AggregateId,
        c: usize,
        decl: &ast::CommandDecl,
        state: &[Field],
        agg_decl: &ast::AggregateDecl,
    ) {
        let a = id.0 as usize;
        let errors_before = self.error_count();
        let params = self.aggregates[a].commands[c].params.clone();
        let mut scope = self.scope_for(Ctx::Command, id);
        scope.state = state;
        scope.params = &params;

        let mut emits = Vec::new();
        let mut rejections = Vec::new();
        let body = if let Some(extern_span) = decl.extern_span {
            scope.ctx = Ctx::Extern;
            let requires = self.stmts(&decl.body, &mut scope);
            for e in &decl.emits {
                if let Some(event) = self.lookup_event(id, e) {
                    // Nothing is known about the fields a Rust function fills in.
                    self.emit_facts.insert((id, event), Vec::new());
                    if !emits.contains(&event) {
                        emits.push(event);
                    }
                }
            }
            if decl.emits.is_empty() {
                self.error(
                    Diagnostic::new(
                        codes::MISSING_CLAUSE,
                        extern_span,
                        format!("extern command `{}` must declare the events it may emit", decl.name.name),
                    )
                    .label("no `(emits ...)`")
                    .help("add `(emits EVENT...)` listing every event the Rust function can return"),
                );
            }
            for r in &decl.rejects {
                if let Some(rejection) = self.define_rejection(id, &r.name, &r.message, RejectionSource::Extern) {
                    if !rejections.contains(&rejection) {
                        rejections.push(rejection);
                    }
                }
            }
            collect_effects(&requires, &mut emits, &mut rejections);
            scope.ctx = Ctx::Command;
            CommandBody::Extern { requires }
        } else {
            if let Some(first) = decl.emits.first() {
                self.error(
                    Diagnostic::new(codes::NOT_ALLOWED_HERE, first.span, "`emits` is only for extern commands")
                        .label("not an extern command")
                        .help("a command with a body emits with `(emit EVENT ...)`; add `(extern)` if a Rust function decides it"),
                );
            }
            if let Some(r) = decl.rejects.first() {
                self.error(
                    Diagnostic::new(codes::NOT_ALLOWED_HERE, r.span, "`rejects` is only for extern commands")
                        .label("not an extern command")
                        .help("a command with a body rejects with `(require COND NAME \"message\")`"),
                );
            }
            let stmts = self.stmts(&decl.body, &mut scope);
            collect_effects(&stmts, &mut emits, &mut rejections);
            CommandBody::Handler(stmts)
        };

        let mut policies: Vec<PolicyOverride> = Vec::new();
        for o in &decl.policies {
            let Some(index) = self.aggregates[a].invariants.iter().position(|i| i.name.dsl == o.invariant.name) else {
                if agg_decl.invariants.iter().any(|i| i.name.name == o.invariant.name) {
                    continue; // the invariant itself had an error, already reported
                }
                let help =
                    super::hint(&o.invariant.name, self.aggregates[a].invariants.iter().map(|i| i.name.dsl.as_str()))
                        .unwrap_or_else(|| {
                            "declare it in the aggregate: `(invariant NAME EXPR (policy ...))`".to_string()
                        });
                self.error(
                    Diagnostic::new(
                        codes::UNKNOWN_INVARIANT,
                        o.invariant.span,
                        format!("aggregate `{}` has no invariant `{}`", agg_decl.name.name, o.invariant.name),
                    )
                    .label("unknown invariant")
                    .help(help),
                );
                continue;
            };
            if policies.iter().any(|p| p.invariant == index) {
                self.error(
                    Diagnostic::new(codes::DUPLICATE_CLAUSE, o.span, format!("two policies for invariant `{}`", o.invariant.name))
                        .label("second policy")
                        .help("give one `(policy ...)` per invariant; choose between rules with `(if COND strict (relaxed ...))`"),
                );
                continue;
            }
            let bound = self.aggregates[a].invariants[index].bound.clone();
            let declared = self.aggregates[a].invariants[index].policy.clone();
            let mut policy_scope = self.scope_for(Ctx::Policy, id);
            policy_scope.state = state;
            policy_scope.params = &params;
            if let Some(policy) =
                self.policy(&o.policy, bound.as_ref(), Some(&declared), &o.invariant, &mut policy_scope)
            {
                policies.push(PolicyOverride { invariant: index, policy });
            }
        }

        // A command can be rejected by every invariant whose policy can be strict or bounded, and can emit
        // what the policies' reactions emit.
        let invariants = self.aggregates[a].invariants.clone();
        for (index, inv) in invariants.iter().enumerate() {
            let policy = policies.iter().find(|p| p.invariant == index).map_or(&inv.policy, |p| &p.policy);
            policy_effects(policy, &mut emits, &mut Vec::new());
            if !rejections.contains(&inv.rejection) {
                rejections.push(inv.rejection);
            }
        }
        for builtin in 0..BUILTIN_REJECTIONS.len() as u32 {
            if !rejections.contains(&RejectionId(builtin)) {
                rejections.push(RejectionId(builtin));
            }
        }

        if self.error_count() > errors_before {
            self.commands_in_error.insert((id.0, c as u32));
        }
        let command = &mut self.aggregates[a].commands[c];
        command.body = body;
        command.policies = policies;
        command.emits = emits;
        command.rejections = rejections;
    }

    /// Checks a policy. `declared` is the invariant's own policy when checking a command's override
    /// (where a bare `relaxed` means "the invariant's relaxed policy").
    fn policy(
        &mut self,
        p: &ast::Policy,
        bound: Option<&Bound>,
        declared: Option<&Policy>,
        invariant: &ast::Ident,
        scope: &mut Scope,
    ) -> Option<Policy> {
        match &p.kind {
            ast::PolicyKind::Strict => Some(Policy::Strict),
            ast::PolicyKind::RelaxedDeclared => {
                let relaxed = declared.and_then(find_relaxed);
                if relaxed.is_none() {
                    self.error(
                        Diagnostic::new(
                            codes::RELAXED_NEEDS_BOUND,
                            p.span,
                            format!("invariant `{}` declares no relaxed policy", invariant.name),
                        )
                        .label("bare `relaxed` has nothing to refer to")
                        .help("spell it out: `(relaxed (tolerance EXPR) (on-violation ...))`"),
                    );
                }
                relaxed.cloned()
            }
            ast::PolicyKind::Relaxed { tolerance, on_violation } => {
                let Some(bound) = bound else {
                    self.error(
                        Diagnostic::new(codes::RELAXED_NEEDS_BOUND, p.span, format!("invariant `{}` is not a bound, so it cannot be relaxed", invariant.name))
                            .label("relaxed policy")
                            .help("a relaxed invariant compares two numbers, e.g. `(>= balance 0)`, so that the tolerance measures how far past the bound a command may go"),
                    );
                    return None;
                };
                let ty = bound.lhs.ty.clone();
                let tolerance = self.expr(tolerance, Some(&ty), scope);
                let on_violation = self.stmts(on_violation, scope);
                Some(Policy::Relaxed { tolerance: tolerance?, on_violation })
            }
            ast::PolicyKind::If { cond, then, otherwise } => {
                let cond = self.expr(cond, Some(&Ty::Bool), scope);
                let then = self.policy(then, bound, declared, invariant, scope);
                let otherwise = self.policy(otherwise, bound, declared, invariant, scope);
                Some(Policy::If { cond: cond?, then: Box::new(then?), otherwise: Box::new(otherwise?) })
            }
        }
    }
}

fn find_relaxed(policy: &Policy) -> Option<&Policy> {
    match policy {
        Policy::Strict => None,
        Policy::Relaxed { .. } => Some(policy),
        Policy::If { then, otherwise, .. } => find_relaxed(then).or_else(|| find_relaxed(otherwise)),
    }
}

fn policy_effects(policy: &Policy, events: &mut Vec<EventId>, rejections: &mut Vec<RejectionId>) {
    match policy {
        Policy::Strict => {}
        Policy::Relaxed { on_violation, .. } => collect_effects(on_violation, events, rejections),
        Policy::If { then, otherwise, .. } => {
            policy_effects(then, events, rejections);
            policy_effects(otherwise, events, rejections);
        }
    }
}

/// `(OP lhs rhs)` comparing numbers: the shape a relaxed policy needs.
fn bound_of(expr: &Expr) -> Option<Bound> {
    let ExprKind::Binary { op, lhs, rhs } = &expr.kind else { return None };
    let op = match op {
        BinOp::Ge => BoundOp::Ge,
        BinOp::Gt => BoundOp::Gt,
        BinOp::Le => BoundOp::Le,
        BinOp::Lt => BoundOp::Lt,
        _ => return None,
    };
    if !lhs.ty.is_numeric() {
        return None;
    }
    Some(Bound { op, lhs: (**lhs).clone(), rhs: (**rhs).clone() })
}
