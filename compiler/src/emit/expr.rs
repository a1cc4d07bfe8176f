//! Expressions and statements of the model as Rust: every operation checked, every value owned.
//!
//! An expression becomes a Rust expression of the matching type. Fallible operations (arithmetic,
//! conversions) end in `?` on a `Result<_, ArithmeticError>`, so the enclosing function returns early with
//! the error, which generated `Rejection`s convert into `arithmetic-overflow` or `division-by-zero`.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use super::Emitter;
use crate::lower::snake;
use crate::model::*;

/// Where an expression is evaluated: how to spell the state, parameters, event fields and the context.
#[derive(Clone)]
pub(super) struct Env {
    /// The state variable (`state`, `next`, `before`), if the state is visible.
    pub state: Option<TokenStream>,
    /// The command variable whose fields are the parameters.
    pub params: Option<TokenStream>,
    /// The event variable whose fields are the event's.
    pub event: Option<TokenStream>,
    /// How to read `version`.
    pub version: TokenStream,
    /// Which aggregate's state and events the expression sees.
    pub aggregate: Option<AggregateId>,
    /// Where emitted events go (`events`, `reactions`).
    pub emit_into: TokenStream,
}

impl Env {
    pub fn new() -> Env {
        Env {
            state: None,
            params: None,
            event: None,
            version: quote!(ctx.version),
            aggregate: None,
            emit_into: quote!(events),
        }
    }
}

pub(super) fn is_copy(ty: &Ty) -> bool {
    match ty {
        Ty::Bool | Ty::Int(_) | Ty::Decimal(_) | Ty::Timestamp | Ty::Enum(_) => true,
        Ty::Optional(inner) => is_copy(inner),
        _ => false,
    }
}

