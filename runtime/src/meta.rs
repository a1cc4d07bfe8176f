//! Static descriptions of a domain (names, types, docs, policies), generated for the HTTP API, OpenAPI and docs.

/// A type as the model spells it, with enough structure to build a JSON schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeMeta {
    Bool,
    /// `u8` ... `i64`.
    Int {
        name: &'static str,
        signed: bool,
        bits: u32,
    },
    Decimal {
        scale: u32,
    },
    String,
    Timestamp,
    Id {
        name: &'static str,
        repr: &'static TypeMeta,
    },
    Enum {
        name: &'static str,
        variants: &'static [VariantMeta],
    },
    Record {
        name: &'static str,
        fields: &'static [FieldMeta],
    },
    Optional(&'static TypeMeta),
    Map(&'static TypeMeta, &'static TypeMeta),
    List(&'static TypeMeta),
    Set(&'static TypeMeta),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VariantMeta {
    pub name: &'static str,
    pub doc: Option<&'static str>,
}

/// A state field, event field, command parameter, record field or view column. `name` is the model's
/// spelling, which is also the JSON key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldMeta {
    pub name: &'static str,
    pub ty: &'static TypeMeta,
    pub doc: Option<&'static str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomainMeta {
    pub name: &'static str,
    pub doc: Option<&'static str>,
    /// The root `.sexp` file, relative to where the compiler was pointed.
    pub source: &'static str,
    /// A hash of everything that decides the stored format (names, field types, order), to refuse opening a
    /// store written by an incompatible model.
    pub fingerprint: u64,
    pub aggregates: &'static [AggregateMeta],
    pub processes: &'static [ProcessMeta],
    pub views: &'static [ViewMeta],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AggregateMeta {
    pub name: &'static str,
    pub doc: Option<&'static str>,
    pub key: &'static TypeMeta,
    pub state: &'static [FieldMeta],
    pub commands: &'static [CommandMeta],
    pub events: &'static [EventMeta],
    pub rejections: &'static [RejectionMeta],
    pub invariants: &'static [InvariantMeta],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandMeta {
    pub name: &'static str,
    pub doc: Option<&'static str>,
    pub params: &'static [FieldMeta],
    /// Decided by a Rust function rather than by the model.
    pub is_extern: bool,
    /// Names of the events it may emit.
    pub emits: &'static [&'static str],
    /// Codes of the rejections it may return.
    pub rejections: &'static [&'static str],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventMeta {
    pub name: &'static str,
    pub doc: Option<&'static str>,
    pub fields: &'static [FieldMeta],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectionKind {
    /// `arithmetic-overflow` and `division-by-zero`.
    Builtin,
    Require,
    Invariant,
    Extern,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RejectionMeta {
    pub code: &'static str,
    pub message: &'static str,
    pub kind: RejectionKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvariantMeta {
    pub name: &'static str,
    pub doc: Option<&'static str>,
    /// The condition as written in the model.
    pub condition: &'static str,
    /// The policy as written in the model, e.g. `strict` or `(relaxed (tolerance overdraft-limit) ...)`.
    pub policy: &'static str,
    /// Commands that choose their own policy for this invariant: (command, policy as written).
    pub overrides: &'static [(&'static str, &'static str)],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessMeta {
    pub name: &'static str,
    pub doc: Option<&'static str>,
    pub handlers: &'static [ProcessHandlerMeta],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessHandlerMeta {
    /// `aggregate/event`.
    pub aggregate: &'static str,
    pub event: &'static str,
    /// Every `(aggregate, command)` the handler may send, including on-rejected compensations.
    pub sends: &'static [(&'static str, &'static str)],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewMeta {
    pub name: &'static str,
    pub doc: Option<&'static str>,
    pub key: &'static TypeMeta,
    pub columns: &'static [ColumnMeta],
    /// The `(aggregate, event)` pairs it folds.
    pub sources: &'static [(&'static str, &'static str)],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnMeta {
    pub name: &'static str,
    pub doc: Option<&'static str>,
    /// `count`, `sum`, `min`, `max`, `latest` or `list`.
    pub reducer: &'static str,
    /// The column's value type as read back (`u64` for count, `(list T)` for lists).
    pub ty: &'static TypeMeta,
}

impl DomainMeta {
    pub fn aggregate(&self, name: &str) -> Option<&'static AggregateMeta> {
        self.aggregates.iter().find(|a| a.name == name)
    }

    pub fn view(&self, name: &str) -> Option<&'static ViewMeta> {
        self.views.iter().find(|v| v.name == name)
    }
}

impl AggregateMeta {
    pub fn command(&self, name: &str) -> Option<&'static CommandMeta> {
        self.commands.iter().find(|c| c.name == name)
    }

    pub fn rejection(&self, code: &str) -> Option<&'static RejectionMeta> {
        self.rejections.iter().find(|r| r.code == code)
    }
}
