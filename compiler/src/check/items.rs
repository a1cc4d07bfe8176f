//! Checking the items that connect aggregates: processes, views, scenarios, and the warnings that need
//! the whole domain (events never emitted or never handled).

use super::{doc, name, Checker, Ctx, Scope};
use crate::model::*;
use anthill_dsl::ast;
use anthill_dsl::diagnostic::{codes, did_you_mean, Diagnostic};
use std::collections::HashMap;

impl Checker {
    fn event_ref(&mut self, r: &ast::EventRef) -> Option<(AggregateId, EventId)> {
        let aggregate = self.lookup_aggregate(&r.aggregate)?;
        let event = self.lookup_event(aggregate, &r.event)?;
        Some((aggregate, event))
    }

    /// The scope of a handler of another aggregate's event: its fields and `id`.
    fn event_scope<'s>(&self, ctx: Ctx, aggregate: AggregateId, fields: &'s [Field]) -> Scope<'s> {
        let mut scope = Scope::new(ctx);
        scope.event = fields;
        scope.id = Some(self.aggregates[aggregate.0 as usize].key.clone());
        scope
    }

    pub(super) fn check_process(&mut self, p: &ast::ProcessDecl) -> Process {
        let mut handlers = Vec::new();
        if p.handlers.is_empty() {
            self.error(
                Diagnostic::new(
                    codes::MISSING_CLAUSE,
                    p.name.span,
                    format!("process `{}` reacts to no event", p.name.name),
                )
                .label("no `(on AGGREGATE/EVENT ...)`")
                .help("add `(on account/withdrawn (send ...))`"),
            );
        }
        for on in &p.handlers {
            let Some((aggregate, event)) = self.event_ref(&on.event) else { continue };
            let fields = self.aggregates[aggregate.0 as usize].events[event.0 as usize].fields.clone();
            let mut scope = self.event_scope(Ctx::Process, aggregate, &fields);
            let body = self.stmts(&on.body, &mut scope);
            handlers.push(ProcessHandler { aggregate, event, body });
        }
        Process { name: name(&p.name), doc: doc(&p.doc), handlers }
    }

    pub(super) fn check_view(&mut self, v: &ast::ViewDecl) -> Option<View> {
        let key = match &v.key {
            Some(k) => {
                let ty = self.resolve_type(k);
                if let Some(ty) = &ty {
                    if !ty.is_ordered(&self.types) {
                        let shown = self.show(ty);
                        self.error(
                            Diagnostic::new(codes::INVALID_KEY_TYPE, k.span, format!("`{shown}` cannot key a view"))
                                .label("not an ordered type")
                                .help("keys are numbers, strings, ids, enums, timestamps or records of those"),
                        );
                        return None;
                    }
                }
                ty
            }
            None => {
                self.error(
                    Diagnostic::new(
                        codes::MISSING_CLAUSE,
                        v.name.span,
                        format!("view `{}` needs a `(key TYPE)`", v.name.name),
                    )
                    .label("no key")
                    .help("add `(key account-id)`: the type its rows are looked up by"),
                );
                None
            }
        };
        let mut columns = Vec::new();
        let mut seen = HashMap::new();
        for c in &v.columns {
            if !self.unique(&mut seen, &c.name, "column") {
                continue;
            }
            let (reducer, ty) = match &c.reducer {
                ast::Reducer::Count => (Reducer::Count, Some(Ty::Int(IntTy::U64))),
                ast::Reducer::Sum(t) => (Reducer::Sum, self.resolve_type(t)),
                ast::Reducer::Min(t) => (Reducer::Min, self.resolve_type(t)),
                ast::Reducer::Max(t) => (Reducer::Max, self.resolve_type(t)),
                ast::Reducer::Latest(t) => (Reducer::Latest, self.resolve_type(t)),
                ast::Reducer::List(t, max) => (Reducer::List { max: *max }, self.resolve_type(t)),
            };
            let Some(ty) = ty else { continue };
            let fits = match reducer {
                Reducer::Sum => ty.is_numeric(),
                Reducer::Min | Reducer::Max => ty.is_ordered(&self.types),
                _ => true,
            };
            if !fits {
                let shown = self.show(&ty);
                let what =
                    if reducer == Reducer::Sum { "`sum` adds numbers" } else { "`min` and `max` need an ordered type" };
                self.error(
                    Diagnostic::new(codes::UNSUPPORTED_OPERAND, c.span, format!("{what}, not `{shown}`"))
                        .label("reducer and type do not fit")
                        .help("use `latest` or `list` to keep values of any type"),
                );
                continue;
            }
            columns.push(Column { name: name(&c.name), doc: doc(&c.doc), reducer, ty });
        }
        let mut handlers = Vec::new();
        for on in &v.handlers {
            let Some((aggregate, event)) = self.event_ref(&on.event) else { continue };
            let fields = self.aggregates[aggregate.0 as usize].events[event.0 as usize].fields.clone();
            let agg_key = self.aggregates[aggregate.0 as usize].key.clone();
            let mut scope = self.event_scope(Ctx::View, aggregate, &fields);
            let filter = on.filter.as_ref().and_then(|f| self.expr(f, Some(&Ty::Bool), &mut scope));
            let key_expr = match (&on.key, &key) {
                (Some(k), Some(key_ty)) => self.expr(k, Some(key_ty), &mut scope),
                (Some(_), None) => None,
                (None, Some(key_ty)) if *key_ty == agg_key => {
                    Some(Expr { kind: ExprKind::AggregateId, ty: agg_key.clone(), span: on.event.span })
                }
                (None, Some(key_ty)) => {
                    let shown = self.show(key_ty);
                    self.error(
                        Diagnostic::new(codes::MISSING_CLAUSE, on.span, "this handler needs a `(key EXPR)`")
                            .label(format!("the view is keyed by `{shown}`, the event's aggregate by another type"))
                            .help("say which row the event updates, e.g. `(key depot)`"),
                    );
                    None
                }
                (None, None) => None,
            };
            let mut updates = Vec::new();
            if on.updates.is_empty() {
                self.error(
                    Diagnostic::new(codes::MISSING_CLAUSE, on.span, "this view handler updates no column")
                        .label("no `(COLUMN EXPR)`")
                        .help("add an update such as `(total amount)`, or `(events)` for a count column"),
                );
            }
            for u in &on.updates {
                let Some(index) = columns.iter().position(|c| c.name.dsl == u.column.name) else {
                    if v.columns.iter().any(|c| c.name.name == u.column.name) {
                        continue; // the column had an error, already reported
                    }
                    let help = super::hint(&u.column.name, columns.iter().map(|c| c.name.dsl.as_str()))
                        .unwrap_or_else(|| "declare it: `(column NAME REDUCER)`".to_string());
                    self.error(
                        Diagnostic::new(
                            codes::UNKNOWN_FIELD,
                            u.column.span,
                            format!("view `{}` has no column `{}`", v.name.name, u.column.name),
                        )
                        .label("unknown column")
                        .help(help),
                    );
                    continue;
                };
                let column_ty = columns[index].ty.clone();
                let value = match (&columns[index].reducer, &u.value) {
                    (Reducer::Count, None) => None,
                    (Reducer::Count, Some(e)) => {
                        self.error(
                            Diagnostic::new(
                                codes::WRONG_ARITY,
                                e.span,
                                format!("column `{}` counts events and takes no value", u.column.name),
                            )
                            .label("unexpected value")
                            .help(format!("write `({})`", u.column.name)),
                        );
                        None
                    }
                    (_, Some(e)) => match self.expr(e, Some(&column_ty), &mut scope) {
                        Some(e) => Some(e),
                        None => continue,
                    },
                    (_, None) => {
                        self.error(
                            Diagnostic::new(
                                codes::WRONG_ARITY,
                                u.span,
                                format!("column `{}` needs the value this event contributes", u.column.name),
                            )
                            .label("no value")
                            .help(format!("write `({} EXPR)`", u.column.name)),
                        );
                        continue;
                    }
                };
                updates.push((index, value));
            }
            if let Some(key_expr) = key_expr {
                handlers.push(ViewHandler { aggregate, event, filter, key: key_expr, updates });
            }
        }
        Some(View { name: name(&v.name), doc: doc(&v.doc), key: key?, columns, handlers })
    }

    pub(super) fn check_scenario(&mut self, s: &ast::ScenarioDecl) -> Option<Scenario> {
        let aggregate = match &s.aggregate {
            Some(a) => self.lookup_aggregate(a)?,
            None => self.scenario_aggregate(s)?,
        };
        let a = aggregate.0 as usize;
        let mut scope = Scope::new(Ctx::Scenario);
        let mut given = Vec::new();
        for m in &s.given {
            let Some(event) = self.lookup_event(aggregate, &m.name) else { continue };
            let fields = self.aggregates[a].events[event.0 as usize].fields.clone();
            if let Some(values) =
                self.field_values(&fields, &m.fields, m.span, &format!("event `{}`", m.name.name), &mut scope)
            {
                given.push((event, values));
            }
        }
        let when = s.when.as_ref().and_then(|m| {
            let command = self.lookup_command(aggregate, &m.name)?;
            let params = self.aggregates[a].commands[command.0 as usize].params.clone();
            let values =
                self.field_values(&params, &m.fields, m.span, &format!("command `{}`", m.name.name), &mut scope)?;
            Some((command, values))
        });
        let then = match s.then.as_ref()? {
            Then::Rejected(r, _) => {
                let rejections = &self.aggregates[a].rejections;
                match rejections.iter().position(|x| x.name.dsl == r.name) {
                    Some(i) => {
                        let id = RejectionId(i as u32);
                        if let Some((command, _)) = &when {
                            let cmd = &self.aggregates[a].commands[command.0 as usize];
                            // An invariant or a command in error (reported there) rejects with what it
                            // would have once fixed: not known yet.
                            let broken_invariant = rejections[i].source == RejectionSource::Invariant
                                && !self.aggregates[a].invariants.iter().any(|inv| inv.rejection == id);
                            if broken_invariant || self.commands_in_error.contains(&(aggregate.0, command.0)) {
                                return None;
                            }
                            if !cmd.rejections.contains(&id) {
                                let cmd_name = cmd.name.dsl.clone();
                                self.error(
                                    Diagnostic::new(
                                        codes::UNKNOWN_REJECTION,
                                        r.span,
                                        format!("command `{cmd_name}` can never be rejected with `{}`", r.name),
                                    )
                                    .label("not a rejection of this command")
                                    .help(format!(
                                        "the rejections of `{cmd_name}` are: {}",
                                        self.rejection_list(aggregate, &cmd.rejections.clone())
                                    )),
                                );
                                return None;
                            }
                        }
                        Some(Outcome::Rejected(id))
                    }
                    None => {
                        let help = did_you_mean(&r.name, rejections.iter().map(|x| x.name.dsl.as_str()))
                            .map(|x| format!("did you mean `{x}`?"))
                            .unwrap_or_else(|| {
                                "rejections are named by `require`, `reject`, invariants and extern `rejects`"
                                    .to_string()
                            });
                        let agg_name = self.aggregates[a].name.dsl.clone();
                        self.error(
                            Diagnostic::new(
                                codes::UNKNOWN_REJECTION,
                                r.span,
                                format!("aggregate `{agg_name}` has no rejection `{}`", r.name),
                            )
                            .label("unknown rejection")
                            .help(help),
                        );
                        None
                    }
                }
            }
            Then::Events(events, _) => {
                let mut out = Vec::new();
                let mut ok = true;
                for m in events {
                    let Some(event) = self.lookup_event(aggregate, &m.name) else {
                        ok = false;
                        continue;
                    };
                    let fields = self.aggregates[a].events[event.0 as usize].fields.clone();
                    match self.field_values(&fields, &m.fields, m.span, &format!("event `{}`", m.name.name), &mut scope)
                    {
                        Some(values) => out.push((event, values)),
                        None => ok = false,
                    }
                }
                ok.then_some(Outcome::Events(out))
            }
        };
        let (when, then) = (when?, then?);
        if given.len() != s.given.len() {
            return None;
        }
        Some(Scenario { title: s.title.clone(), span: s.title_span, doc: doc(&s.doc), aggregate, given, when, then })
    }

    fn rejection_list(&self, aggregate: AggregateId, ids: &[RejectionId]) -> String {
        let a = &self.aggregates[aggregate.0 as usize];
        ids.iter().map(|r| a.rejections[r.0 as usize].name.dsl.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// A scenario without `(aggregate NAME)` belongs to the only aggregate, or to the one whose command it runs.
    fn scenario_aggregate(&mut self, s: &ast::ScenarioDecl) -> Option<AggregateId> {
        if self.aggregates.len() == 1 {
            return Some(AggregateId(0));
        }
        let when = s.when.as_ref()?;
        let owners: Vec<usize> = (0..self.aggregates.len())
            .filter(|&a| self.aggregates[a].commands.iter().any(|c| c.name.dsl == when.name.name))
            .collect();
        match owners.as_slice() {
            [a] => Some(AggregateId(*a as u32)),
            [] => {
                let all: Vec<&str> =
                    self.aggregates.iter().flat_map(|a| a.commands.iter().map(|c| c.name.dsl.as_str())).collect();
                let help = did_you_mean(&when.name.name, all.iter().copied()).map(|x| format!("did you mean `{x}`?"));
                self.error(
                    Diagnostic::new(
                        codes::UNKNOWN_COMMAND,
                        when.name.span,
                        format!("no aggregate has a command `{}`", when.name.name),
                    )
                    .label("unknown command")
                    .maybe_help(help),
                );
                None
            }
            many => {
                let names: Vec<String> = many.iter().map(|a| format!("`{}`", self.aggregates[*a].name.dsl)).collect();
                self.error(
                    Diagnostic::new(
                        codes::AMBIGUOUS_COMMAND,
                        when.name.span,
                        format!("command `{}` belongs to several aggregates: {}", when.name.name, names.join(", ")),
                    )
                    .label("which aggregate?")
                    .help(format!("add `(aggregate {})` to the scenario", self.aggregates[many[0]].name.dsl)),
                );
                None
            }
        }
    }

    /// W0001 and W0002: events no command emits, and events no `on` handler applies.
    pub(super) fn event_warnings(&mut self, decls: &[&ast::AggregateDecl]) {
        for (a, decl) in decls.iter().enumerate() {
            let Some(aggregate) = self.aggregates.get(a) else { continue };
            let mut warnings = Vec::new();
            for (e, event_decl) in decl.events.iter().enumerate() {
                let Some(event) = aggregate.events.get(e) else { continue };
                if event.name.dsl != event_decl.name.name
                    || aggregate.events.iter().position(|x| x.name.dsl == event.name.dsl) != Some(e)
                {
                    continue;
                }
                let id = EventId(e as u32);
                if !aggregate.commands.iter().any(|c| c.emits.contains(&id)) {
                    warnings.push(
                        Diagnostic::new(
                            codes::EVENT_NEVER_EMITTED,
                            event_decl.name.span,
                            format!("event `{}` is never emitted", event.name.dsl),
                        )
                        .label("no command emits it")
                        .help(format!("emit it from a command with `(emit {} ...)`, or remove it", event.name.dsl)),
                    );
                }
                if !aggregate.handlers.iter().any(|h| h.event == id) {
                    warnings.push(
                        Diagnostic::new(
                            codes::EVENT_NOT_HANDLED,
                            event_decl.name.span,
                            format!("event `{}` has no `on` handler", event.name.dsl),
                        )
                        .label("the state ignores it")
                        .help(format!(
                            "add `(on {} (set ...))`; if it changes no state on purpose, write `(on {})`",
                            event.name.dsl, event.name.dsl
                        )),
                    );
                }
            }
            self.diagnostics.extend(warnings);
        }
    }
}

use ast::Then;
