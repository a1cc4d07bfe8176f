//! Checking statements: which forms each context allows, rejections they define, events they emit and
//! the `lhs >= rhs` facts a `require` or `if` establishes for the statements after it.

use super::exprs::facts_of;
use super::{name, Checker, Ctx, Scope};
use crate::model::*;
use anthill_dsl::ast;
use anthill_dsl::diagnostic::{codes, did_you_mean, Diagnostic};

impl Checker {
    /// Checks a block. Facts from `require` hold for the rest of the block; locals end with it.
    pub(super) fn stmts(&mut self, stmts: &[ast::Stmt], scope: &mut Scope) -> Vec<Stmt> {
        let facts_depth = self.facts.len();
        let mut out = Vec::new();
        for stmt in stmts {
            if let Some(checked) = self.stmt(stmt, scope) {
                if let StmtKind::Require { cond, .. } = &checked.kind {
                    let facts = facts_of(cond, true);
                    self.facts.extend(facts);
                }
                out.push(checked);
            }
        }
        self.facts.truncate(facts_depth);
        out
    }

    fn not_allowed(&mut self, stmt: &ast::Stmt, form: &str, ctx: Ctx) {
        let (where_, help) = match ctx {
            Ctx::Command => ("in a command", "a command decides: `require`, `reject`, `emit`, `let`, `if`, `cond`; state changes in `(on EVENT (set ...))`"),
            Ctx::Evolve => ("in an `on` handler", "an `on` handler only changes state: `set`, `let`, `if`, `cond`; decisions belong in commands"),
            Ctx::Policy => ("in an `on-violation` reaction", "a reaction emits events: `emit`, `let`, `if`, `cond`"),
            Ctx::Process => ("in a process", "a process reacts by sending commands: `send`, `let`, `if`, `cond`"),
            Ctx::Extern => ("in an extern command", "an extern command may only check `require`s before its Rust function runs"),
            _ => ("here", "see docs/language.md for where each statement is allowed"),
        };
        self.error(
            Diagnostic::new(codes::NOT_ALLOWED_HERE, stmt.span, format!("`{form}` is not allowed {where_}"))
                .label(format!("`{form}` here"))
                .help(help),
        );
    }

