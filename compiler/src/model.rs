//! The checked model (IR): every name resolved to an index, every expression typed.
//!
//! This is what code generation consumes. Indices (`AggregateId`, `EventId`...) point into the vectors of
//! the owning [`Domain`] or [`Aggregate`]; they are valid by construction once `check` returned a model.

use anthill_dsl::{FileId, Span};

/// A name from the model with its source location. Rust spellings come from [`crate::lower`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name {
    pub dsl: String,
    pub span: Span,
}

impl Name {
    pub fn as_str(&self) -> &str {
        &self.dsl
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Domain {
    pub name: Name,
    pub doc: Option<String>,
    /// The root file; `files` lists it and every included file, in include order.
    pub file: FileId,
    pub files: Vec<FileId>,
    pub types: Vec<TypeDef>,
    pub aggregates: Vec<Aggregate>,
    pub processes: Vec<Process>,
    pub views: Vec<View>,
    pub scenarios: Vec<Scenario>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub u32);
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AggregateId(pub u32);
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(pub u32);
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandId(pub u32);
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RejectionId(pub u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IntTy {
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
}

impl IntTy {
    pub const ALL: [IntTy; 8] =
        [IntTy::U8, IntTy::U16, IntTy::U32, IntTy::U64, IntTy::I8, IntTy::I16, IntTy::I32, IntTy::I64];

    pub fn name(self) -> &'static str {
        match self {
            IntTy::U8 => "u8",
            IntTy::U16 => "u16",
            IntTy::U32 => "u32",
            IntTy::U64 => "u64",
            IntTy::I8 => "i8",
            IntTy::I16 => "i16",
            IntTy::I32 => "i32",
            IntTy::I64 => "i64",
        }
    }

    pub fn is_signed(self) -> bool {
        matches!(self, IntTy::I8 | IntTy::I16 | IntTy::I32 | IntTy::I64)
    }

    pub fn min(self) -> i128 {
        match self {
            IntTy::U8 | IntTy::U16 | IntTy::U32 | IntTy::U64 => 0,
            IntTy::I8 => i8::MIN.into(),
            IntTy::I16 => i16::MIN.into(),
            IntTy::I32 => i32::MIN.into(),
            IntTy::I64 => i64::MIN.into(),
        }
    }

    pub fn max(self) -> i128 {
        match self {
            IntTy::U8 => u8::MAX.into(),
            IntTy::U16 => u16::MAX.into(),
            IntTy::U32 => u32::MAX.into(),
            IntTy::U64 => u64::MAX.into(),
            IntTy::I8 => i8::MAX.into(),
            IntTy::I16 => i16::MAX.into(),
            IntTy::I32 => i32::MAX.into(),
            IntTy::I64 => i64::MAX.into(),
        }
    }
}

/// A type after aliases are resolved. Decimals are `i64` mantissas with a fixed scale.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    Bool,
    Int(IntTy),
    Decimal(u32),
    String,
    /// Microseconds since the Unix epoch, UTC.
    Timestamp,
    Id(TypeId),
    Enum(TypeId),
    Record(TypeId),
    Optional(Box<Ty>),
    /// Ordered by key.
    Map(Box<Ty>, Box<Ty>),
    List(Box<Ty>),
    /// Ordered.
    Set(Box<Ty>),
}

impl Ty {
    pub fn is_numeric(&self) -> bool {
        matches!(self, Ty::Int(_) | Ty::Decimal(_))
    }

    pub fn is_unsigned_int(&self) -> bool {
        matches!(self, Ty::Int(i) if !i.is_signed())
    }

