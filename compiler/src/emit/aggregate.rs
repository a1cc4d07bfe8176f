//! One aggregate as a Rust module: state, events, commands, rejections, decide/evolve, invariants with
//! their policies, process reactions, view updates, and the `anthill_runtime::Aggregate` impl.

use proc_macro2::TokenStream;
use quote::quote;

use super::expr::{ident, Env, Fields, Sends};
use super::*;

impl Emitter<'_> {
    pub(super) fn aggregate(&self, index: usize, a: &Aggregate) -> TokenStream {
        let module = ident(&snake(&a.name.dsl));
        let marker = ident(&camel(&a.name.dsl));
        let name = &a.name.dsl;
        let docs = self.docs(a.doc.as_deref(), a.name.span);
        let domain_marker = ident(&camel(&self.domain.name.dsl));
        let key = self.ty(&a.key);
        let agg = AggregateId(index as u32);

        let state = self.state_struct(a);
        let events = self.event_items(a);
        let commands = self.command_items(a);
        let rejections = self.rejection_items(a);
        let extern_trait = self.extern_trait(a);
        let decide = self.decide_fns(agg, a);
        let evolve = self.evolve_fn(agg, a);
        let react = self.react_fn(agg, a);
        let update_views = self.update_views_fn(agg, a);
        let from_json = a.commands.iter().map(|c| {
            let (dsl, n) = (&c.name.dsl, ident(&camel(&c.name.dsl)));
            quote!(#dsl => ::anthill_runtime::codec::command_params::<commands::#n>(json).map(Command::#n))
        });
        let module_doc = format!(" The `{name}` aggregate: its state, events, commands and rules.");
        let index_lit = proc_macro2::Literal::usize_unsuffixed(index);
        let allow = model_lints();
        let in_place_items = if decides_in_place(a, &self.domain.types) {
            quote! {
                const DECIDES_IN_PLACE: bool = true;
                fn execute_in_place(
                    state: &mut State,
                    command: &Command,
                    ctx: &::anthill_runtime::Context<'_, Id>,
                    before_change: &mut dyn ::std::ops::FnMut(&State),
                ) -> ::std::result::Result<::std::vec::Vec<Event>, ::anthill_runtime::Refused<Rejection>> {
                    run_in_place(state, command, ctx, before_change)
                }
            }
        } else {
            quote!()
        };

        quote! {
            #[doc = #module_doc]
            #allow
            pub mod #module {
                #docs
                #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
                pub struct #marker;

                /// The key of an instance.
                pub type Id = #key;

                #state
                #events
                #commands
                #rejections
                #extern_trait
                #decide
                #evolve
                #react
                #update_views

                impl ::anthill_runtime::Aggregate for #marker {
                    const NAME: &'static str = #name;
                    type Domain = super::#domain_marker;
                    type Id = Id;
                    type State = State;
                    type Command = Command;
                    type Event = Event;
                    type Rejection = Rejection;

                    fn meta() -> &'static ::anthill_runtime::meta::AggregateMeta {
                        &super::META.aggregates[#index_lit]
                    }
                    fn decide(
                        state: &State,
                        command: &Command,
                        ctx: &::anthill_runtime::Context<'_, Id>,
                    ) -> ::std::result::Result<::std::vec::Vec<Event>, Rejection> {
                        run(state, &mut State::default(), command, ctx)
                    }
                    fn execute(
                        state: &mut State,
                        command: &Command,
                        ctx: &::anthill_runtime::Context<'_, Id>,
                    ) -> ::std::result::Result<::std::vec::Vec<Event>, Rejection> {
                        // The trial state lives in a per-thread scratch whose allocations the copy reuses; on
                        // acceptance it swaps places with the state (which becomes the next command's scratch).
                        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
                            ::std::result::Result::Ok(mut next) => {
                                let events = run(state, &mut next, command, ctx)?;
                                ::std::mem::swap(state, &mut *next);
                                ::std::result::Result::Ok(events)
                            }
                            // Only a command run from within another (an extern command's code) gets here.
                            ::std::result::Result::Err(_) => {
                                let mut next = State::default();
                                let events = run(state, &mut next, command, ctx)?;
                                *state = next;
                                ::std::result::Result::Ok(events)
                            }
                        })
                    }
                    #in_place_items
                    fn evolve(
                        state: &mut State,
                        event: &Event,
                        ctx: &::anthill_runtime::EventContext<'_, Id>,
                    ) -> ::std::result::Result<(), ::anthill_runtime::ArithmeticError> {
                        evolve(state, event, ctx)
                    }
                    fn react(
                        event: &Event,
                        ctx: &::anthill_runtime::EventContext<'_, Id>,
                    ) -> ::std::result::Result<
                        ::std::vec::Vec<::anthill_runtime::Reaction<super::Command>>,
                        ::anthill_runtime::ArithmeticError,
                    > {
                        react(event, ctx)
                    }
                    fn update_views(
                        event: &Event,
                        ctx: &::anthill_runtime::EventContext<'_, Id>,
                        tables: &mut dyn ::anthill_runtime::ViewTables,
                    ) -> ::std::result::Result<(), ::anthill_runtime::ViewError> {
                        update_views(event, ctx, tables)
                    }
                    fn encode_event(event: &Event) -> ::std::vec::Vec<u8> {
                        ::anthill_runtime::codec::encode(event)
                    }
                    fn with_encoded_event(event: &Event, use_bytes: &mut dyn ::std::ops::FnMut(&[u8])) {
                        ::anthill_runtime::codec::with_encoded(event, |bytes| use_bytes(bytes))
                    }
                    fn decode_event(bytes: &[u8]) -> ::std::result::Result<Event, ::anthill_runtime::DecodeError> {
                        ::anthill_runtime::codec::decode(bytes)
                    }
                    fn encode_state(state: &State) -> ::std::vec::Vec<u8> {
                        ::anthill_runtime::codec::encode(state)
                    }
                    fn with_encoded_state(state: &State, use_bytes: &mut dyn ::std::ops::FnMut(&[u8])) {
                        ::anthill_runtime::codec::with_encoded(state, |bytes| use_bytes(bytes))
                    }
                    fn decode_state(bytes: &[u8]) -> ::std::result::Result<State, ::anthill_runtime::DecodeError> {
                        ::anthill_runtime::codec::decode(bytes)
                    }
                    fn command_from_json(
                        name: &str,
                        json: &[u8],
                    ) -> ::std::result::Result<Command, ::anthill_runtime::CommandError> {
                        match name {
                            #(#from_json,)*
                            _ => ::std::result::Result::Err(::anthill_runtime::CommandError::UnknownCommand {
                                name: ::std::string::String::from(name),
                            }),
                        }
                    }
                    fn event_to_json(event: &Event) -> ::anthill_runtime::serde_json::Value {
                        ::anthill_runtime::codec::to_json(event)
                    }
                    fn state_to_json(state: &State) -> ::anthill_runtime::serde_json::Value {
                        ::anthill_runtime::codec::to_json(state)
                    }
                }
            }
        }
    }

    fn state_struct(&self, a: &Aggregate) -> TokenStream {
        let derives = data_derives(quote!());
        let fields = self.struct_fields(&a.state, false, 1);
        let env = Env::new();
        let defaults = a.state.iter().map(|f| {
            let n = ident(&snake(&f.name.dsl));
            let v = match &f.default {
                Some(e) => self.arg(e, &env, &Fields::default()),
                None => quote!(::std::default::Default::default()),
            };
            quote!(#n: #v)
        });
        let getters = a.state.iter().map(|f| {
            let n = ident(&snake(&f.name.dsl));
            let ty = self.ty(&f.ty);
            let doc = match &f.doc {
                Some(d) => format!(" {d}"),
                None => format!(" The `{}` field.", f.name.dsl),
            };
            if is_copy(&f.ty) {
                quote!(#[doc = #doc] pub fn #n(&self) -> #ty { self.#n })
            } else {
                quote!(#[doc = #doc] pub fn #n(&self) -> &#ty { &self.#n })
            }
        });
        let copies = if a.state.is_empty() {
            quote!(let _ = from;)
        } else {
            let names = a.state.iter().map(|f| ident(&snake(&f.name.dsl)));
            quote!(#(::std::clone::Clone::clone_from(&mut self.#names, &from.#names);)*)
        };
        let doc = format!(
            " The state of one `{}`. Only its events change it (in `evolve`); everyone else reads it.",
            a.name.dsl
        );
        quote! {
            #[doc = #doc]
            #derives
            #[rkyv(crate = ::anthill_runtime::rkyv)]
            pub struct State {
                #(#fields,)*
            }

            impl ::std::default::Default for State {
                /// A new instance: every field at its declared default.
                fn default() -> Self {
                    State { #(#defaults,)* }
                }
            }

            impl State {
                #(#getters)*

                /// Makes `self` equal to `from`, reusing `self`'s allocations where the fields allow.
                fn copy_from(&mut self, from: &State) {
                    #copies
                }
            }
        }
    }

    fn event_items(&self, a: &Aggregate) -> TokenStream {
        let derives = data_derives(quote!());
        let structs = a.events.iter().map(|e| {
            let n = ident(&camel(&e.name.dsl));
            let docs = self.docs(e.doc.as_deref(), e.name.span);
            let fields = self.struct_fields(&e.fields, true, 2);
            quote! {
                #docs
                #derives
                #[serde(deny_unknown_fields)]
                #[rkyv(crate = ::anthill_runtime::rkyv)]
                pub struct #n { #(#fields,)* }
            }
        });
        let variants = a.events.iter().map(|e| {
            let n = ident(&camel(&e.name.dsl));
            let dsl = &e.name.dsl;
            quote!(#[serde(rename = #dsl)] #n(events::#n))
        });
        let names = a.events.iter().map(|e| {
            let n = ident(&camel(&e.name.dsl));
            let dsl = &e.name.dsl;
            quote!(Event::#n(_) => #dsl)
        });
        let doc = format!(" Every event `{}` records, as a value.", a.name.dsl);
        let body = if a.events.is_empty() { quote!(match *self {}) } else { quote!(match self { #(#names,)* }) };
        quote! {
            /// The events of this aggregate, one struct each.
            pub mod events {
                #(#structs)*
            }

            #[doc = #doc]
            #derives
            #[serde(tag = "type")]
            #[rkyv(crate = ::anthill_runtime::rkyv)]
            pub enum Event {
                #(#variants,)*
            }

            impl ::anthill_runtime::EventName for Event {
                fn name(&self) -> &'static str {
                    #body
                }
            }
        }
    }

    fn command_items(&self, a: &Aggregate) -> TokenStream {
        let derives = data_derives(quote!());
        let structs = a.commands.iter().map(|c| {
            let n = ident(&camel(&c.name.dsl));
            let docs = self.docs(c.doc.as_deref(), c.name.span);
            let fields = self.struct_fields(&c.params, true, 2);
            quote! {
                #docs
                #derives
                #[serde(deny_unknown_fields)]
                #[rkyv(crate = ::anthill_runtime::rkyv)]
                pub struct #n { #(#fields,)* }
            }
        });
        let variants = a.commands.iter().map(|c| {
            let n = ident(&camel(&c.name.dsl));
            let dsl = &c.name.dsl;
            quote!(#[serde(rename = #dsl)] #n(commands::#n))
        });
        let names = a.commands.iter().map(|c| {
            let n = ident(&camel(&c.name.dsl));
            let dsl = &c.name.dsl;
            quote!(Command::#n(_) => #dsl)
        });
        let froms = a.commands.iter().map(|c| {
            let n = ident(&camel(&c.name.dsl));
            quote! {
                impl ::std::convert::From<commands::#n> for Command {
                    fn from(command: commands::#n) -> Self {
                        Command::#n(command)
                    }
                }
            }
        });
        let doc = format!(" Every command `{}` decides, as a value.", a.name.dsl);
        let body = if a.commands.is_empty() { quote!(match *self {}) } else { quote!(match self { #(#names,)* }) };
        quote! {
            /// The commands of this aggregate, one struct each.
            pub mod commands {
                #(#structs)*
            }

            #[doc = #doc]
            #derives
            #[serde(tag = "command")]
            #[rkyv(crate = ::anthill_runtime::rkyv)]
            pub enum Command {
                #(#variants,)*
            }

            impl ::anthill_runtime::CommandName for Command {
                fn name(&self) -> &'static str {
                    #body
                }
            }

            #(#froms)*
        }
    }

    fn rejection_items(&self, a: &Aggregate) -> TokenStream {
        let variants = a.rejections.iter().map(|r| {
            let n = rejection_ident(r);
            let doc = format!(" `{}`: {}", r.name.dsl, r.message);
            let at = format!(" Declared at `{}`.", self.location(r.name.span));
            if matches!(r.source, RejectionSource::Builtin) {
                quote!(#[doc = #doc] #n)
            } else {
                quote!(#[doc = #doc] #[doc = ""] #[doc = #at] #n)
            }
        });
        let idents: Vec<TokenStream> = a.rejections.iter().map(rejection_ident).collect();
        let codes: Vec<&str> = a.rejections.iter().map(|r| r.name.dsl.as_str()).collect();
        let messages = a.rejections.iter().map(|r| r.message.as_str());
        let count = a.rejections.len();
        let overflow = ident(&camel("arithmetic-overflow"));
        let by_zero = ident(&camel("division-by-zero"));
        quote! {
            /// Why a command of this aggregate is refused. Every variant has a stable code and a message.
            #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
            pub enum Rejection {
                #(#variants,)*
            }

            impl Rejection {
                /// Every rejection, in model order.
                pub const ALL: [Rejection; #count] = [#(Rejection::#idents),*];
            }

            impl ::anthill_runtime::Rejection for Rejection {
                fn code(&self) -> &'static str {
                    match self { #(Rejection::#idents => #codes,)* }
                }
                fn message(&self) -> &'static str {
                    match self { #(Rejection::#idents => #messages,)* }
                }
                fn from_code(code: &str) -> ::std::option::Option<Self> {
                    Rejection::ALL.into_iter().find(|r| ::anthill_runtime::Rejection::code(r) == code)
                }
            }

            impl ::std::fmt::Display for Rejection {
                fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                    use ::anthill_runtime::Rejection as _;
                    write!(f, "{}: {}", self.code(), self.message())
                }
            }

            impl ::std::error::Error for Rejection {}

            impl ::std::convert::From<::anthill_runtime::ArithmeticError> for Rejection {
                fn from(error: ::anthill_runtime::ArithmeticError) -> Self {
                    match error {
                        ::anthill_runtime::ArithmeticError::Overflow => Rejection::#overflow,
                        ::anthill_runtime::ArithmeticError::DivisionByZero => Rejection::#by_zero,
                    }
                }
            }
        }
    }

    fn extern_commands<'b>(&self, a: &'b Aggregate) -> Vec<&'b Command> {
        a.commands.iter().filter(|c| matches!(c.body, CommandBody::Extern { .. })).collect()
    }

    fn extern_trait(&self, a: &Aggregate) -> TokenStream {
        let externs = self.extern_commands(a);
        if externs.is_empty() {
            return quote!();
        }
        let marker = camel(&a.name.dsl);
        let domain = snake(&self.domain.name.dsl);
        let module = snake(&a.name.dsl);
        let list: Vec<String> = externs.iter().map(|c| snake(&c.name.dsl)).collect();
        let message = format!("the extern commands of aggregate `{}` are not implemented", a.name.dsl);
        let label = format!("`{marker}` needs an implementation of `{module}::Extern`");
        let note = format!(
            "write `impl {domain}::{module}::Extern for {domain}::{module}::{marker}` with one method per extern command: {}",
            list.join(", ")
        );
        let methods = externs.iter().map(|c| {
            let f = ident(&snake(&c.name.dsl));
            let n = ident(&camel(&c.name.dsl));
            let docs = self.docs(c.doc.as_deref(), c.name.span);
            let emits: Vec<&str> = c.emits.iter().map(|e| a.events[e.0 as usize].name.dsl.as_str()).collect();
            let rejects: Vec<&str> = c
                .rejections
                .iter()
                .map(|r| &a.rejections[r.0 as usize])
                .filter(|r| matches!(r.source, RejectionSource::Extern))
                .map(|r| r.name.dsl.as_str())
                .collect();
            let contract = format!(
                " May return the events {} and the rejections {}. Its `require`s already hold; invariants are checked after.",
                emits.join(", "),
                if rejects.is_empty() { "of its requires only".to_string() } else { rejects.join(", ") }
            );
            quote! {
                #docs
                #[doc = ""]
                #[doc = #contract]
                fn #f(
                    state: &State,
                    command: &commands::#n,
                    ctx: &::anthill_runtime::Context<'_, Id>,
                ) -> ::std::result::Result<::std::vec::Vec<Event>, Rejection>;
            }
        });
        quote! {
            /// The Rust side of this aggregate's extern commands: implement it for the aggregate's marker type.
            #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
            pub trait Extern {
                #(#methods)*
            }
        }
    }

    /// `decide_COMMAND` per command, the invariant checks, and `run`, which ties them together.
    fn decide_fns(&self, agg: AggregateId, a: &Aggregate) -> TokenStream {
        let marker = ident(&camel(&a.name.dsl));
        let per_command = a.commands.iter().map(|c| {
            let f = ident(&format!("decide_{}", snake(&c.name.dsl).trim_start_matches("r#")));
            let n = ident(&camel(&c.name.dsl));
            let fields = Fields { params: Some(&c.params), event: None };
            let env =
                Env { state: Some(quote!(state)), params: Some(quote!(command)), aggregate: Some(agg), ..Env::new() };
            let mut sends = Sends { process: String::new(), step: 0 };
            let (body, stmts): (TokenStream, &[Stmt]) = match &c.body {
                CommandBody::Handler(stmts) => {
                    let body = self.stmts(stmts, &env, &fields, &mut sends);
                    let emits = !c.emits.is_empty() && has_emit(stmts);
                    let body = if emits {
                        quote!(
                            let mut events = ::std::vec::Vec::new();
                            #body
                            ::std::result::Result::Ok(events)
                        )
                    } else {
                        quote!(#body ::std::result::Result::Ok(::std::vec::Vec::new()))
                    };
                    (body, stmts)
                }
                CommandBody::Extern { requires } => {
                    let pre = self.stmts(requires, &env, &fields, &mut sends);
                    let m = ident(&snake(&c.name.dsl));
                    (quote!(#pre <#marker as Extern>::#m(state, command, ctx)), requires)
                }
            };
            let is_extern = matches!(c.body, CommandBody::Extern { .. });
            let state_arg = if is_extern || any_in_stmts(stmts, &uses_state) { quote!(state) } else { quote!(_state) };
            let cmd_arg =
                if is_extern || any_in_stmts(stmts, &uses_params) { quote!(command) } else { quote!(_command) };
            let ctx_arg = if is_extern || any_in_stmts(stmts, &uses_ctx) { quote!(ctx) } else { quote!(_ctx) };
            let doc = format!(" The rules of `{}`: the events it emits, or why it is refused.", c.name.dsl);
            // Events are pushed as the rules run, which for straight-line rules looks like `vec![...]` to clippy.
            let allow = match &c.body {
                CommandBody::Handler(stmts) if has_emit(stmts) => quote!(#[allow(clippy::vec_init_then_push)]),
                _ => quote!(),
            };
            quote! {
                #[doc = #doc]
                #allow
                fn #f(
                    #state_arg: &State,
                    #cmd_arg: &commands::#n,
                    #ctx_arg: &::anthill_runtime::Context<'_, Id>,
                ) -> ::std::result::Result<::std::vec::Vec<Event>, Rejection> {
                    #body
                }
            }
        });
        let arms = a.commands.iter().map(|c| {
            let f = ident(&format!("decide_{}", snake(&c.name.dsl).trim_start_matches("r#")));
            let n = ident(&camel(&c.name.dsl));
            quote!(Command::#n(command) => #f(state, command, ctx)?)
        });
        let decide_match =
            if a.commands.is_empty() { quote!(match *command {}) } else { quote!(match command { #(#arms,)* }) };
        let invariants = self.invariant_fns(agg, a);
        let check_arms = a.commands.iter().map(|c| {
            let n = ident(&camel(&c.name.dsl));
            if c.policies.is_empty() {
                quote!(Command::#n(_) => check_invariants(state, next, reactions, ctx, version)?)
            } else {
                let f = ident(&format!("check_invariants_{}", snake(&c.name.dsl).trim_start_matches("r#")));
                quote!(Command::#n(command) => #f(state, next, reactions, command, ctx, version)?)
            }
        });
        // `run` and `run_in_place` share these two, instead of each holding the per-command matches.
        let (run_checks_fn, checks) = if a.invariants.is_empty() || a.commands.is_empty() {
            (quote!(), quote!(let _ = &mut reactions;))
        } else {
            let run_checks_fn = quote! {
                /// Checks every invariant after `command` with the policy it is under; a relaxed policy's
                /// reaction events go to `reactions`.
                fn run_checks(
                    state: &State,
                    next: &State,
                    reactions: &mut ::std::vec::Vec<Event>,
                    command: &Command,
                    ctx: &::anthill_runtime::Context<'_, Id>,
                    version: u64,
                ) -> ::std::result::Result<(), Rejection> {
                    match command { #(#check_arms,)* }
                    ::std::result::Result::Ok(())
                }
            };
            (run_checks_fn, quote!(run_checks(state, next, &mut reactions, command, ctx, version)?;))
        };
        let run_decide_fn = quote! {
            /// The events of `command` against `state`, or why it is refused.
            fn run_decide(
                state: &State,
                command: &Command,
                ctx: &::anthill_runtime::Context<'_, Id>,
            ) -> ::std::result::Result<::std::vec::Vec<Event>, Rejection> {
                ::std::result::Result::Ok(#decide_match)
            }
        };
        let run_in_place =
            if decides_in_place(a, &self.domain.types) { self.run_in_place_fn(a, &checks) } else { quote!() };
        quote! {
            #(#per_command)*
            #invariants

            ::std::thread_local! {
                /// The trial state of `execute`, reused from command to command on each thread.
                static SCRATCH: ::std::cell::RefCell<State> = ::std::cell::RefCell::new(State::default());
            }

            /// Decides `command`: its events, applied to a copy of the state (`next`, overwritten; left as the
            /// events made it), then every invariant checked on the result with the policy in force; a relaxed
            /// policy's reaction events are added and applied. `state` itself never changes.
            fn run(
                state: &State,
                next: &mut State,
                command: &Command,
                ctx: &::anthill_runtime::Context<'_, Id>,
            ) -> ::std::result::Result<::std::vec::Vec<Event>, Rejection> {
                let mut events = run_decide(state, command, ctx)?;
                next.copy_from(state);
                apply_all(next, &events, ctx, ctx.version)?;
                let version = ctx.version + events.len() as u64;
                let mut reactions = ::std::vec::Vec::new();
                #checks
                if !reactions.is_empty() {
                    apply_all(next, &reactions, ctx, version)?;
                    events.append(&mut reactions);
                }
                ::std::result::Result::Ok(events)
            }

            #run_decide_fn
            #run_checks_fn
            #run_in_place

            /// Applies events decided in this command, numbering their versions from `version`.
            fn apply_all(
                state: &mut State,
                events: &[Event],
                ctx: &::anthill_runtime::Context<'_, Id>,
                version: u64,
            ) -> ::std::result::Result<(), ::anthill_runtime::ArithmeticError> {
                for (offset, event) in (0u64..).zip(events) {
                    let event_ctx = ::anthill_runtime::EventContext {
                        id: ctx.id,
                        version: version + offset,
                        occurred_at: ctx.occurred_at,
                        event_id: 0,
                    };
                    evolve(state, event, &event_ctx)?;
                }
                ::std::result::Result::Ok(())
            }
        }
    }

    /// `run_in_place`: `run` without the copy, for aggregates that decide in place (see [`decides_in_place`]).
    /// Commands whose invariant policies react to a crossing read the state before the command as well as
    /// after it; they still run on a copy.
    fn run_in_place_fn(&self, a: &Aggregate, checks: &TokenStream) -> TokenStream {
        let marker = ident(&camel(&a.name.dsl));
        let on_copy: Vec<TokenStream> = a
            .commands
            .iter()
            .filter(|c| reads_state_before(a, c))
            .map(|c| {
                let n = ident(&camel(&c.name.dsl));
                quote!(Command::#n(_))
            })
            .collect();
        let copy_first = if on_copy.is_empty() {
            quote!()
        } else {
            quote! {
                if let #(#on_copy)|* = command {
                    return <#marker as ::anthill_runtime::Aggregate>::execute(state, command, ctx)
                        .map_err(|rejection| ::anthill_runtime::Refused { rejection, state_changed: false });
                }
            }
        };
        let check_after = if a.invariants.is_empty() {
            quote!()
        } else {
            quote! {
                let version = ctx.version + events.len() as u64;
                // No policy of these commands reacts, so the state before is never read.
                let (state, next) = (&*state, &*state);
                let mut reactions: ::std::vec::Vec<Event> = ::std::vec::Vec::new();
                #checks
                ::std::assert!(reactions.is_empty(), "only policies that read the state before react");
            }
        };
        quote! {
            /// Decides `command` on the state itself: its events are applied to `state` (after `before_change`
            /// has seen it), then every invariant is checked there. A refusal after that leaves `state` changed and
            /// says so; the engine restores it.
            fn run_in_place(
                state: &mut State,
                command: &Command,
                ctx: &::anthill_runtime::Context<'_, Id>,
                before_change: &mut dyn ::std::ops::FnMut(&State),
            ) -> ::std::result::Result<::std::vec::Vec<Event>, ::anthill_runtime::Refused<Rejection>> {
                #copy_first
                let events = run_decide(state, command, ctx)
                    .map_err(|rejection| ::anthill_runtime::Refused { rejection, state_changed: false })?;
                before_change(state);
                let checked = (|| -> ::std::result::Result<(), Rejection> {
                    apply_all(state, &events, ctx, ctx.version)?;
                    #check_after
                    ::std::result::Result::Ok(())
                })();
                match checked {
                    ::std::result::Result::Ok(()) => ::std::result::Result::Ok(events),
                    ::std::result::Result::Err(rejection) => {
                        ::std::result::Result::Err(::anthill_runtime::Refused { rejection, state_changed: true })
                    }
                }
            }
        }
    }

    /// `invariant_NAME` per invariant with its own policy, `invariant_NAME_for_COMMAND` where a command
    /// chooses another; `check_invariants` and `check_invariants_COMMAND` call them in model order.
    fn invariant_fns(&self, agg: AggregateId, a: &Aggregate) -> TokenStream {
        if a.invariants.is_empty() || a.commands.is_empty() {
            return quote!();
        }
        let mut out = Vec::new();
        let mut calls = Vec::new();
        for inv in &a.invariants {
            let f = ident(&format!("invariant_{}", snake(&inv.name.dsl).trim_start_matches("r#")));
            out.push(self.invariant_fn(agg, a, inv, &inv.policy, None, &f));
            calls.push(quote!(#f(before, next, reactions, ctx, version)?;));
        }
        out.push(quote! {
            /// Checks every invariant on `next`, the state after the command, with the invariant's own policy.
            fn check_invariants(
                before: &State,
                next: &State,
                reactions: &mut ::std::vec::Vec<Event>,
                ctx: &::anthill_runtime::Context<'_, Id>,
                version: u64,
            ) -> ::std::result::Result<(), Rejection> {
                #(#calls)*
                ::std::result::Result::Ok(())
            }
        });
        for c in a.commands.iter().filter(|c| !c.policies.is_empty()) {
            let command = snake(&c.name.dsl);
            let command = command.trim_start_matches("r#");
            let mut calls = Vec::new();
            for (index, inv) in a.invariants.iter().enumerate() {
                let name = snake(&inv.name.dsl);
                let name = name.trim_start_matches("r#");
                match c.policies.iter().find(|o| o.invariant == index) {
                    Some(o) => {
                        let f = ident(&format!("invariant_{name}_for_{command}"));
                        out.push(self.invariant_fn(agg, a, inv, &o.policy, Some(c), &f));
                        calls.push(quote!(#f(before, next, reactions, command, ctx, version)?;));
                    }
                    None => {
                        let f = ident(&format!("invariant_{name}"));
                        calls.push(quote!(#f(before, next, reactions, ctx, version)?;));
                    }
                }
            }
            let f = ident(&format!("check_invariants_{command}"));
            let n = ident(&camel(&c.name.dsl));
            let doc = format!(" Checks every invariant for `{}`, which chooses its own policy for some.", c.name.dsl);
            out.push(quote! {
                #[doc = #doc]
                fn #f(
                    before: &State,
                    next: &State,
                    reactions: &mut ::std::vec::Vec<Event>,
                    command: &commands::#n,
                    ctx: &::anthill_runtime::Context<'_, Id>,
                    version: u64,
                ) -> ::std::result::Result<(), Rejection> {
                    #(#calls)*
                    ::std::result::Result::Ok(())
                }
            });
        }
        quote!(#(#out)*)
    }

    /// One invariant under one policy: rejects, accepts, or accepts and reacts.
    fn invariant_fn(
        &self,
        agg: AggregateId,
        a: &Aggregate,
        inv: &Invariant,
        policy: &Policy,
        c: Option<&Command>,
        name: &TokenStream,
    ) -> TokenStream {
        let fields = Fields { params: c.map(|c| c.params.as_slice()), event: None };
        let after = Env {
            state: Some(quote!(next)),
            params: c.map(|_| quote!(command)),
            version: quote!(version),
            aggregate: Some(agg),
            emit_into: quote!(reactions),
            ..Env::new()
        };
        let before = Env { state: Some(quote!(before)), version: quote!(ctx.version), ..after.clone() };
        let broken = self.negated(&inv.expr, &after, &fields);
        let held_before = self.condition(&inv.expr, &before, &fields);
        let rejection = rejection_ident(&a.rejections[inv.rejection.0 as usize]);
        let on_fail = self.policy(policy, inv, &after, &fields, &rejection, &held_before);

        // Name the parameters the checks do not read `_...`, so the code has no unused variables.
        let reacts = policy_reacts(policy);
        let any = |pred: &dyn Fn(&Expr) -> bool| {
            any_in_expr(&inv.expr, pred)
                || inv.bound.as_ref().is_some_and(|b| any_in_expr(&b.lhs, pred) || any_in_expr(&b.rhs, pred))
                || policy_any(policy, pred)
        };
        let version_used = any(&|e: &Expr| matches!(e.kind, ExprKind::Version));
        let ctx_used = any(&|e: &Expr| matches!(e.kind, ExprKind::AggregateId | ExprKind::Now))
            || (reacts && any_in_expr(&inv.expr, &|e: &Expr| matches!(e.kind, ExprKind::Version)));
        let param = |used: bool, name: &str| if used { ident(name) } else { ident(&format!("_{name}")) };
        let (before_p, reactions_p) = (param(reacts, "before"), param(reacts, "reactions"));
        let (ctx_p, version_p) = (param(ctx_used, "ctx"), param(version_used, "version"));
        let command_param = c.map(|c| {
            let n = ident(&camel(&c.name.dsl));
            let p = param(any(&uses_params), "command");
            quote!(#p: &commands::#n,)
        });
        let mut doc = vec![format!(" Invariant `{}`: `{}`.", inv.name.dsl, self.source_text(inv.expr.span))];
        if let Some(d) = &inv.doc {
            doc.push(String::new());
            doc.push(format!(" {d}"));
        }
        doc.push(String::new());
        match c {
            Some(c) => doc.push(format!(" Policy for `{}`: `{}`.", c.name.dsl, self.policy_text(policy))),
            None => doc.push(format!(" Policy: `{}`.", self.policy_text(policy))),
        }
        quote! {
            #(#[doc = #doc])*
            fn #name(
                #before_p: &State,
                next: &State,
                #reactions_p: &mut ::std::vec::Vec<Event>,
                #command_param
                #ctx_p: &::anthill_runtime::Context<'_, Id>,
                #version_p: u64,
            ) -> ::std::result::Result<(), Rejection> {
                if #broken {
                    #on_fail
                }
                ::std::result::Result::Ok(())
            }
        }
    }

    /// What happens when an invariant does not hold after a command, under `policy`.
    fn policy(
        &self,
        policy: &Policy,
        inv: &Invariant,
        env: &Env,
        fields: &Fields<'_>,
        rejection: &TokenStream,
        held_before: &TokenStream,
    ) -> TokenStream {
        match policy {
            Policy::Strict => quote!(return ::std::result::Result::Err(Rejection::#rejection);),
            Policy::Relaxed { tolerance, on_violation } => {
                let bound = inv.bound.as_ref().expect("checked: a relaxed invariant has a bound");
                let tol = self.arg(tolerance, env, fields);
                let lhs = self.arg(&bound.lhs, env, fields);
                let rhs = self.arg(&bound.rhs, env, fields);
                let num = quote!(::anthill_runtime::value::Num);
                // Beyond the tolerance: the negation of `lhs OP rhs -/+ tolerance`.
                let beyond = match bound.op {
                    BoundOp::Ge => quote!(lhs < #num::sub(rhs, tolerance)?),
                    BoundOp::Gt => quote!(lhs <= #num::sub(rhs, tolerance)?),
                    BoundOp::Le => quote!(lhs > #num::add(rhs, tolerance)?),
                    BoundOp::Lt => quote!(lhs >= #num::add(rhs, tolerance)?),
                };
                let mut sends = Sends { process: String::new(), step: 0 };
                let reaction = if on_violation.is_empty() {
                    quote!()
                } else {
                    let body = self.stmts(on_violation, env, fields, &mut sends);
                    quote!(if #held_before { #body })
                };
                quote! {
                    let tolerance = #tol;
                    let (lhs, rhs) = (#lhs, #rhs);
                    if #beyond {
                        return ::std::result::Result::Err(Rejection::#rejection);
                    }
                    #reaction
                }
            }
            Policy::If { cond, then, otherwise } => {
                let c = self.condition(cond, env, fields);
                let t = self.policy(then, inv, env, fields, rejection, held_before);
                let o = self.policy(otherwise, inv, env, fields, rejection, held_before);
                quote!(if #c { #t } else { #o })
            }
        }
    }

    fn evolve_fn(&self, agg: AggregateId, a: &Aggregate) -> TokenStream {
        let env = Env { state: Some(quote!(state)), event: Some(quote!(event)), aggregate: Some(agg), ..Env::new() };
        let mut uses_ctx_any = false;
        let mut uses_state_any = false;
        let arms = a.events.iter().enumerate().map(|(i, e)| {
            let n = ident(&camel(&e.name.dsl));
            let handler = a.handlers.iter().find(|h| h.event.0 as usize == i);
            let Some(h) = handler.filter(|h| !h.body.is_empty()) else {
                return quote!(Event::#n(_) => {});
            };
            uses_ctx_any |= any_in_stmts(&h.body, &uses_ctx);
            uses_state_any = true;
            let fields = Fields { params: None, event: Some(&e.fields) };
            let mut sends = Sends { process: String::new(), step: 0 };
            let body = self.stmts(&h.body, &env, &fields, &mut sends);
            let bind = if any_in_stmts(&h.body, &uses_event) { quote!(event) } else { quote!(_) };
            quote!(Event::#n(#bind) => { #body })
        });
        let arms: Vec<TokenStream> = arms.collect();
        let ctx_arg = if uses_ctx_any { quote!(ctx) } else { quote!(_ctx) };
        let state_arg = if uses_state_any { quote!(state) } else { quote!(_state) };
        let body = if a.events.is_empty() { quote!(match *event {}) } else { quote!(match event { #(#arms)* }) };
        quote! {
            /// Applies one event to the state: the model's `on` handlers.
            fn evolve(
                #state_arg: &mut State,
                event: &Event,
                #ctx_arg: &::anthill_runtime::EventContext<'_, Id>,
            ) -> ::std::result::Result<(), ::anthill_runtime::ArithmeticError> {
                #body
                ::std::result::Result::Ok(())
            }
        }
    }

    fn react_fn(&self, agg: AggregateId, a: &Aggregate) -> TokenStream {
        let mut arms = Vec::new();
        for (i, e) in a.events.iter().enumerate() {
            let mut parts = Vec::new();
            let mut uses_event_any = false;
            for p in &self.domain.processes {
                for h in p.handlers.iter().filter(|h| h.aggregate == agg && h.event.0 as usize == i) {
                    let env = Env {
                        event: Some(quote!(event)),
                        aggregate: Some(agg),
                        emit_into: quote!(reactions),
                        ..Env::new()
                    };
                    let fields = Fields { params: None, event: Some(&e.fields) };
                    let mut sends = Sends { process: p.name.dsl.clone(), step: 0 };
                    let body = self.stmts(&h.body, &env, &fields, &mut sends);
                    uses_event_any |= any_in_stmts(&h.body, &uses_event);
                    let doc = format!("process `{}`", p.name.dsl);
                    parts.push(quote!({ let _process = #doc; #body }));
                }
            }
            if !parts.is_empty() {
                let n = ident(&camel(&e.name.dsl));
                let bind = if uses_event_any { quote!(event) } else { quote!(_) };
                arms.push((quote!(Event::#n(#bind)), quote!(#(#parts)*)));
            }
        }
        if arms.is_empty() {
            return quote! {
                /// No process reacts to this aggregate's events.
                fn react(
                    _event: &Event,
                    _ctx: &::anthill_runtime::EventContext<'_, Id>,
                ) -> ::std::result::Result<
                    ::std::vec::Vec<::anthill_runtime::Reaction<super::Command>>,
                    ::anthill_runtime::ArithmeticError,
                > {
                    ::std::result::Result::Ok(::std::vec::Vec::new())
                }
            };
        }
        let dispatch = single_or_match(arms, a.events.len());
        quote! {
            /// What the domain's processes send in reaction to an event of this aggregate. Command ids derive
            /// from the event's id, the process and the `send`'s position, so a re-run sends the same ids.
            fn react(
                event: &Event,
                ctx: &::anthill_runtime::EventContext<'_, Id>,
            ) -> ::std::result::Result<
                ::std::vec::Vec<::anthill_runtime::Reaction<super::Command>>,
                ::anthill_runtime::ArithmeticError,
            > {
                let mut reactions = ::std::vec::Vec::new();
                #dispatch
                ::std::result::Result::Ok(reactions)
            }
        }
    }
}

fn has_emit(stmts: &[Stmt]) -> bool {
    stmts.iter().any(|s| match &s.kind {
        StmtKind::Emit { .. } => true,
        StmtKind::Let { body, .. } => has_emit(body),
        StmtKind::If { then, otherwise, .. } => has_emit(then) || has_emit(otherwise),
        _ => false,
    })
}

/// `match event { ARMS, _ => {} }`, or `if let` when there is one arm and others fall through.
pub(super) fn single_or_match(arms: Vec<(TokenStream, TokenStream)>, variants: usize) -> TokenStream {
    if arms.len() == 1 && variants > 1 {
        let (pattern, body) = &arms[0];
        return quote!(if let #pattern = event { #body });
    }
    let rest = if arms.len() < variants { quote!(_ => {}) } else { quote!() };
    let arms = arms.iter().map(|(p, b)| quote!(#p => { #b }));
    quote!(match event { #(#arms)* #rest })
}

/// The model's own expressions can trip clippy's style lints (`(<= qty 0)` on a `u32`), and an aggregate
/// may share its domain's name: the author's choices, not something to fix in generated code.
pub(super) fn model_lints() -> TokenStream {
    quote!(#[allow(clippy::absurd_extreme_comparisons, clippy::nonminimal_bool, clippy::module_inception)])
}

/// Whether some relaxed branch of the policy has a reaction to run.
/// Whether the aggregate's commands apply their events to the state itself rather than to a copy: when the
/// state holds a collection, whose copy would cost time in proportion to its size for every command, and some
/// command can do without the state before it.
fn decides_in_place(a: &Aggregate, types: &[TypeDef]) -> bool {
    fn collection(ty: &Ty, types: &[TypeDef]) -> bool {
        match ty {
            Ty::Map(..) | Ty::List(_) | Ty::Set(_) => true,
            Ty::Optional(inner) => collection(inner, types),
            Ty::Record(id) => match &types[id.0 as usize].kind {
                TypeDefKind::Record { fields } => fields.iter().any(|f| collection(&f.ty, types)),
                _ => false,
            },
            _ => false,
        }
    }
    a.state.iter().any(|f| collection(&f.ty, types)) && a.commands.iter().any(|c| !reads_state_before(a, c))
}

/// Whether checking the invariants after `c` reads the state before it (a relaxed policy's reaction runs only
/// when the invariant held before).
fn reads_state_before(a: &Aggregate, c: &Command) -> bool {
    a.invariants.iter().enumerate().any(|(index, inv)| {
        let policy = c.policies.iter().find(|o| o.invariant == index).map_or(&inv.policy, |o| &o.policy);
        policy_reacts(policy)
    })
}

fn policy_reacts(policy: &Policy) -> bool {
    match policy {
        Policy::Strict => false,
        Policy::Relaxed { on_violation, .. } => !on_violation.is_empty(),
        Policy::If { then, otherwise, .. } => policy_reacts(then) || policy_reacts(otherwise),
    }
}

/// Whether any expression of the policy (conditions, tolerances, reactions) satisfies `pred`.
fn policy_any(policy: &Policy, pred: &dyn Fn(&Expr) -> bool) -> bool {
    match policy {
        Policy::Strict => false,
        Policy::Relaxed { tolerance, on_violation } => any_in_expr(tolerance, pred) || any_in_stmts(on_violation, pred),
        Policy::If { cond, then, otherwise } => {
            any_in_expr(cond, pred) || policy_any(then, pred) || policy_any(otherwise, pred)
        }
    }
}