    fn stmt(&mut self, stmt: &ast::Stmt, scope: &mut Scope) -> Option<Stmt> {
        let span = stmt.span;
        let ctx = scope.ctx;
        let kind = match &stmt.kind {
            ast::StmtKind::Require { cond, name: rejection, message } => {
                if !matches!(ctx, Ctx::Command | Ctx::Extern) {
                    self.not_allowed(stmt, "require", ctx);
                    return None;
                }
                let cond = self.expr(cond, Some(&Ty::Bool), scope);
                let rejection = self.define_rejection(scope.aggregate?, rejection, message, RejectionSource::Require);
                StmtKind::Require { cond: cond?, rejection: rejection? }
            }
            ast::StmtKind::Reject { name: rejection, message } => {
                if ctx != Ctx::Command {
                    self.not_allowed(stmt, "reject", ctx);
                    return None;
                }
                let rejection =
                    self.define_rejection(scope.aggregate?, rejection, message, RejectionSource::Require)?;
                StmtKind::Reject { rejection }
            }
            ast::StmtKind::Emit(message) => {
                if !matches!(ctx, Ctx::Command | Ctx::Policy) {
                    self.not_allowed(stmt, "emit", ctx);
                    return None;
                }
                let aggregate = scope.aggregate?;
                let event = self.lookup_event(aggregate, &message.name)?;
                let decls = self.aggregates[aggregate.0 as usize].events[event.0 as usize].fields.clone();
                let what = format!("event `{}`", message.name.name);
                let fields = self.field_values(&decls, &message.fields, message.span, &what, scope)?;
                self.record_emit_facts(aggregate, event, &fields);
                StmtKind::Emit { event, fields }
            }
            ast::StmtKind::Set { field, value } => {
                if ctx != Ctx::Evolve {
                    self.not_allowed(stmt, "set", ctx);
                    return None;
                }
                let Some(index) = scope.state.iter().position(|f| f.name.dsl == field.name) else {
                    if self.poisoned(&field.name) {
                        return None;
                    }
                    let help = super::hint(&field.name, scope.state.iter().map(|f| f.name.dsl.as_str()))
                        .unwrap_or_else(|| "declare it in the aggregate's `(state ...)`".to_string());
                    self.unknown(
                        format!("name {:?} {}", scope.aggregate, field.name),
                        &field.name,
                        Diagnostic::new(
                            codes::UNKNOWN_STATE_FIELD,
                            field.span,
                            format!("the state has no field `{}`", field.name),
                        )
                        .label("not a state field")
                        .help(help),
                    );
                    return None;
                };
                let ty = scope.state[index].ty.clone();
                let value = self.expr(value, Some(&ty), scope)?;
                StmtKind::Set { field: index, value }
            }
            ast::StmtKind::Send { aggregate, id, command, on_rejected } => {
                if ctx != Ctx::Process {
                    self.not_allowed(stmt, "send", ctx);
                    return None;
                }
                let target = self.lookup_aggregate(aggregate)?;
                let key = self.aggregates[target.0 as usize].key.clone();
                let id = self.expr(id, Some(&key), scope);
                let command_id = self.lookup_command(target, &command.name)?;
                let params = self.aggregates[target.0 as usize].commands[command_id.0 as usize].params.clone();
                let what = format!("command `{}`", command.name.name);
                let args = self.field_values(&params, &command.fields, command.span, &what, scope);
                let on_rejected = self.stmts(on_rejected, scope);
                StmtKind::Send { aggregate: target, id: id?, command: command_id, args: args?, on_rejected }
            }
            ast::StmtKind::Let { bindings, body } => {
                let depth = scope.locals.len();
                let (checked, ok) = self.bindings(bindings, scope);
                let body = self.stmts(body, scope);
                self.pop_locals(scope, depth);
                if !ok {
                    return None;
                }
                StmtKind::Let { bindings: checked, body }
            }
            ast::StmtKind::If { cond, then, otherwise } => {
                if ctx == Ctx::Extern {
                    self.not_allowed(stmt, "if", ctx);
                    return None;
                }
                let cond = self.expr(cond, Some(&Ty::Bool), scope)?;
                let then = self.with_facts(facts_of(&cond, true), |this| this.stmts(then, scope));
                let otherwise = self.with_facts(facts_of(&cond, false), |this| this.stmts(otherwise, scope));
                StmtKind::If { cond, then, otherwise }
            }
            ast::StmtKind::Cond { arms, otherwise } => {
                if ctx == Ctx::Extern {
                    self.not_allowed(stmt, "cond", ctx);
                    return None;
                }
                // Lowered to nested `if`s; each arm knows the earlier conditions failed.
                let mut checked = Vec::new();
                let depth = self.facts.len();
                for (cond, body) in arms {
                    let Some(cond) = self.expr(cond, Some(&Ty::Bool), scope) else { continue };
                    let body = self.with_facts(facts_of(&cond, true), |this| this.stmts(body, scope));
                    self.facts.extend(facts_of(&cond, false));
                    checked.push((cond, body));
                }
                let mut result = self.stmts(otherwise, scope);
                self.facts.truncate(depth);
                if checked.len() != arms.len() {
                    return None;
                }
                let Some((first_cond, first_body)) = checked.first().cloned() else {
                    return Some(Stmt {
                        kind: StmtKind::If { cond: bool_true(span), then: result, otherwise: Vec::new() },
                        span,
                    });
                };
                for (cond, body) in checked.into_iter().skip(1).rev() {
                    result = vec![Stmt { span: cond.span, kind: StmtKind::If { cond, then: body, otherwise: result } }];
                }
                StmtKind::If { cond: first_cond, then: first_body, otherwise: result }
            }
        };
        Some(Stmt { kind, span })
    }

