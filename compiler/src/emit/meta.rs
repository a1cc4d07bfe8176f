//! The domain's metadata as a `static`: names, types, docs, rejections and policies, for the HTTP API,
//! OpenAPI and the docs page.

use proc_macro2::TokenStream;
use quote::quote;

use super::*;

fn opt(doc: &Option<String>) -> TokenStream {
    match doc {
        Some(d) => quote!(::std::option::Option::Some(#d)),
        None => quote!(::std::option::Option::None),
    }
}

impl Emitter<'_> {
    fn type_meta(&self, ty: &Ty) -> TokenStream {
        let m = quote!(::anthill_runtime::meta::TypeMeta);
        match ty {
            Ty::Bool => quote!(#m::Bool),
            Ty::Int(i) => {
                let (name, signed) = (i.name(), i.is_signed());
                let bits: u32 = name[1..].parse().expect("integer type names end in their width");
                quote!(#m::Int { name: #name, signed: #signed, bits: #bits })
            }
            Ty::Decimal(s) => quote!(#m::Decimal { scale: #s }),
            Ty::String => quote!(#m::String),
            Ty::Timestamp => quote!(#m::Timestamp),
            Ty::Id(t) | Ty::Enum(t) | Ty::Record(t) => {
                let def = &self.domain.types[t.0 as usize];
                let name = &def.name.dsl;
                match &def.kind {
                    TypeDefKind::Id { repr } => {
                        let repr = self.type_meta(repr);
                        quote!(#m::Id { name: #name, repr: &#repr })
                    }
                    TypeDefKind::Enum { variants } => {
                        let vs = variants.iter().map(|v| {
                            let (n, d) = (&v.name.dsl, opt(&v.doc));
                            quote!(::anthill_runtime::meta::VariantMeta { name: #n, doc: #d })
                        });
                        quote!(#m::Enum { name: #name, variants: &[#(#vs),*] })
                    }
                    TypeDefKind::Record { fields } => {
                        let fs = self.fields_meta(fields);
                        quote!(#m::Record { name: #name, fields: #fs })
                    }
                    TypeDefKind::Alias { ty } => self.type_meta(ty),
                }
            }
            Ty::Optional(i) => {
                let i = self.type_meta(i);
                quote!(#m::Optional(&#i))
            }
            Ty::Map(k, v) => {
                let (k, v) = (self.type_meta(k), self.type_meta(v));
                quote!(#m::Map(&#k, &#v))
            }
            Ty::List(e) => {
                let e = self.type_meta(e);
                quote!(#m::List(&#e))
            }
            Ty::Set(e) => {
                let e = self.type_meta(e);
                quote!(#m::Set(&#e))
            }
        }
    }

    fn fields_meta(&self, fields: &[Field]) -> TokenStream {
        let fs = fields.iter().map(|f| {
            let (n, t, d) = (&f.name.dsl, self.type_meta(&f.ty), opt(&f.doc));
            quote!(::anthill_runtime::meta::FieldMeta { name: #n, ty: &#t, doc: #d })
        });
        quote!(&[#(#fs),*])
    }

    pub(super) fn source_text(&self, span: Span) -> String {
        match self.sources.try_get(span.file) {
            Some(file) => file.slice(span).split_whitespace().collect::<Vec<_>>().join(" "),
            None => String::new(),
        }
    }

    pub(super) fn policy_text(&self, policy: &Policy) -> String {
        match policy {
            Policy::Strict => "strict".into(),
            Policy::Relaxed { tolerance, on_violation } => {
                let reaction: Vec<String> = on_violation.iter().map(|s| self.source_text(s.span)).collect();
                if reaction.is_empty() {
                    format!("(relaxed (tolerance {}))", self.source_text(tolerance.span))
                } else {
                    format!(
                        "(relaxed (tolerance {}) (on-violation {}))",
                        self.source_text(tolerance.span),
                        reaction.join(" ")
                    )
                }
            }
            Policy::If { cond, then, otherwise } => format!(
                "(if {} {} {})",
                self.source_text(cond.span),
                self.policy_text(then),
                self.policy_text(otherwise)
            ),
        }
    }

    pub(super) fn domain_meta(&self) -> TokenStream {
        let d = self.domain;
        let name = &d.name.dsl;
        let doc = opt(&d.doc);
        let source = &self.sources.try_get(d.file).map(|f| f.name.clone()).unwrap_or_default();
        let fingerprint = fingerprint(d);
        let aggregates = d.aggregates.iter().map(|a| self.aggregate_meta(a));
        let processes = d.processes.iter().map(|p| {
            let (n, doc) = (&p.name.dsl, opt(&p.doc));
            let handlers = p.handlers.iter().map(|h| {
                let agg = &d.aggregates[h.aggregate.0 as usize];
                let (an, en) = (&agg.name.dsl, &agg.events[h.event.0 as usize].name.dsl);
                let mut sends = BTreeSet::new();
                collect_sends(d, &h.body, &mut sends);
                let sends = sends.iter().map(|(a, c)| quote!((#a, #c)));
                quote!(::anthill_runtime::meta::ProcessHandlerMeta { aggregate: #an, event: #en, sends: &[#(#sends),*] })
            });
            quote!(::anthill_runtime::meta::ProcessMeta { name: #n, doc: #doc, handlers: &[#(#handlers),*] })
        });
        let views = d.views.iter().map(|v| {
            let (n, doc, key) = (&v.name.dsl, opt(&v.doc), self.type_meta(&v.key));
            let columns = v.columns.iter().map(|c| {
                let (cn, cdoc) = (&c.name.dsl, opt(&c.doc));
                let (reducer, ty) = match c.reducer {
                    Reducer::Count => ("count", self.type_meta(&c.ty)),
                    Reducer::Sum => ("sum", self.type_meta(&c.ty)),
                    Reducer::Min => ("min", self.type_meta(&Ty::Optional(Box::new(c.ty.clone())))),
                    Reducer::Max => ("max", self.type_meta(&Ty::Optional(Box::new(c.ty.clone())))),
                    Reducer::Latest => ("latest", self.type_meta(&Ty::Optional(Box::new(c.ty.clone())))),
                    Reducer::List { .. } => ("list", self.type_meta(&Ty::List(Box::new(c.ty.clone())))),
                };
                quote!(::anthill_runtime::meta::ColumnMeta { name: #cn, doc: #cdoc, reducer: #reducer, ty: &#ty })
            });
            let sources: BTreeSet<(String, String)> = v
                .handlers
                .iter()
                .map(|h| {
                    let agg = &d.aggregates[h.aggregate.0 as usize];
                    (agg.name.dsl.clone(), agg.events[h.event.0 as usize].name.dsl.clone())
                })
                .collect();
            let sources = sources.iter().map(|(a, e)| quote!((#a, #e)));
            quote!(::anthill_runtime::meta::ViewMeta {
                name: #n, doc: #doc, key: &#key, columns: &[#(#columns),*], sources: &[#(#sources),*]
            })
        });
        quote! {
            /// The domain described for tools: the HTTP API, OpenAPI and the docs page are built from it.
            pub static META: ::anthill_runtime::meta::DomainMeta = ::anthill_runtime::meta::DomainMeta {
                name: #name,
                doc: #doc,
                source: #source,
                fingerprint: #fingerprint,
                aggregates: &[#(#aggregates),*],
                processes: &[#(#processes),*],
                views: &[#(#views),*],
            };
        }
    }

    fn aggregate_meta(&self, a: &Aggregate) -> TokenStream {
        let (name, doc, key) = (&a.name.dsl, opt(&a.doc), self.type_meta(&a.key));
        let state = self.fields_meta(&a.state);
        let commands = a.commands.iter().map(|c| {
            let (n, d, params) = (&c.name.dsl, opt(&c.doc), self.fields_meta(&c.params));
            let is_extern = matches!(c.body, CommandBody::Extern { .. });
            let emits = c.emits.iter().map(|e| &a.events[e.0 as usize].name.dsl);
            let rejections = c.rejections.iter().map(|r| &a.rejections[r.0 as usize].name.dsl);
            quote!(::anthill_runtime::meta::CommandMeta {
                name: #n, doc: #d, params: #params, is_extern: #is_extern,
                emits: &[#(#emits),*], rejections: &[#(#rejections),*]
            })
        });
        let events = a.events.iter().map(|e| {
            let (n, d, fields) = (&e.name.dsl, opt(&e.doc), self.fields_meta(&e.fields));
            quote!(::anthill_runtime::meta::EventMeta { name: #n, doc: #d, fields: #fields })
        });
        let rejections = a.rejections.iter().map(|r| {
            let (code, message) = (&r.name.dsl, &r.message);
            let kind = match r.source {
                RejectionSource::Builtin => quote!(Builtin),
                RejectionSource::Require => quote!(Require),
                RejectionSource::Invariant => quote!(Invariant),
                RejectionSource::Extern => quote!(Extern),
            };
            quote!(::anthill_runtime::meta::RejectionMeta {
                code: #code, message: #message, kind: ::anthill_runtime::meta::RejectionKind::#kind
            })
        });
        let invariants = a.invariants.iter().enumerate().map(|(i, inv)| {
            let (n, d) = (&inv.name.dsl, opt(&inv.doc));
            let condition = self.source_text(inv.expr.span);
            let policy = self.policy_text(&inv.policy);
            let overrides = a.commands.iter().filter_map(|c| {
                c.policies.iter().find(|o| o.invariant == i).map(|o| {
                    let (cn, p) = (&c.name.dsl, self.policy_text(&o.policy));
                    quote!((#cn, #p))
                })
            });
            quote!(::anthill_runtime::meta::InvariantMeta {
                name: #n, doc: #d, condition: #condition, policy: #policy, overrides: &[#(#overrides),*]
            })
        });
        quote!(::anthill_runtime::meta::AggregateMeta {
            name: #name, doc: #doc, key: &#key, state: #state,
            commands: &[#(#commands),*], events: &[#(#events),*],
            rejections: &[#(#rejections),*], invariants: &[#(#invariants),*]
        })
    }
}
