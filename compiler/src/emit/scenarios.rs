//! Scenarios as `#[test]` functions over the pure decide/evolve logic.

use proc_macro2::TokenStream;
use quote::quote;

use super::expr::{ident, Env, Fields};
use super::*;

/// `"a deposit is recorded"` → `a_deposit_is_recorded`; other characters become `_`, runs collapse.
fn test_name(title: &str, taken: &mut BTreeSet<String>) -> String {
    let mut name = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    let mut name = name.trim_matches('_').to_string();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "scenario_");
    }
    let base = name.clone();
    let mut n = 2;
    while !taken.insert(name.clone()) {
        name = format!("{base}_{n}");
        n += 1;
    }
    name
}

impl Emitter<'_> {
    pub(super) fn scenarios_module(&self) -> TokenStream {
        if self.domain.scenarios.is_empty() {
            return quote!();
        }
        let mut taken = BTreeSet::new();
        let tests = self.domain.scenarios.iter().map(|s| {
            let a = &self.domain.aggregates[s.aggregate.0 as usize];
            let module = ident(&snake(&a.name.dsl));
            let marker = ident(&camel(&a.name.dsl));
            let name = ident(&test_name(&s.title, &mut taken));
            let env = Env { aggregate: Some(s.aggregate), ..Env::new() };
            let event = |(e, values): &(EventId, Vec<Expr>)| {
                let ev = &a.events[e.0 as usize];
                let n = ident(&camel(&ev.name.dsl));
                let inits = ev.fields.iter().zip(values).map(|(f, v)| {
                    let (fname, v) = (ident(&snake(&f.name.dsl)), self.arg(v, &env, &Fields::default()));
                    quote!(#fname: #v)
                });
                quote!(super::#module::Event::#n(super::#module::events::#n { #(#inits),* }))
            };
            let given = s.given.iter().map(event);
            let (c, values) = &s.when;
            let cmd = &a.commands[c.0 as usize];
            let cn = ident(&camel(&cmd.name.dsl));
            let inits = cmd.params.iter().zip(values).map(|(f, v)| {
                let (fname, v) = (ident(&snake(&f.name.dsl)), self.arg(v, &env, &Fields::default()));
                quote!(#fname: #v)
            });
            let then = match &s.then {
                Outcome::Events(events) => {
                    let events = events.iter().map(event);
                    quote!(::std::result::Result::Ok(::std::vec![#(#events),*]))
                }
                Outcome::Rejected(r) => {
                    let r = rejection_ident(&a.rejections[r.0 as usize]);
                    quote!(::std::result::Result::Err(super::#module::Rejection::#r))
                }
            };
            let id = match &a.key {
                Ty::Id(t) => {
                    let path = self.type_path(*t);
                    match &self.domain.types[t.0 as usize].kind {
                        TypeDefKind::Id { repr: Ty::String } => quote!(#path(::std::string::String::from("scenario"))),
                        _ => quote!(#path(1)),
                    }
                }
                Ty::String => quote!(::std::string::String::from("scenario")),
                _ => quote!(1),
            };
            let title = &s.title;
            let doc = format!(" Scenario \"{}\", declared at `{}`.", s.title, self.location(s.span));
            quote! {
                #[doc = #doc]
                #[test]
                fn #name() -> ::std::result::Result<(), ::anthill_runtime::ArithmeticError> {
                    let given = [#(#given),*];
                    let when = super::#module::Command::#cn(super::#module::commands::#cn { #(#inits),* });
                    let then = #then;
                    ::anthill_runtime::testing::run_scenario::<super::#module::#marker>(#title, &#id, &given, &when, &then);
                    ::std::result::Result::Ok(())
                }
            }
        });
        quote! {
            /// The model's scenarios, run on the pure decide/evolve logic.
            #[cfg(test)]
            mod scenarios {
                #(#tests)*
            }
        }
    }
}