    /// Keeps the guards that hold where `event` is emitted, rewritten over state and event fields, and
    /// intersects them with those of its other emit sites.
    pub(super) fn record_emit_facts(&mut self, aggregate: AggregateId, event: EventId, fields: &[Expr]) {
        let translate = |e: &Expr| -> Option<Expr> {
            match e.kind {
                ExprKind::State(_) | ExprKind::Int(_) | ExprKind::Decimal(_) => return Some(e.clone()),
                _ => {}
            }
            let index = fields.iter().position(|f| f.same(e))?;
            Some(Expr { kind: ExprKind::EventField(index), ty: e.ty.clone(), span: e.span })
        };
        let here: Vec<(Expr, Expr)> =
            self.facts.iter().filter_map(|(a, b)| Some((translate(a)?, translate(b)?))).collect();
        match self.emit_facts.get_mut(&(aggregate, event)) {
            Some(known) => known.retain(|(a, b)| here.iter().any(|(x, y)| x.same(a) && y.same(b))),
            None => {
                self.emit_facts.insert((aggregate, event), here);
            }
        }
    }

    /// Registers a rejection named by a `require`, `reject` or extern `rejects`, or finds the existing one.
    pub(super) fn define_rejection(
        &mut self,
        aggregate: AggregateId,
        ident: &ast::Ident,
        message: &str,
        source: RejectionSource,
    ) -> Option<RejectionId> {
        let rejections = &self.aggregates[aggregate.0 as usize].rejections;
        if let Some(index) = rejections.iter().position(|r| r.name.dsl == ident.name) {
            let existing = &rejections[index];
            match existing.source {
                RejectionSource::Invariant | RejectionSource::Builtin => {
                    let what = if existing.source == RejectionSource::Builtin {
                        "a built-in rejection"
                    } else {
                        "an invariant's rejection"
                    };
                    let first = existing.name.span;
                    let mut d = Diagnostic::new(
                        codes::DUPLICATE_DEFINITION,
                        ident.span,
                        format!("`{}` is already {what}", ident.name),
                    )
                    .label("name taken")
                    .help("give this rejection a name of its own");
                    if existing.source == RejectionSource::Invariant {
                        d = d.secondary(first, "the invariant");
                    }
                    self.error(d);
                    return None;
                }
                _ if existing.message != message => {
                    let first = existing.name.span;
                    let first_message = existing.message.clone();
                    self.error(
                        Diagnostic::new(
                            codes::DUPLICATE_DEFINITION,
                            ident.span,
                            format!("rejection `{}` is given two different messages", ident.name),
                        )
                        .label("different message here")
                        .secondary(first, format!("first defined with \"{first_message}\""))
                        .help("a rejection has one stable message: repeat it exactly, or use another name"),
                    );
                    return None;
                }
                _ => return Some(RejectionId(index as u32)),
            }
        }
        let rejections = &mut self.aggregates[aggregate.0 as usize].rejections;
        rejections.push(Rejection { name: name(ident), message: message.to_string(), source });
        Some(RejectionId(rejections.len() as u32 - 1))
    }

    pub(super) fn lookup_aggregate(&mut self, ident: &ast::Ident) -> Option<AggregateId> {
        if let Some(i) = self.aggregates.iter().position(|a| a.name.dsl == ident.name) {
            return Some(AggregateId(i as u32));
        }
        let help = super::hint(&ident.name, self.aggregates.iter().map(|a| a.name.dsl.as_str())).unwrap_or_else(|| {
            let names: Vec<&str> = self.aggregates.iter().map(|a| a.name.dsl.as_str()).collect();
            format!("the aggregates are: {}", names.join(", "))
        });
        self.unknown(
            format!("aggregate {}", ident.name),
            &ident.name,
            Diagnostic::new(codes::UNKNOWN_AGGREGATE, ident.span, format!("unknown aggregate `{}`", ident.name))
                .label("no such aggregate")
                .help(help),
        );
        None
    }