pub(super) fn local(name: &str) -> TokenStream {
    let ident = format_ident!("v_{}", name.replace('-', "_"));
    quote!(#ident)
}

fn num() -> TokenStream {
    quote!(::anthill_runtime::value::Num)
}

fn int() -> TokenStream {
    quote!(::anthill_runtime::value::Int)
}

impl Emitter<'_> {
    fn field_ident(&self, name: &Name) -> TokenStream {
        ident(&snake(&name.dsl))
    }

    fn aggregate_of(&self, env: &Env) -> &Aggregate {
        let id = env.aggregate.expect("an expression over state or events has its aggregate");
        &self.domain.aggregates[id.0 as usize]
    }

    /// A place expression (readable by reference without computing), if `e` is one.
    pub(super) fn place(&self, e: &Expr, env: &Env, fields: &Fields<'_>) -> Option<TokenStream> {
        Some(match &e.kind {
            ExprKind::Param(i) => {
                let base = env.params.as_ref()?;
                let f = self.field_ident(&fields.params?[*i].name);
                quote!(#base.#f)
            }
            ExprKind::State(i) => {
                let base = env.state.as_ref()?;
                let f = self.field_ident(&self.aggregate_of(env).state[*i].name);
                quote!(#base.#f)
            }
            ExprKind::EventField(i) => {
                let base = env.event.as_ref()?;
                let f = self.field_ident(&fields.event?[*i].name);
                quote!(#base.#f)
            }
            ExprKind::Local(name) => local(&name.dsl),
            ExprKind::AggregateId => quote!((*ctx.id)),
            ExprKind::Field { base, record, field } => {
                let base = self.place(base, env, fields)?;
                let f = self.field_ident(&self.record_fields(*record)[*field].name);
                quote!(#base.#f)
            }
            _ => return None,
        })
    }

    pub(super) fn record_fields(&self, record: TypeId) -> &[Field] {
        match &self.domain.types[record.0 as usize].kind {
            TypeDefKind::Record { fields } => fields,
            _ => unreachable!("checked: a record type"),
        }
    }

    /// The expression where any expression may stand (a function argument, a `let`, a field): no outer
    /// parentheses.
    pub(super) fn arg(&self, e: &Expr, env: &Env, fields: &Fields<'_>) -> TokenStream {
        strip_parens(self.expr(e, env, fields))
    }

    /// The expression as the receiver of a method call: a place as it is, anything else in parentheses.
    fn receiver(&self, e: &Expr, env: &Env, fields: &Fields<'_>) -> TokenStream {
        match self.place(e, env, fields) {
            Some(p) => p,
            None => {
                let v = self.arg(e, env, fields);
                quote!((#v))
            }
        }
    }

    /// `&value`, borrowing places instead of cloning them.
    pub(super) fn borrowed(&self, e: &Expr, env: &Env, fields: &Fields<'_>) -> TokenStream {
        match self.place(e, env, fields) {
            Some(p) => quote!(&#p),
            None => {
                let v = self.expr(e, env, fields);
                quote!(&(#v))
            }
        }
    }

    /// A `bool` expression in the position of an `if` condition: without its outer parentheses.
    pub(super) fn condition(&self, e: &Expr, env: &Env, fields: &Fields<'_>) -> TokenStream {
        strip_parens(self.expr(e, env, fields))
    }

    /// The negation of a `bool` expression, spelled without `!` where an operator says it (`a < b` for
    /// `(not (>= a b))`): our ordered types are totally ordered, so the two are the same.
    pub(super) fn negated(&self, e: &Expr, env: &Env, fields: &Fields<'_>) -> TokenStream {
        let flipped = |op: BinOp| match op {
            BinOp::Eq => Some(BinOp::Ne),
            BinOp::Ne => Some(BinOp::Eq),
            BinOp::Lt => Some(BinOp::Ge),
            BinOp::Ge => Some(BinOp::Lt),
            BinOp::Gt => Some(BinOp::Le),
            BinOp::Le => Some(BinOp::Gt),
            _ => None,
        };
        match &e.kind {
            ExprKind::Binary { op, lhs, rhs } if flipped(*op).is_some() => {
                let op = flipped(*op).expect("checked just above");
                strip_parens(self.binary(op, lhs, rhs, env, fields))
            }
            ExprKind::Unary { op: UnOp::Not, arg } => self.condition(arg, env, fields),
            ExprKind::Call { func: func @ (Builtin::IsSome | Builtin::IsNone), args } => {
                let flipped = if *func == Builtin::IsSome { Builtin::IsNone } else { Builtin::IsSome };
                self.call(flipped, args, &e.ty, env, fields)
            }
            _ => {
                let v = self.expr(e, env, fields);
                quote!(!#v)
            }
        }
    }

    /// The expression as an owned value.
    pub(super) fn expr(&self, e: &Expr, env: &Env, fields: &Fields<'_>) -> TokenStream {
        if let Some(place) = self.place(e, env, fields) {
            return if is_copy(&e.ty) { place } else { quote!(#place.clone()) };
        }
        let num = num();
        if let Ty::Id(t) = &e.ty {
            if let ExprKind::Int(_) | ExprKind::Str(_) = e.kind {
                let TypeDefKind::Id { repr } = &self.domain.types[t.0 as usize].kind else {
                    unreachable!("checked: an id type")
                };
                let inner = self.expr(&Expr { ty: repr.clone(), ..e.clone() }, env, fields);
                let path = self.type_path(*t);
                return quote!(#path(#inner));
            }
        }
        match &e.kind {
            ExprKind::Int(v) => int_literal(*v, &e.ty),
            ExprKind::Decimal(m) => {
                let Ty::Decimal(scale) = e.ty else { unreachable!("checked: a decimal literal has a decimal type") };
                let m = i64::try_from(*m).expect("checked: decimal literals fit an i64 mantissa");
                let scale = Literal::u32_unsuffixed(scale);
                let m = Literal::i64_unsuffixed(m);
                quote!(::anthill_runtime::Decimal::<#scale>::from_mantissa(#m))
            }
            ExprKind::Str(s) => quote!(::std::string::String::from(#s)),
            ExprKind::Bool(b) => quote!(#b),
            ExprKind::Enum { ty, variant } => self.enum_value(*ty, *variant),
            ExprKind::None => quote!(::std::option::Option::None),
            ExprKind::Empty => quote!(::std::default::Default::default()),
            ExprKind::Version => env.version.clone(),
            ExprKind::Now => quote!(ctx.now),
            ExprKind::OccurredAt => quote!(ctx.occurred_at),
            ExprKind::Field { base, record, field } => {
                let base = self.expr(base, env, fields);
                let f = self.field_ident(&self.record_fields(*record)[*field].name);
                quote!((#base).#f)
            }
            ExprKind::Unary { op, arg } => {
                let a = self.expr(arg, env, fields);
                let plain = strip_parens(a.clone());
                match op {
                    UnOp::Not => quote!((!#a)),
                    UnOp::Neg => quote!(#num::neg(#plain)?),
                    UnOp::Abs => quote!(#num::abs(#plain)?),
                }
            }
            ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, env, fields),
            ExprKind::And(parts) => {
                let parts = parts.iter().map(|p| self.expr(p, env, fields));
                quote!((#(#parts)&&*))
            }
            ExprKind::Or(parts) => {
                let parts = parts.iter().map(|p| self.expr(p, env, fields));
                quote!((#(#parts)||*))
            }
            ExprKind::Call { func, args } => self.call(*func, args, &e.ty, env, fields),
            ExprKind::If { cond, then, otherwise } => {
                let (c, t, o) =
                    (self.condition(cond, env, fields), self.arg(then, env, fields), self.arg(otherwise, env, fields));
                quote!(if #c { #t } else { #o })
            }
            ExprKind::Let { bindings, body } => {
                let lets = bindings.iter().map(|(name, value)| {
                    let (n, v) = (local(&name.dsl), self.arg(value, env, fields));
                    quote!(let #n = #v;)
                });
                let body = self.arg(body, env, fields);
                quote!({ #(#lets)* #body })
            }
            ExprKind::Update { map, key, binding, default, body } => {
                let m = self.arg(map, env, fields);
                let k = self.arg(key, env, fields);
                let d = self.arg(default, env, fields);
                let b = local(&binding.dsl);
                let body = self.arg(body, env, fields);
                quote!({
                    let mut map = #m;
                    let key = #k;
                    let #b = map.get(&key).cloned().unwrap_or(#d);
                    let value = #body;
                    map.insert(key, value);
                    map
                })
            }
            ExprKind::Make { record, fields: values } => {
                let path = self.type_path(*record);
                let inits = self.record_fields(*record).iter().zip(values).map(|(f, v)| {
                    let (n, v) = (self.field_ident(&f.name), self.arg(v, env, fields));
                    quote!(#n: #v)
                });
                quote!(#path { #(#inits),* })
            }
            ExprKind::As(inner) => {
                let from = self.ty(&inner.ty);
                let to = self.ty(&e.ty);
                let v = self.arg(inner, env, fields);
                quote!(::anthill_runtime::value::convert::<#from, #to>(#v)?)
            }
            ExprKind::Param(_)
            | ExprKind::State(_)
            | ExprKind::EventField(_)
            | ExprKind::Local(_)
            | ExprKind::AggregateId => {
                unreachable!("checked: {:?} is only used where it is visible", e.kind)
            }
        }
    }

    fn binary(&self, op: BinOp, l: &Expr, r: &Expr, env: &Env, fields: &Fields<'_>) -> TokenStream {
        let (num, int) = (num(), int());
        let value = |e: &Expr| self.arg(e, env, fields);
        match op {
            BinOp::Add => {
                let (a, b) = (value(l), value(r));
                quote!(#num::add(#a, #b)?)
            }
            BinOp::Sub => {
                let (a, b) = (value(l), value(r));
                quote!(#num::sub(#a, #b)?)
            }
            BinOp::Rem => {
                let (a, b) = (value(l), value(r));
                quote!(#int::rem(#a, #b)?)
            }
            BinOp::Mul | BinOp::Div => {
                let (a, b) = (value(l), value(r));
                let (ra, rb) = (self.receiver(l, env, fields), self.receiver(r, env, fields));
                match (&l.ty, &r.ty, op) {
                    (Ty::Decimal(_), _, BinOp::Mul) => quote!(#ra.mul_int(#b)?),
                    (_, Ty::Decimal(_), BinOp::Mul) => quote!(#rb.mul_int(#a)?),
                    (Ty::Decimal(_), _, _) => quote!(#ra.div_int(#b)?),
                    (_, _, BinOp::Mul) => quote!(#int::mul(#a, #b)?),
                    _ => quote!(#int::div(#a, #b)?),
                }
            }
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                // `s = ""` is `s.is_empty()`.
                if matches!(op, BinOp::Eq | BinOp::Ne) {
                    let other = match (&l.kind, &r.kind) {
                        (_, ExprKind::Str(t)) if t.is_empty() && r.ty == Ty::String => Some(l),
                        (ExprKind::Str(t), _) if t.is_empty() && l.ty == Ty::String => Some(r),
                        _ => None,
                    };
                    if let Some(other) = other {
                        let o = self.receiver(other, env, fields);
                        return if op == BinOp::Eq { quote!(#o.is_empty()) } else { quote!((!#o.is_empty())) };
                    }
                }
                // `x = none` is `x.is_none()`.
                if matches!(op, BinOp::Eq | BinOp::Ne) {
                    let (other, none) = match (&l.kind, &r.kind) {
                        (_, ExprKind::None) => (Some(l), true),
                        (ExprKind::None, _) => (Some(r), true),
                        _ => (None, false),
                    };
                    if let (Some(other), true) = (other, none) {
                        let o = self.receiver(other, env, fields);
                        return if op == BinOp::Eq { quote!(#o.is_none()) } else { quote!(#o.is_some()) };
                    }
                }
                // Comparison operators borrow their operands, so places are compared without a clone, and
                // strings with a literal as `&str`.
                let operand = |e: &Expr| match (&e.kind, &e.ty) {
                    (ExprKind::Str(text), Ty::String) => quote!(#text),
                    _ => match self.place(e, env, fields) {
                        Some(p) => strip_parens(p),
                        None => value(e),
                    },
                };
                let (a, b) = (operand(l), operand(r));
                match op {
                    BinOp::Eq => quote!((#a == #b)),
                    BinOp::Ne => quote!((#a != #b)),
                    BinOp::Lt => quote!((#a < #b)),
                    BinOp::Le => quote!((#a <= #b)),
                    BinOp::Gt => quote!((#a > #b)),
                    _ => quote!((#a >= #b)),
                }
            }
            BinOp::Min => {
                let (a, b) = (value(l), value(r));
                quote!(::std::cmp::min(#a, #b))
            }
            BinOp::Max => {
                let (a, b) = (value(l), value(r));
                quote!(::std::cmp::max(#a, #b))
            }
        }
    }

    fn call(&self, func: Builtin, args: &[Expr], ty: &Ty, env: &Env, fields: &Fields<'_>) -> TokenStream {
        let value = |e: &Expr| self.arg(e, env, fields);
        let borrowed = |e: &Expr| self.borrowed(e, env, fields);
        let coll = || self.receiver(&args[0], env, fields);
        match func {
            Builtin::Get => {
                let (m, k) = (coll(), borrowed(&args[1]));
                quote!(#m.get(#k).cloned())
            }
            Builtin::GetOr => {
                let (m, k, d) = (coll(), borrowed(&args[1]), value(&args[2]));
                quote!(#m.get(#k).cloned().unwrap_or(#d))
            }
            Builtin::Put => {
                let (m, k, v) = (value(&args[0]), value(&args[1]), value(&args[2]));
                quote!({ let mut map = #m; map.insert(#k, #v); map })
            }
            Builtin::Remove => {
                let (m, k) = (value(&args[0]), borrowed(&args[1]));
                quote!({ let mut collection = #m; collection.remove(#k); collection })
            }
            Builtin::Insert => {
                let (s, v) = (value(&args[0]), value(&args[1]));
                quote!({ let mut set = #s; set.insert(#v); set })
            }
            Builtin::Push => {
                let (l, v) = (value(&args[0]), value(&args[1]));
                quote!({ let mut list = #l; list.push(#v); list })
            }
            Builtin::Contains => {
                let (c, k) = (coll(), borrowed(&args[1]));
                match args[0].ty {
                    Ty::Map(..) => quote!(#c.contains_key(#k)),
                    _ => quote!(#c.contains(#k)),
                }
            }
            Builtin::Count => {
                let c = coll();
                match args[0].ty {
                    Ty::String => quote!((#c.chars().count() as u64)),
                    _ => quote!((#c.len() as u64)),
                }
            }
            Builtin::IsEmpty => {
                let c = coll();
                quote!(#c.is_empty())
            }
            Builtin::Sum => {
                let c = coll();
                let elems = match args[0].ty {
                    Ty::Map(..) => quote!(#c.values()),
                    _ => quote!(#c.iter()),
                };
                let num = num();
                let t = self.ty(ty);
                quote!(#elems.try_fold(<#t as ::std::default::Default>::default(), |sum, x| #num::add(sum, *x))?)
            }
            Builtin::First => {
                let c = coll();
                quote!(#c.first().cloned())
            }
            Builtin::Last => {
                let c = coll();
                quote!(#c.last().cloned())
            }
            Builtin::MinKey => {
                let c = coll();
                quote!(#c.keys().next().cloned())
            }
            Builtin::MaxKey => {
                let c = coll();
                quote!(#c.keys().next_back().cloned())
            }
            Builtin::Some => {
                let v = value(&args[0]);
                quote!(::std::option::Option::Some(#v))
            }
            Builtin::IsSome => {
                let c = coll();
                quote!(#c.is_some())
            }
            Builtin::IsNone => {
                let c = coll();
                quote!(#c.is_none())
            }
            Builtin::UnwrapOr => {
                let (o, d) = (self.receiver(&args[0], env, fields), value(&args[1]));
                let o = if self.place(&args[0], env, fields).is_some() && !is_copy(&args[0].ty) {
                    quote!(#o.clone())
                } else {
                    o
                };
                quote!(#o.unwrap_or(#d))
            }
        }
    }

    /// Statements of a command, an `on` handler, a policy reaction or a process.
    pub(super) fn stmts(&self, stmts: &[Stmt], env: &Env, fields: &Fields<'_>, out: &mut Sends) -> TokenStream {
        let items = stmts.iter().map(|s| self.stmt(s, env, fields, out));
        quote!(#(#items)*)
    }

    fn stmt(&self, s: &Stmt, env: &Env, fields: &Fields<'_>, out: &mut Sends) -> TokenStream {
        match &s.kind {
            StmtKind::Require { cond, rejection } => {
                let c = self.negated(cond, env, fields);
                let r = self.rejection_path(env, *rejection);
                quote!(if #c { return ::std::result::Result::Err(#r); })
            }
            StmtKind::Reject { rejection } => {
                let r = self.rejection_path(env, *rejection);
                quote!(return ::std::result::Result::Err(#r);)
            }
            StmtKind::Emit { event, fields: values } => {
                let aggregate = self.aggregate_of(env);
                let ev = &aggregate.events[event.0 as usize];
                let name = ident(&crate::lower::camel(&ev.name.dsl));
                let inits = ev.fields.iter().zip(values).map(|(f, v)| {
                    let (n, v) = (self.field_ident(&f.name), self.arg(v, env, fields));
                    quote!(#n: #v)
                });
                let into = &env.emit_into;
                quote!(#into.push(Event::#name(events::#name { #(#inits),* }));)
            }
            StmtKind::Set { field, value } => self.set(*field, value, env, fields),
            StmtKind::Send { aggregate, id, command, args, on_rejected } => {
                let target = &self.domain.aggregates[aggregate.0 as usize];
                let module = ident(&snake(&target.name.dsl));
                let variant = ident(&crate::lower::camel(&target.name.dsl));
                let cmd = &target.commands[command.0 as usize];
                let cmd_name = ident(&crate::lower::camel(&cmd.name.dsl));
                let id = self.arg(id, env, fields);
                let inits = cmd.params.iter().zip(args).map(|(f, v)| {
                    let (n, v) = (self.field_ident(&f.name), self.arg(v, env, fields));
                    quote!(#n: #v)
                });
                let process = out.process.clone();
                let step = out.step;
                out.step += 1;
                let compensation = if on_rejected.is_empty() {
                    quote!(::std::vec::Vec::new())
                } else {
                    let inner = self.stmts(on_rejected, env, fields, out);
                    quote!({
                        let mut reactions = ::std::vec::Vec::new();
                        #inner
                        reactions
                    })
                };
                quote!({
                    let command_id = ::anthill_runtime::derive_command_id(ctx.event_id, #process, #step);
                    let command = super::Command::#variant {
                        id: #id,
                        command: super::#module::Command::#cmd_name(super::#module::commands::#cmd_name { #(#inits),* }),
                    };
                    let on_rejected = #compensation;
                    reactions.push(::anthill_runtime::Reaction { command_id, command, on_rejected });
                })
            }
            StmtKind::Let { bindings, body } => {
                let lets = bindings.iter().map(|(name, value)| {
                    let (n, v) = (local(&name.dsl), self.arg(value, env, fields));
                    quote!(let #n = #v;)
                });
                let body = self.stmts(body, env, fields, out);
                quote!({ #(#lets)* #body })
            }
            StmtKind::If { cond, then, otherwise } => {
                let c = self.condition(cond, env, fields);
                let t = self.stmts(then, env, fields, out);
                if otherwise.is_empty() {
                    quote!(if #c { #t })
                } else {
                    let o = self.stmts(otherwise, env, fields, out);
                    quote!(if #c { #t } else { #o })
                }
            }
        }
    }

    /// `(set FIELD VALUE)`; updates of a collection field in place (`put`, `remove`, `insert`, `push`,
    /// `update` on the field itself) mutate it rather than copy it.
    fn set(&self, field: usize, value: &Expr, env: &Env, fields: &Fields<'_>) -> TokenStream {
        let state = env.state.as_ref().expect("checked: `set` is only in `on` handlers");
        let f = self.field_ident(&self.aggregate_of(env).state[field].name);
        let is_this_field = |e: &Expr| matches!(e.kind, ExprKind::State(i) if i == field);
        match &value.kind {
            ExprKind::Call { func, args } if is_this_field(&args[0]) => {
                let arg = |i: usize| self.arg(&args[i], env, fields);
                match func {
                    Builtin::Put => {
                        let (k, v) = (arg(1), arg(2));
                        return quote!({ let key = #k; let value = #v; #state.#f.insert(key, value); });
                    }
                    Builtin::Remove => {
                        let k = arg(1);
                        return quote!({ let key = #k; #state.#f.remove(&key); });
                    }
                    Builtin::Insert => {
                        let v = arg(1);
                        return quote!({ let value = #v; #state.#f.insert(value); });
                    }
                    Builtin::Push => {
                        let v = arg(1);
                        return quote!({ let value = #v; #state.#f.push(value); });
                    }
                    _ => {}
                }
            }
            ExprKind::Update { map, key, binding, default, body } if is_this_field(map) => {
                let k = self.arg(key, env, fields);
                let d = self.arg(default, env, fields);
                let b = local(&binding.dsl);
                let body = self.arg(body, env, fields);
                return quote!({
                    let key = #k;
                    let #b = #state.#f.get(&key).cloned().unwrap_or(#d);
                    let value = #body;
                    #state.#f.insert(key, value);
                });
            }
            _ => {}
        }
        let v = self.arg(value, env, fields);
        quote!(#state.#f = #v;)
    }

    fn rejection_path(&self, env: &Env, rejection: RejectionId) -> TokenStream {
        let r = &self.aggregate_of(env).rejections[rejection.0 as usize];
        let name = ident(&crate::lower::camel(&r.name.dsl));
        quote!(Rejection::#name)
    }
}

/// The parameter and event field lists names in an expression refer to.
#[derive(Clone, Copy, Default)]
pub(super) struct Fields<'a> {
    pub params: Option<&'a [Field]>,
    pub event: Option<&'a [Field]>,
}

/// State for emitting a process's `send`s: the process name that seeds command ids.
pub(super) struct Sends {
    pub process: String,
    /// The next `send`'s position in the handler, in source order: part of its command id.
    pub step: u32,
}

pub(super) fn ident(name: &str) -> TokenStream {
    match name.strip_prefix("r#") {
        Some(raw) => {
            let i = proc_macro2::Ident::new_raw(raw, proc_macro2::Span::call_site());
            quote!(#i)
        }
        None => {
            let i = proc_macro2::Ident::new(name, proc_macro2::Span::call_site());
            quote!(#i)
        }
    }
}

fn int_literal(v: i128, ty: &Ty) -> TokenStream {
    if let Ty::Timestamp = ty {
        let micros = Literal::i64_unsuffixed(i64::try_from(v).expect("checked: timestamp literals fit an i64"));
        return quote!(::anthill_runtime::Timestamp::from_micros(#micros));
    }
    let Ty::Int(t) = ty else { unreachable!("checked: an integer literal has an integer or timestamp type") };
    let lit = match t {
        IntTy::U8 => Literal::u8_suffixed(v as u8),
        IntTy::U16 => Literal::u16_suffixed(v as u16),
        IntTy::U32 => Literal::u32_suffixed(v as u32),
        IntTy::U64 => Literal::u64_suffixed(v as u64),
        IntTy::I8 => Literal::i8_suffixed(v as i8),
        IntTy::I16 => Literal::i16_suffixed(v as i16),
        IntTy::I32 => Literal::i32_suffixed(v as i32),
        IntTy::I64 => Literal::i64_suffixed(v as i64),
    };
    if v < 0 {
        let lit = match t {
            IntTy::I8 => Literal::i8_suffixed((-v) as i8),
            IntTy::I16 => Literal::i16_suffixed((-v) as i16),
            IntTy::I32 => Literal::i32_suffixed((-v) as i32),
            _ => Literal::i64_suffixed((-v) as i64),
        };
        // `-128i8` is the negation of an out-of-range literal; spell the minimum as the constant.
        if v == t.min() {
            let name = ident(t.name());
            return quote!(#name::MIN);
        }
        return quote!((-#lit));
    }
    quote!(#lit)
}

/// `(x)` → `x`: the tokens inside one outer pair of parentheses, or all of them.
pub(super) fn strip_parens(tokens: TokenStream) -> TokenStream {
    let mut iter = tokens.clone().into_iter();
    match (iter.next(), iter.next()) {
        (Some(proc_macro2::TokenTree::Group(g)), None) if g.delimiter() == proc_macro2::Delimiter::Parenthesis => {
            g.stream()
        }
        _ => tokens,
    }
}
