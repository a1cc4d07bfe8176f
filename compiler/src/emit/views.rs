//! Views as Rust: a row type per view, and the fold of each aggregate's events into the rows.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::expr::{ident, Env, Fields};
use super::*;

impl Emitter<'_> {
    /// The stored type of a column: what it holds between events.
    fn column_ty(&self, c: &Column) -> TokenStream {
        let t = self.ty(&c.ty);
        match c.reducer {
            Reducer::Count | Reducer::Sum => t,
            Reducer::Min | Reducer::Max | Reducer::Latest => quote!(::std::option::Option<#t>),
            Reducer::List { .. } => quote!(::std::vec::Vec<#t>),
        }
    }

    pub(super) fn views_module(&self) -> TokenStream {
        if self.domain.views.is_empty() {
            return quote!();
        }
        let rows = self.domain.views.iter().map(|v| {
            let n = ident(&camel(&v.name.dsl));
            let dsl = &v.name.dsl;
            let docs = self.docs(v.doc.as_deref(), v.name.span);
            let key = self.ty(&v.key);
            let derives = data_derives(quote!(Default,));
            let columns = v.columns.iter().map(|c| {
                let f = ident(&snake(&c.name.dsl));
                let ty = self.column_ty(c);
                let cdocs = self.docs(c.doc.as_deref(), c.name.span);
                let cdsl = &c.name.dsl;
                let timing = match c.reducer {
                    Reducer::Latest => {
                        let at = format_ident!("{}_at", snake(&c.name.dsl).trim_start_matches("r#"));
                        quote!(
                            #[doc = " When the value in the column occurred: a backdated event does not replace a newer one."]
                            #[serde(skip)]
                            pub #at: ::anthill_runtime::Timestamp,
                        )
                    }
                    Reducer::List { .. } => {
                        let at = format_ident!("{}_at", snake(&c.name.dsl).trim_start_matches("r#"));
                        quote!(
                            #[doc = " When each value in the column occurred, in the same order."]
                            #[serde(skip)]
                            pub #at: ::std::vec::Vec<::anthill_runtime::Timestamp>,
                        )
                    }
                    _ => quote!(),
                };
                quote!(#cdocs #[serde(rename = #cdsl)] pub #f: #ty, #timing)
            });
            quote! {
                #docs
                #derives
                #[rkyv(crate = ::anthill_runtime::rkyv)]
                pub struct #n {
                    #(#columns)*
                }

                impl #n {
                    /// The view's name in the model, which names its table.
                    pub const NAME: &'static str = #dsl;

                    /// The row's key as stored: a `1` byte, then the key's order-preserving bytes (the first
                    /// byte keeps an empty string a valid LMDB key).
                    pub fn key_bytes(key: &#key) -> ::std::vec::Vec<u8> {
                        ::anthill_runtime::aggregate::view_key_bytes(key)
                    }

                    /// A stored row, validated.
                    pub fn decode(bytes: &[u8]) -> ::std::result::Result<Self, ::anthill_runtime::DecodeError> {
                        ::anthill_runtime::codec::decode(bytes)
                    }

                    pub fn encode(&self) -> ::std::vec::Vec<u8> {
                        ::anthill_runtime::codec::encode(self)
                    }

                    /// The row for `key` in the engine's tables, or an empty row.
                    pub fn load(
                        tables: &mut dyn ::anthill_runtime::ViewTables,
                        key: &#key,
                    ) -> ::std::result::Result<Self, ::anthill_runtime::ViewError> {
                        Self::load_at(tables, &Self::key_bytes(key))
                    }

                    /// The row stored under `key` (as [`Self::key_bytes`] writes it), or an empty row.
                    pub fn load_at(
                        tables: &mut dyn ::anthill_runtime::ViewTables,
                        key: &[u8],
                    ) -> ::std::result::Result<Self, ::anthill_runtime::ViewError> {
                        // Decoded straight from the stored bytes (no copy out of the tables).
                        let mut row = ::std::result::Result::Ok(Self::default());
                        tables.get_with(Self::NAME, key, &mut |bytes| {
                            if let ::std::option::Option::Some(bytes) = bytes {
                                row = Self::decode(bytes).map_err(|e| {
                                    ::anthill_runtime::ViewError { view: Self::NAME, message: e.to_string() }
                                });
                            }
                        })?;
                        row
                    }

                    pub fn store(
                        &self,
                        tables: &mut dyn ::anthill_runtime::ViewTables,
                        key: &#key,
                    ) -> ::std::result::Result<(), ::anthill_runtime::ViewError> {
                        self.store_at(tables, &Self::key_bytes(key))
                    }

                    /// Stores the row under `key` (as [`Self::key_bytes`] writes it).
                    pub fn store_at(
                        &self,
                        tables: &mut dyn ::anthill_runtime::ViewTables,
                        key: &[u8],
                    ) -> ::std::result::Result<(), ::anthill_runtime::ViewError> {
                        if key.len() > ::anthill_runtime::aggregate::VIEW_KEY_BYTES_MAX {
                            return ::std::result::Result::Err(::anthill_runtime::ViewError {
                                view: Self::NAME,
                                message: ::std::format!("a key of {} bytes is longer than the store allows", key.len()),
                            });
                        }
                        ::anthill_runtime::codec::with_encoded(self, |bytes| tables.put(Self::NAME, key, bytes))
                    }

                    /// The row type, erased, for [`::anthill_runtime::ViewTables::update_row`].
                    pub const CODEC: ::anthill_runtime::aggregate::RowCodec =
                        ::anthill_runtime::aggregate::RowCodec::of::<Self>();

                    /// Folds into the row stored under `key` (as [`Self::key_bytes`] writes it), or an empty
                    /// row, in place: the engine keeps the row decoded until the end of its batch.
                    pub fn update_at(
                        tables: &mut dyn ::anthill_runtime::ViewTables,
                        key: &[u8],
                        fold: &mut dyn FnMut(&mut Self) -> ::std::result::Result<(), ::anthill_runtime::aggregate::FoldError>,
                    ) -> ::std::result::Result<(), ::anthill_runtime::aggregate::FoldError> {
                        ::anthill_runtime::codec::update_row(tables, Self::NAME, key, &Self::CODEC, fold)
                    }

                    /// Folds into the row for `key`, as [`Self::update_at`] does, without allocating its key.
                    pub fn update(
                        tables: &mut dyn ::anthill_runtime::ViewTables,
                        key: &#key,
                        fold: &mut dyn FnMut(&mut Self) -> ::std::result::Result<(), ::anthill_runtime::aggregate::FoldError>,
                    ) -> ::std::result::Result<(), ::anthill_runtime::aggregate::FoldError> {
                        ::anthill_runtime::aggregate::with_view_key(key, |key| Self::update_at(tables, key, fold))
                    }
                }
            }
        });
        let allow = super::aggregate::model_lints();
        quote! {
            /// The domain's views: one row type per view, keyed as the view declares.
            #allow
            pub mod views {
                #(#rows)*
            }
        }
    }

    /// The `Domain` methods that reach views by name: key from text, key to text, row to JSON.
    pub(super) fn domain_view_fns(&self) -> TokenStream {
        if self.domain.views.is_empty() {
            return quote!();
        }
        let arms = |body: &dyn Fn(&View, &TokenStream, &TokenStream) -> TokenStream| {
            let arms = self.domain.views.iter().map(|v| {
                let dsl = &v.name.dsl;
                let row = ident(&camel(&v.name.dsl));
                let key = self.ty_in(&v.key, 0);
                let body = body(v, &row, &key);
                quote!(#dsl => ::std::option::Option::Some(#body))
            });
            quote!(match view { #(#arms,)* _ => ::std::option::Option::None })
        };
        let key = arms(
            &|_, row, key| quote!(<#key as ::anthill_runtime::Key>::parse_key(text).map(|key| views::#row::key_bytes(&key))),
        );
        let key_text = arms(&|_, _, key| {
            quote!(match bytes.split_first() {
                ::std::option::Option::Some((1, rest)) => {
                    <#key as ::anthill_runtime::Key>::decode_key(rest).map(|key| key.to_string())
                }
                _ => ::std::result::Result::Err(::anthill_runtime::DecodeError::new("a view key without its marker byte")),
            })
        });
        let row_json =
            arms(&|_, row, _| quote!(views::#row::decode(bytes).map(|row| ::anthill_runtime::codec::to_json(&row))));
        quote! {
            fn view_key(
                view: &str,
                text: &str,
            ) -> ::std::option::Option<::std::result::Result<::std::vec::Vec<u8>, ::anthill_runtime::KeyError>> {
                #key
            }
            fn view_key_text(
                view: &str,
                bytes: &[u8],
            ) -> ::std::option::Option<::std::result::Result<::std::string::String, ::anthill_runtime::DecodeError>> {
                #key_text
            }
            fn view_row_json(
                view: &str,
                bytes: &[u8],
            ) -> ::std::option::Option<
                ::std::result::Result<::anthill_runtime::serde_json::Value, ::anthill_runtime::DecodeError>,
            > {
                #row_json
            }
        }
    }

    pub(super) fn update_views_fn(&self, agg: AggregateId, a: &Aggregate) -> TokenStream {
        let mut arms = Vec::new();
        for (i, e) in a.events.iter().enumerate() {
            let mut parts = Vec::new();
            let mut uses_event_any = false;
            for v in &self.domain.views {
                for h in v.handlers.iter().filter(|h| h.aggregate == agg && h.event.0 as usize == i) {
                    let env = Env { event: Some(quote!(event)), aggregate: Some(agg), ..Env::new() };
                    let fields = Fields { params: None, event: Some(&e.fields) };
                    let row_ty = ident(&camel(&v.name.dsl));
                    // Borrowed where the key is a place (the instance's id, an event field): no clone.
                    let key = self.borrowed(&h.key, &env, &fields);
                    uses_event_any |= any_in_expr(&h.key, &uses_event)
                        || h.filter.as_ref().is_some_and(|f| any_in_expr(f, &uses_event))
                        || h.updates.iter().any(|(_, e)| e.as_ref().is_some_and(|e| any_in_expr(e, &uses_event)));
                    let updates = h.updates.iter().map(|(col, value)| {
                        let c = &v.columns[*col];
                        let f = ident(&snake(&c.name.dsl));
                        let at = format_ident!("{}_at", snake(&c.name.dsl).trim_start_matches("r#"));
                        let value = value.as_ref().map(|e| self.arg(e, &env, &fields));
                        let num = quote!(::anthill_runtime::value::Num);
                        match (&c.reducer, value) {
                            (Reducer::Count, _) => quote!(row.#f = #num::add(row.#f, 1u64)?;),
                            (Reducer::Sum, Some(v)) => quote!(row.#f = #num::add(row.#f, #v)?;),
                            (Reducer::Min, Some(v)) => quote! {
                                let value = #v;
                                row.#f = ::std::option::Option::Some(match row.#f.take() {
                                    ::std::option::Option::Some(old) => ::std::cmp::min(old, value),
                                    ::std::option::Option::None => value,
                                });
                            },
                            (Reducer::Max, Some(v)) => quote! {
                                let value = #v;
                                row.#f = ::std::option::Option::Some(match row.#f.take() {
                                    ::std::option::Option::Some(old) => ::std::cmp::max(old, value),
                                    ::std::option::Option::None => value,
                                });
                            },
                            (Reducer::Latest, Some(v)) => quote! {
                                if row.#f.is_none() || ctx.occurred_at >= row.#at {
                                    row.#f = ::std::option::Option::Some(#v);
                                    row.#at = ctx.occurred_at;
                                }
                            },
                            (Reducer::List { max }, Some(v)) => {
                                let trim = match max {
                                    Some(max) => {
                                        let max = *max as usize;
                                        quote! {
                                            if row.#f.len() > #max {
                                                let excess = row.#f.len() - #max;
                                                row.#f.drain(..excess);
                                                row.#at.drain(..excess);
                                            }
                                        }
                                    }
                                    None => quote!(),
                                };
                                quote! {
                                    let position = row.#at.partition_point(|at| *at <= ctx.occurred_at);
                                    row.#f.insert(position, #v);
                                    row.#at.insert(position, ctx.occurred_at);
                                    #trim
                                }
                            }
                            (_, None) => unreachable!("checked: only `count` takes no value"),
                        }
                    });
                    let filter = match &h.filter {
                        Some(f) => {
                            let f = self.expr(f, &env, &fields);
                            quote!(if !#f { return ::std::result::Result::Ok(()); })
                        }
                        None => quote!(),
                    };
                    let view = &v.name.dsl;
                    parts.push(quote! {
                        (|| -> ::std::result::Result<(), ::anthill_runtime::aggregate::FoldError> {
                            #filter
                            super::views::#row_ty::update(tables, #key, &mut |row| {
                                #(#updates)*
                                ::std::result::Result::Ok(())
                            })?;
                            ::std::result::Result::Ok(())
                        })()
                        .map_err(|e| e.into_view_error(#view))?;
                    });
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
                /// No view folds this aggregate's events.
                fn update_views(
                    _event: &Event,
                    _ctx: &::anthill_runtime::EventContext<'_, Id>,
                    _tables: &mut dyn ::anthill_runtime::ViewTables,
                ) -> ::std::result::Result<(), ::anthill_runtime::ViewError> {
                    ::std::result::Result::Ok(())
                }
            };
        }
        let dispatch = super::aggregate::single_or_match(arms, a.events.len());
        quote! {
            /// Folds an event of this aggregate into the views that listen to it.
            fn update_views(
                event: &Event,
                ctx: &::anthill_runtime::EventContext<'_, Id>,
                tables: &mut dyn ::anthill_runtime::ViewTables,
            ) -> ::std::result::Result<(), ::anthill_runtime::ViewError> {
                #dispatch
                ::std::result::Result::Ok(())
            }
        }
    }
}