    pub(super) fn lookup_event(&mut self, aggregate: AggregateId, ident: &ast::Ident) -> Option<EventId> {
        let agg = &self.aggregates[aggregate.0 as usize];
        if let Some(i) = agg.events.iter().position(|e| e.name.dsl == ident.name) {
            return Some(EventId(i as u32));
        }
        let elsewhere = self
            .aggregates
            .iter()
            .find(|a| a.events.iter().any(|e| e.name.dsl == ident.name))
            .map(|a| a.name.dsl.clone());
        let help = match (did_you_mean(&ident.name, agg.events.iter().map(|e| e.name.dsl.as_str())), elsewhere) {
            (Some(s), _) => format!("did you mean `{s}`?"),
            (None, Some(other)) => format!(
                "`{}` is an event of aggregate `{other}`; each aggregate emits and handles its own events",
                ident.name
            ),
            (None, None) => format!("declare it in `{}`: `(event {} (FIELD TYPE)...)`", agg.name.dsl, ident.name),
        };
        let agg_name = agg.name.dsl.clone();
        self.unknown(
            format!("event {} {}", aggregate.0, ident.name),
            &ident.name,
            Diagnostic::new(
                codes::UNKNOWN_EVENT,
                ident.span,
                format!("aggregate `{agg_name}` has no event `{}`", ident.name),
            )
            .label("unknown event")
            .help(help),
        );
        None
    }

    pub(super) fn lookup_command(&mut self, aggregate: AggregateId, ident: &ast::Ident) -> Option<CommandId> {
        let agg = &self.aggregates[aggregate.0 as usize];
        if let Some(i) = agg.commands.iter().position(|c| c.name.dsl == ident.name) {
            return Some(CommandId(i as u32));
        }
        let elsewhere = self
            .aggregates
            .iter()
            .find(|a| a.commands.iter().any(|c| c.name.dsl == ident.name))
            .map(|a| a.name.dsl.clone());
        let help = match (did_you_mean(&ident.name, agg.commands.iter().map(|c| c.name.dsl.as_str())), elsewhere) {
            (Some(s), _) => format!("did you mean `{s}`?"),
            (None, Some(other)) => format!("`{}` is a command of aggregate `{other}`; send it there", ident.name),
            (None, None) => format!(
                "the commands of `{}` are: {}",
                agg.name.dsl,
                agg.commands.iter().map(|c| c.name.dsl.as_str()).collect::<Vec<_>>().join(", ")
            ),
        };
        let agg_name = agg.name.dsl.clone();
        self.unknown(
            format!("command {} {}", aggregate.0, ident.name),
            &ident.name,
            Diagnostic::new(
                codes::UNKNOWN_COMMAND,
                ident.span,
                format!("aggregate `{agg_name}` has no command `{}`", ident.name),
            )
            .label("unknown command")
            .help(help),
        );
        None
    }
}

fn bool_true(span: anthill_dsl::Span) -> Expr {
    Expr { kind: ExprKind::Bool(true), ty: Ty::Bool, span }
}

/// The events and rejections a block can produce, in first-seen order.
pub(super) fn collect_effects(stmts: &[Stmt], events: &mut Vec<EventId>, rejections: &mut Vec<RejectionId>) {
    for stmt in stmts {
        match &stmt.kind {
            StmtKind::Require { rejection, .. } | StmtKind::Reject { rejection } => {
                if !rejections.contains(rejection) {
                    rejections.push(*rejection);
                }
            }
            StmtKind::Emit { event, .. } => {
                if !events.contains(event) {
                    events.push(*event);
                }
            }
            StmtKind::Let { body, .. } => collect_effects(body, events, rejections),
            StmtKind::If { then, otherwise, .. } => {
                collect_effects(then, events, rejections);
                collect_effects(otherwise, events, rejections);
            }
            StmtKind::Set { .. } | StmtKind::Send { .. } => {}
        }
    }
}