    /// Types with a total order: usable with `<`, as map keys and in sets.
    pub fn is_ordered(&self, domain_types: &[TypeDef]) -> bool {
        match self {
            Ty::Bool | Ty::Int(_) | Ty::Decimal(_) | Ty::String | Ty::Timestamp | Ty::Id(_) | Ty::Enum(_) => true,
            Ty::Optional(inner) => inner.is_ordered(domain_types),
            Ty::Record(id) => match &domain_types[id.0 as usize].kind {
                TypeDefKind::Record { fields } => fields.iter().all(|f| f.ty.is_ordered(domain_types)),
                _ => false,
            },
            Ty::Map(..) | Ty::List(_) | Ty::Set(_) => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TypeDef {
    pub name: Name,
    pub doc: Option<String>,
    pub kind: TypeDefKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TypeDefKind {
    /// `(id NAME [REPR])`: a newtype over `string` or an integer.
    Id {
        repr: Ty,
    },
    Enum {
        variants: Vec<Variant>,
    },
    Record {
        fields: Vec<Field>,
    },
    /// `(type NAME TYPE)`: kept for documentation; uses are resolved to `ty`.
    Alias {
        ty: Ty,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    pub name: Name,
    pub doc: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: Name,
    pub ty: Ty,
    pub doc: Option<String>,
    /// State fields only: the value of a new aggregate. Always present on state fields after checking.
    pub default: Option<Expr>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    pub name: Name,
    pub doc: Option<String>,
    pub key: Ty,
    pub state: Vec<Field>,
    pub events: Vec<Event>,
    pub commands: Vec<Command>,
    /// One `on` handler per event at most; events without one leave the state unchanged.
    pub handlers: Vec<Handler>,
    pub invariants: Vec<Invariant>,
    pub rejections: Vec<Rejection>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub name: Name,
    pub doc: Option<String>,
    pub fields: Vec<Field>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    pub name: Name,
    pub doc: Option<String>,
    pub params: Vec<Field>,
    pub body: CommandBody,
    /// This command's consistency rule per invariant, where it differs from the invariant's own.
    pub policies: Vec<PolicyOverride>,
    /// Every event this command may emit (from `emit` statements, policies, or `emits` for extern commands).
    pub emits: Vec<EventId>,
    /// Every rejection this command may return (requires, rejects, invariants, extern `rejects`).
    pub rejections: Vec<RejectionId>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CommandBody {
    Handler(Vec<Stmt>),
    /// Decided by a Rust function the domain author implements; `requires` run first.
    Extern {
        requires: Vec<Stmt>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct PolicyOverride {
    pub invariant: usize,
    pub policy: Policy,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Handler {
    pub event: EventId,
    pub body: Vec<Stmt>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RejectionSource {
    /// `arithmetic-overflow` and `division-by-zero`, which every aggregate has.
    Builtin,
    /// A `require` or `reject` statement.
    Require,
    Invariant,
    Extern,
}

/// A named, stable reason to refuse a command.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub name: Name,
    pub message: String,
    pub source: RejectionSource,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoundOp {
    Ge,
    Gt,
    Le,
    Lt,
}

/// An invariant of the form `(OP lhs rhs)` over numbers: what a relaxed policy measures its tolerance against.
#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    pub op: BoundOp,
    pub lhs: Expr,
    pub rhs: Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Invariant {
    pub name: Name,
    pub doc: Option<String>,
    pub expr: Expr,
    pub bound: Option<Bound>,
    pub policy: Policy,
    /// The rejection returned when the invariant would be broken beyond what its policy allows.
    pub rejection: RejectionId,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Policy {
    /// Never violated: the command is rejected.
    Strict,
    /// Allowed beyond the bound by at most `tolerance`; crossing the bound runs `on_violation`.
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

#[derive(Clone, Debug, PartialEq)]
pub struct Process {
    pub name: Name,
    pub doc: Option<String>,
    pub handlers: Vec<ProcessHandler>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProcessHandler {
    pub aggregate: AggregateId,
    pub event: EventId,
    pub body: Vec<Stmt>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct View {
    pub name: Name,
    pub doc: Option<String>,
    pub key: Ty,
    pub columns: Vec<Column>,
    pub handlers: Vec<ViewHandler>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Reducer {
    Count,
    Sum,
    Min,
    Max,
    Latest,
    List { max: Option<u32> },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: Name,
    pub doc: Option<String>,
    pub reducer: Reducer,
    /// The type of the value each event contributes (`u64` for count; the element type for lists).
    pub ty: Ty,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ViewHandler {
    pub aggregate: AggregateId,
    pub event: EventId,
    pub filter: Option<Expr>,
    pub key: Expr,
    /// Column index and the contributed value (`None` for count).
    pub updates: Vec<(usize, Option<Expr>)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub title: String,
    pub span: Span,
    pub doc: Option<String>,
    pub aggregate: AggregateId,
    pub given: Vec<(EventId, Vec<Expr>)>,
    pub when: (CommandId, Vec<Expr>),
    pub then: Outcome,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Events(Vec<(EventId, Vec<Expr>)>),
    Rejected(RejectionId),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    Require {
        cond: Expr,
        rejection: RejectionId,
    },
    Reject {
        rejection: RejectionId,
    },
    /// Field values in the event's field order.
    Emit {
        event: EventId,
        fields: Vec<Expr>,
    },
    Set {
        field: usize,
        value: Expr,
    },
    /// Arguments in the command's parameter order.
    Send {
        aggregate: AggregateId,
        id: Expr,
        command: CommandId,
        args: Vec<Expr>,
        on_rejected: Vec<Stmt>,
    },
    Let {
        bindings: Vec<(Name, Expr)>,
        body: Vec<Stmt>,
    },
    If {
        cond: Expr,
        then: Vec<Stmt>,
        otherwise: Vec<Stmt>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub ty: Ty,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Min,
    Max,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Not,
    Neg,
    Abs,
}

/// Built-in functions over collections, optionals and strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    /// `(get MAP KEY)` → optional value.
    Get,
    /// `(get MAP KEY DEFAULT)` → value.
    GetOr,
    Put,
    Remove,
    Contains,
    Insert,
    Push,
    Count,
    Sum,
    IsEmpty,
    First,
    Last,
    MinKey,
    MaxKey,
    Some,
    IsSome,
    IsNone,
    UnwrapOr,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// An integer of the expression's integer type.
    Int(i128),
    /// A decimal mantissa already scaled to the expression's decimal type.
    Decimal(i128),
    Str(String),
    Bool(bool),
    Enum {
        ty: TypeId,
        variant: u32,
    },
    None,
    /// An empty map, list or set of the expression's type: the implicit default of collection state.
    Empty,
    Param(usize),
    State(usize),
    EventField(usize),
    Local(Name),
    AggregateId,
    Version,
    Now,
    OccurredAt,
    Field {
        base: Box<Expr>,
        record: TypeId,
        field: usize,
    },
    Unary {
        op: UnOp,
        arg: Box<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Call {
        func: Builtin,
        args: Vec<Expr>,
    },
    If {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    Let {
        bindings: Vec<(Name, Expr)>,
        body: Box<Expr>,
    },
    Update {
        map: Box<Expr>,
        key: Box<Expr>,
        binding: Name,
        default: Box<Expr>,
        body: Box<Expr>,
    },
    Make {
        record: TypeId,
        fields: Vec<Expr>,
    },
    /// A checked numeric conversion to the expression's type.
    As(Box<Expr>),
}

impl Expr {
    /// Structural equality ignoring spans: used to match guards such as `(require (>= a b) ...)` to `(- a b)`.
    pub fn same(&self, other: &Expr) -> bool {
        use ExprKind as K;
        let all_same = |a: &[Expr], b: &[Expr]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y));
        match (&self.kind, &other.kind) {
            (K::Int(a), K::Int(b)) | (K::Decimal(a), K::Decimal(b)) => a == b && self.ty == other.ty,
            (K::Str(a), K::Str(b)) => a == b,
            (K::Bool(a), K::Bool(b)) => a == b,
            (K::Enum { ty: a, variant: x }, K::Enum { ty: b, variant: y }) => a == b && x == y,
            (K::Param(a), K::Param(b)) | (K::State(a), K::State(b)) | (K::EventField(a), K::EventField(b)) => a == b,
            (K::Local(a), K::Local(b)) => a.dsl == b.dsl,
            (K::AggregateId, K::AggregateId) | (K::Version, K::Version) | (K::Now, K::Now) => true,
            (K::Field { base: a, field: x, .. }, K::Field { base: b, field: y, .. }) => x == y && a.same(b),
            (K::Unary { op: o1, arg: a }, K::Unary { op: o2, arg: b }) => o1 == o2 && a.same(b),
            (K::Binary { op: o1, lhs: l1, rhs: r1 }, K::Binary { op: o2, lhs: l2, rhs: r2 }) => {
                o1 == o2 && l1.same(l2) && r1.same(r2)
            }
            (K::Call { func: f1, args: a1 }, K::Call { func: f2, args: a2 }) => f1 == f2 && all_same(a1, a2),
            _ => false,
        }
    }
}
