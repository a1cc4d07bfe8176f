//! The spanned syntax tree of a domain model, as written: names are not resolved and nothing is typed yet.

use crate::span::{FileId, Span};

/// A kebab-case name with its location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Doc {
    pub text: String,
    pub span: Span,
}

/// One parsed file: a domain root (`(domain NAME ...)`) or an included fragment (bare items).
#[derive(Clone, Debug, PartialEq)]
pub struct Module {
    pub file: FileId,
    /// `Some` for a domain root, `None` for an included fragment.
    pub domain: Option<DomainHeader>,
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DomainHeader {
    pub name: Ident,
    pub doc: Option<Doc>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Include(Include),
    Type(TypeAlias),
    Id(IdDecl),
    Enum(EnumDecl),
    Record(RecordDecl),
    Aggregate(AggregateDecl),
    Process(ProcessDecl),
    View(ViewDecl),
    Scenario(ScenarioDecl),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Include {
    pub path: String,
    pub span: Span,
}

/// `(type NAME TYPE)`
#[derive(Clone, Debug, PartialEq)]
pub struct TypeAlias {
    pub name: Ident,
    pub doc: Option<Doc>,
    pub ty: TypeExpr,
    pub span: Span,
}

/// `(id NAME [string|u64])`: a distinct identifier type.
#[derive(Clone, Debug, PartialEq)]
pub struct IdDecl {
    pub name: Ident,
    pub doc: Option<Doc>,
    pub repr: Option<TypeExpr>,
    pub span: Span,
}

/// `(enum NAME VARIANT...)`
#[derive(Clone, Debug, PartialEq)]
pub struct EnumDecl {
    pub name: Ident,
    pub doc: Option<Doc>,
    pub variants: Vec<Variant>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    pub name: Ident,
    pub doc: Option<Doc>,
}

/// `(record NAME (FIELD TYPE)...)`
#[derive(Clone, Debug, PartialEq)]
pub struct RecordDecl {
    pub name: Ident,
    pub doc: Option<Doc>,
    pub fields: Vec<FieldDecl>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TypeExpr {
    pub kind: TypeExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TypeExprKind {
    /// A built-in (`u64`, `string`...) or declared type name.
    Named(Ident),
    /// `(decimal SCALE)`: fixed point with SCALE digits after the point.
    Decimal(u32),
    Optional(Box<TypeExpr>),
    Map(Box<TypeExpr>, Box<TypeExpr>),
    List(Box<TypeExpr>),
    Set(Box<TypeExpr>),
}

/// A typed field: of a record, an event, a command's parameters or an aggregate's state.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldDecl {
    pub name: Ident,
    pub ty: TypeExpr,
    /// Only state fields have defaults.
    pub default: Option<Expr>,
    /// A default was written, even if it did not parse (so "missing default" would be a cascade).
    pub default_given: bool,
    pub doc: Option<Doc>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AggregateDecl {
    pub name: Ident,
    pub doc: Option<Doc>,
    pub key: Option<TypeExpr>,
    pub state: Vec<FieldDecl>,
    pub events: Vec<EventDecl>,
    pub commands: Vec<CommandDecl>,
    pub handlers: Vec<OnDecl>,
    pub invariants: Vec<InvariantDecl>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventDecl {
    pub name: Ident,
    pub doc: Option<Doc>,
    pub fields: Vec<FieldDecl>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CommandDecl {
    pub name: Ident,
    pub doc: Option<Doc>,
    pub params: Vec<FieldDecl>,
    /// `(extern)`: decided by a Rust function the domain author writes.
    pub extern_span: Option<Span>,
    /// `(emits EVENT...)`: the events an extern command may emit.
    pub emits: Vec<Ident>,
    /// `(rejects NAME "message")`: rejections an extern command may return.
    pub rejects: Vec<RejectDecl>,
    pub policies: Vec<PolicyOverride>,
    pub body: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RejectDecl {
    pub name: Ident,
    pub message: String,
    pub span: Span,
}

/// `(policy INVARIANT POLICY)` inside a command: this command's consistency rule for that invariant.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyOverride {
    pub invariant: Ident,
    pub policy: Policy,
    pub span: Span,
}

/// `(on EVENT (set FIELD EXPR)...)` inside an aggregate: how an event changes the state.
#[derive(Clone, Debug, PartialEq)]
pub struct OnDecl {
    pub event: Ident,
    pub body: Vec<Stmt>,
    pub span: Span,
}

/// `(invariant NAME EXPR [(policy POLICY)])`
#[derive(Clone, Debug, PartialEq)]
pub struct InvariantDecl {
    pub name: Ident,
    pub doc: Option<Doc>,
    pub expr: Expr,
    pub policy: Option<Policy>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub kind: PolicyKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PolicyKind {
    Strict,
    /// Bare `relaxed` in a command's override: the invariant's own relaxed policy.
    RelaxedDeclared,
    Relaxed {
        tolerance: Expr,
        on_violation: Vec<Stmt>,
    },
    If {
        cond: Expr,
        then: Box<Policy>,
        otherwise: Box<Policy>,
    },
}

/// `(process NAME (on AGGREGATE/EVENT STMT...)...)`
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessDecl {
    pub name: Ident,
    pub doc: Option<Doc>,
    pub handlers: Vec<ProcessOn>,
    pub span: Span,
}

/// A reference to an event of an aggregate: `account/deposited`.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRef {
    pub aggregate: Ident,
    pub event: Ident,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProcessOn {
    pub event: EventRef,
    pub body: Vec<Stmt>,
    pub span: Span,
}

/// `(view NAME (key TYPE) (column NAME REDUCER)... (on AGGREGATE/EVENT ...)...)`
#[derive(Clone, Debug, PartialEq)]
pub struct ViewDecl {
    pub name: Ident,
    pub doc: Option<Doc>,
    pub key: Option<TypeExpr>,
    pub columns: Vec<ColumnDecl>,
    pub handlers: Vec<ViewOn>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ColumnDecl {
    pub name: Ident,
    pub doc: Option<Doc>,
    pub reducer: Reducer,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Reducer {
    /// How many events matched.
    Count,
    Sum(TypeExpr),
    Min(TypeExpr),
    Max(TypeExpr),
    /// The value from the event that happened last (by occurred time, so backdated events do not win).
    Latest(TypeExpr),
    /// Values in occurred-time order, keeping at most the newest `max` when given.
    List(TypeExpr, Option<u32>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ViewOn {
    pub event: EventRef,
    pub filter: Option<Expr>,
    pub key: Option<Expr>,
    pub updates: Vec<ColumnUpdate>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ColumnUpdate {
    pub column: Ident,
    pub value: Option<Expr>,
    pub span: Span,
}

/// `(scenario "title" (given EVENT...) (when COMMAND) (then EVENT... | (rejected NAME)))`
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioDecl {
    pub title: String,
    pub title_span: Span,
    pub doc: Option<Doc>,
    pub aggregate: Option<Ident>,
    pub given: Vec<Message>,
    pub when: Option<Message>,
    pub then: Option<Then>,
    pub span: Span,
}

/// An event or command written out with its fields: `(deposited (amount 10))`.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub name: Ident,
    pub fields: Vec<FieldInit>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Then {
    Events(Vec<Message>, Span),
    Rejected(Ident, Span),
}

/// `(field EXPR)`, or the shorthand `field` meaning `(field field)`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldInit {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `(require COND NAME "message")`: reject with NAME unless COND holds.
    Require { cond: Expr, name: Ident, message: String },
    /// `(reject NAME "message")`
    Reject { name: Ident, message: String },
    /// `(emit EVENT (field EXPR)...)`
    Emit(Message),
    /// `(set FIELD EXPR)`, in `on` handlers only.
    Set { field: Ident, value: Expr },
    /// `(send AGGREGATE ID COMMAND (param EXPR)... [(on-rejected STMT...)])`, in processes only.
    Send { aggregate: Ident, id: Expr, command: Message, on_rejected: Vec<Stmt> },
    /// `(let ((NAME EXPR)...) STMT...)`: bindings are sequential.
    Let { bindings: Vec<Binding>, body: Vec<Stmt> },
    /// `(if COND STMT [STMT])`, `(when COND STMT...)`, `(unless COND STMT...)`.
    If { cond: Expr, then: Vec<Stmt>, otherwise: Vec<Stmt> },
    /// `(cond (COND STMT...)... [(else STMT...)])`
    Cond { arms: Vec<(Expr, Vec<Stmt>)>, otherwise: Vec<Stmt> },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// An integer literal; its type comes from context.
    Int(i128),
    /// A decimal literal `12.50` as mantissa and scale (`1250`, `2`).
    Decimal {
        mantissa: i128,
        scale: u32,
    },
    Str(String),
    Bool(bool),
    /// `'variant`: an enum value; the enum comes from context.
    EnumLit(Ident),
    /// `none`: the empty optional.
    None,
    /// A name, or a dotted path into a record: `line.qty`.
    Var(Vec<Ident>),
    /// `(OP ARG...)`: operators and built-in functions.
    Call {
        op: Ident,
        args: Vec<Expr>,
    },
    If {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    Cond {
        arms: Vec<(Expr, Expr)>,
        otherwise: Box<Expr>,
    },
    Let {
        bindings: Vec<Binding>,
        body: Box<Expr>,
    },
    /// `(update MAP KEY (NAME DEFAULT) EXPR)`: the map with KEY's value replaced by EXPR, where NAME is
    /// bound to the current value (DEFAULT when absent).
    Update {
        map: Box<Expr>,
        key: Box<Expr>,
        binding: Ident,
        default: Box<Expr>,
        body: Box<Expr>,
    },
    /// `(make RECORD (field EXPR)...)`
    Make {
        record: Ident,
        fields: Vec<FieldInit>,
    },
    /// `(as TYPE EXPR)`: a checked numeric conversion.
    As {
        ty: TypeExpr,
        value: Box<Expr>,
    },
}
