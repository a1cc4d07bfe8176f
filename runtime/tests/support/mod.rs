//! A hand-written domain `demo`, shaped like generated code, for the engine's tests and benchmarks.
//!
//! `account` (key `u64`): open, deposit, withdraw (the balance never goes below zero), and transfers that a
//! process completes by depositing into the other account, refunding the sender when that is rejected.
//! `slot` (key `u32`): a capacity counter; `book` is rejected with `full` once it is full.
//! View `account-deposits`: per account, the number of deposits (and transfers received).
#![allow(dead_code)]

pub mod child;

use anthill_runtime::meta::{AggregateMeta, DomainMeta, ProcessHandlerMeta, ProcessMeta, TypeMeta, ViewMeta};
use anthill_runtime::value::ArithmeticError;
use anthill_runtime::{
    derive_command_id, Aggregate, AggregateVisitor, CommandError, CommandName, CommandVisitor, Context, Decimal,
    DecodeError, Domain, DomainCommand, EventContext, EventName, Reaction, Rejection, ViewError, ViewTables,
};

pub type Money = Decimal<2>;

pub struct Demo;

static AGGREGATES: [AggregateMeta; 2] = [
    AggregateMeta {
        name: "account",
        doc: None,
        key: &TypeMeta::Int { name: "u64", signed: false, bits: 64 },
        state: &[],
        commands: &[],
        events: &[],
        rejections: &[],
        invariants: &[],
    },
    AggregateMeta {
        name: "slot",
        doc: None,
        key: &TypeMeta::Int { name: "u32", signed: false, bits: 32 },
        state: &[],
        commands: &[],
        events: &[],
        rejections: &[],
        invariants: &[],
    },
];

pub static META: DomainMeta = DomainMeta {
    name: "demo",
    doc: None,
    source: "tests/support/mod.rs",
    fingerprint: 0x0123_4567_89ab_cdef,
    aggregates: &AGGREGATES,
    processes: &[ProcessMeta {
        name: "transfer",
        doc: None,
        handlers: &[ProcessHandlerMeta {
            aggregate: "account",
            event: "transfer-sent",
            sends: &[("account", "receive-transfer"), ("account", "refund-transfer")],
        }],
    }],
    views: &[ViewMeta {
        name: DEPOSITS_VIEW,
        doc: None,
        key: &TypeMeta::Int { name: "u64", signed: false, bits: 64 },
        columns: &[],
        sources: &[],
    }],
};

pub const DEPOSITS_VIEW: &str = "account-deposits";

impl Domain for Demo {
    const NAME: &'static str = "demo";
    type Command = Command;
    fn meta() -> &'static DomainMeta {
        &META
    }
    fn for_each_aggregate<V: AggregateVisitor>(visitor: &mut V) {
        visitor.visit::<Account>();
        visitor.visit::<Slot>();
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Account { id: u64, command: AccountCommand },
    Slot { id: u32, command: SlotCommand },
}

impl DomainCommand for Command {
    fn dispatch<V: CommandVisitor>(self, visitor: V) -> V::Output {
        match self {
            Command::Account { id, command } => visitor.visit::<Account>(id, command),
            Command::Slot { id, command } => visitor.visit::<Slot>(id, command),
        }
    }
}

macro_rules! rkyv_serde {
    ($item:item) => {
        #[derive(
            Clone,
            Debug,
            PartialEq,
            Eq,
            ::anthill_runtime::serde::Serialize,
            ::anthill_runtime::serde::Deserialize,
            ::anthill_runtime::rkyv::Archive,
            ::anthill_runtime::rkyv::Serialize,
            ::anthill_runtime::rkyv::Deserialize,
        )]
        #[serde(crate = "::anthill_runtime::serde")]
        #[rkyv(crate = ::anthill_runtime::rkyv)]
        $item
    };
}

// ---- account ----

pub struct Account;

rkyv_serde! {
    #[derive(Default)]
    pub struct AccountState {
        pub open: bool,
        pub balance: Money,
        pub deposits: u32,
    }
}

rkyv_serde! {
    pub enum AccountEvent {
        Opened,
        Deposited { amount: Money },
        Withdrawn { amount: Money },
        TransferSent { transfer: u64, to: u64, amount: Money },
        TransferReceived { transfer: u64, from: u64, amount: Money },
        TransferRefunded { transfer: u64, amount: Money },
    }
}

rkyv_serde! {
    pub enum AccountCommand {
        Open,
        Deposit { amount: Money },
        Withdraw { amount: Money },
        SendTransfer { transfer: u64, to: u64, amount: Money },
        ReceiveTransfer { transfer: u64, from: u64, amount: Money },
        RefundTransfer { transfer: u64, amount: Money },
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountRejection {
    NotOpen,
    AlreadyOpen,
    NotPositive,
    InsufficientFunds,
    ArithmeticOverflow,
}

impl std::fmt::Display for AccountRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl Rejection for AccountRejection {
    fn code(&self) -> &'static str {
        match self {
            AccountRejection::NotOpen => "not-open",
            AccountRejection::AlreadyOpen => "already-open",
            AccountRejection::NotPositive => "not-positive",
            AccountRejection::InsufficientFunds => "insufficient-funds",
            AccountRejection::ArithmeticOverflow => "arithmetic-overflow",
        }
    }
    fn message(&self) -> &'static str {
        match self {
            AccountRejection::NotOpen => "the account is not open",
            AccountRejection::AlreadyOpen => "the account is already open",
            AccountRejection::NotPositive => "the amount must be positive",
            AccountRejection::InsufficientFunds => "not enough money",
            AccountRejection::ArithmeticOverflow => "arithmetic overflow",
        }
    }
    fn from_code(code: &str) -> Option<Self> {
        [
            AccountRejection::NotOpen,
            AccountRejection::AlreadyOpen,
            AccountRejection::NotPositive,
            AccountRejection::InsufficientFunds,
            AccountRejection::ArithmeticOverflow,
        ]
        .into_iter()
        .find(|r| r.code() == code)
    }
}

impl CommandName for AccountCommand {
    fn name(&self) -> &'static str {
        match self {
            AccountCommand::Open => "open",
            AccountCommand::Deposit { .. } => "deposit",
            AccountCommand::Withdraw { .. } => "withdraw",
            AccountCommand::SendTransfer { .. } => "send-transfer",
            AccountCommand::ReceiveTransfer { .. } => "receive-transfer",
            AccountCommand::RefundTransfer { .. } => "refund-transfer",
        }
    }
}

impl EventName for AccountEvent {
    fn name(&self) -> &'static str {
        match self {
            AccountEvent::Opened => "opened",
            AccountEvent::Deposited { .. } => "deposited",
            AccountEvent::Withdrawn { .. } => "withdrawn",
            AccountEvent::TransferSent { .. } => "transfer-sent",
            AccountEvent::TransferReceived { .. } => "transfer-received",
            AccountEvent::TransferRefunded { .. } => "transfer-refunded",
        }
    }
}

fn add(a: Money, b: Money) -> Result<Money, ArithmeticError> {
    a.mantissa().checked_add(b.mantissa()).map(Money::from_mantissa).ok_or(ArithmeticError::Overflow)
}

fn sub(a: Money, b: Money) -> Result<Money, ArithmeticError> {
    a.mantissa().checked_sub(b.mantissa()).map(Money::from_mantissa).ok_or(ArithmeticError::Overflow)
}

fn account_decide(state: &AccountState, command: &AccountCommand) -> Result<Vec<AccountEvent>, AccountRejection> {
    let positive = |amount: &Money| if amount.mantissa() > 0 { Ok(()) } else { Err(AccountRejection::NotPositive) };
    let open = || if state.open { Ok(()) } else { Err(AccountRejection::NotOpen) };
    Ok(match command {
        AccountCommand::Open => {
            if state.open {
                return Err(AccountRejection::AlreadyOpen);
            }
            vec![AccountEvent::Opened]
        }
        AccountCommand::Deposit { amount } => {
            open()?;
            positive(amount)?;
            vec![AccountEvent::Deposited { amount: *amount }]
        }
        AccountCommand::Withdraw { amount } => {
            open()?;
            positive(amount)?;
            vec![AccountEvent::Withdrawn { amount: *amount }]
        }
        AccountCommand::SendTransfer { transfer, to, amount } => {
            open()?;
            positive(amount)?;
            vec![AccountEvent::TransferSent { transfer: *transfer, to: *to, amount: *amount }]
        }
        AccountCommand::ReceiveTransfer { transfer, from, amount } => {
            open()?;
            vec![AccountEvent::TransferReceived { transfer: *transfer, from: *from, amount: *amount }]
        }
        AccountCommand::RefundTransfer { transfer, amount } => {
            vec![AccountEvent::TransferRefunded { transfer: *transfer, amount: *amount }]
        }
    })
}

fn account_evolve(state: &mut AccountState, event: &AccountEvent) -> Result<(), ArithmeticError> {
    match event {
        AccountEvent::Opened => state.open = true,
        AccountEvent::Deposited { amount } | AccountEvent::TransferReceived { amount, .. } => {
            state.balance = add(state.balance, *amount)?;
            state.deposits = state.deposits.checked_add(1).ok_or(ArithmeticError::Overflow)?;
        }
        AccountEvent::TransferRefunded { amount, .. } => state.balance = add(state.balance, *amount)?,
        AccountEvent::Withdrawn { amount } | AccountEvent::TransferSent { amount, .. } => {
            state.balance = sub(state.balance, *amount)?
        }
    }
    Ok(())
}

rkyv_serde! {
    #[derive(Default)]
    pub struct DepositsRow {
        pub deposits: u64,
    }
}

pub fn deposits_key(id: u64) -> Vec<u8> {
    let mut key = Vec::new();
    anthill_runtime::Key::encode_key(&id, &mut key);
    key
}

impl Aggregate for Account {
    const NAME: &'static str = "account";
    type Domain = Demo;
    type Id = u64;
    type State = AccountState;
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Rejection = AccountRejection;

    fn meta() -> &'static AggregateMeta {
        &AGGREGATES[0]
    }

    fn decide(
        state: &AccountState,
        command: &AccountCommand,
        ctx: &Context<'_, u64>,
    ) -> Result<Vec<AccountEvent>, AccountRejection> {
        let mut copy = state.clone();
        Self::execute(&mut copy, command, ctx)
    }

    fn execute(
        state: &mut AccountState,
        command: &AccountCommand,
        _ctx: &Context<'_, u64>,
    ) -> Result<Vec<AccountEvent>, AccountRejection> {
        let events = account_decide(state, command)?;
        let mut next = state.clone();
        for event in &events {
            account_evolve(&mut next, event).map_err(|_| AccountRejection::ArithmeticOverflow)?;
        }
        // The strict invariant: the balance never goes below zero.
        if next.balance.mantissa() < 0 {
            return Err(AccountRejection::InsufficientFunds);
        }
        *state = next;
        Ok(events)
    }

    fn evolve(
        state: &mut AccountState,
        event: &AccountEvent,
        _ctx: &EventContext<'_, u64>,
    ) -> Result<(), ArithmeticError> {
        account_evolve(state, event)
    }

    fn react(event: &AccountEvent, ctx: &EventContext<'_, u64>) -> Result<Vec<Reaction<Command>>, ArithmeticError> {
        let AccountEvent::TransferSent { transfer, to, amount } = event else { return Ok(Vec::new()) };
        let refund = Reaction {
            command_id: derive_command_id(ctx.event_id, "transfer", 1),
            command: Command::Account {
                id: *ctx.id,
                command: AccountCommand::RefundTransfer { transfer: *transfer, amount: *amount },
            },
            on_rejected: Vec::new(),
        };
        Ok(vec![Reaction {
            command_id: derive_command_id(ctx.event_id, "transfer", 0),
            command: Command::Account {
                id: *to,
                command: AccountCommand::ReceiveTransfer { transfer: *transfer, from: *ctx.id, amount: *amount },
            },
            on_rejected: vec![refund],
        }])
    }

    fn update_views(
        event: &AccountEvent,
        ctx: &EventContext<'_, u64>,
        tables: &mut dyn ViewTables,
    ) -> Result<(), ViewError> {
        if !matches!(event, AccountEvent::Deposited { .. } | AccountEvent::TransferReceived { .. }) {
            return Ok(());
        }
        let key = deposits_key(*ctx.id);
        let mut row = match tables.get(DEPOSITS_VIEW, &key)? {
            Some(bytes) => anthill_runtime::codec::decode::<DepositsRow>(&bytes)
                .map_err(|e| ViewError { view: DEPOSITS_VIEW, message: e.to_string() })?,
            None => DepositsRow::default(),
        };
        row.deposits += 1;
        tables.put(DEPOSITS_VIEW, &key, &anthill_runtime::codec::encode(&row))
    }

    fn encode_event(event: &AccountEvent) -> Vec<u8> {
        anthill_runtime::codec::encode(event)
    }
    fn decode_event(bytes: &[u8]) -> Result<AccountEvent, DecodeError> {
        anthill_runtime::codec::decode(bytes)
    }
    fn encode_state(state: &AccountState) -> Vec<u8> {
        anthill_runtime::codec::encode(state)
    }
    fn decode_state(bytes: &[u8]) -> Result<AccountState, DecodeError> {
        anthill_runtime::codec::decode(bytes)
    }

    fn command_from_json(name: &str, json: &[u8]) -> Result<AccountCommand, CommandError> {
        #[derive(anthill_runtime::serde::Deserialize)]
        #[serde(crate = "::anthill_runtime::serde")]
        struct Amount {
            amount: Money,
        }
        match name {
            "open" => Ok(AccountCommand::Open),
            "deposit" => anthill_runtime::codec::command_params::<Amount>(json)
                .map(|p| AccountCommand::Deposit { amount: p.amount }),
            "withdraw" => anthill_runtime::codec::command_params::<Amount>(json)
                .map(|p| AccountCommand::Withdraw { amount: p.amount }),
            _ => Err(CommandError::UnknownCommand { name: name.to_owned() }),
        }
    }
    fn event_to_json(event: &AccountEvent) -> anthill_runtime::serde_json::Value {
        anthill_runtime::codec::to_json(event)
    }
    fn state_to_json(state: &AccountState) -> anthill_runtime::serde_json::Value {
        anthill_runtime::codec::to_json(state)
    }
}

// ---- slot ----

pub struct Slot;

rkyv_serde! {
    #[derive(Default)]
    pub struct SlotState {
        pub capacity: u32,
        pub booked: u32,
    }
}

rkyv_serde! {
    pub enum SlotEvent {
        Configured { capacity: u32 },
        Booked,
    }
}

rkyv_serde! {
    pub enum SlotCommand {
        Configure { capacity: u32 },
        Book,
        /// Books, then panics: stands for an extern command whose Rust code panics.
        BookThenPanic,
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotRejection {
    Full,
}

impl std::fmt::Display for SlotRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl Rejection for SlotRejection {
    fn code(&self) -> &'static str {
        "full"
    }
    fn message(&self) -> &'static str {
        "the slot is full"
    }
    fn from_code(code: &str) -> Option<Self> {
        (code == "full").then_some(SlotRejection::Full)
    }
}

impl CommandName for SlotCommand {
    fn name(&self) -> &'static str {
        match self {
            SlotCommand::Configure { .. } => "configure",
            SlotCommand::Book => "book",
            SlotCommand::BookThenPanic => "book-then-panic",
        }
    }
}

impl EventName for SlotEvent {
    fn name(&self) -> &'static str {
        match self {
            SlotEvent::Configured { .. } => "configured",
            SlotEvent::Booked => "booked",
        }
    }
}

fn slot_evolve(state: &mut SlotState, event: &SlotEvent) -> Result<(), ArithmeticError> {
    match event {
        SlotEvent::Configured { capacity } => state.capacity = *capacity,
        SlotEvent::Booked => state.booked = state.booked.checked_add(1).ok_or(ArithmeticError::Overflow)?,
    }
    Ok(())
}

impl Aggregate for Slot {
    const NAME: &'static str = "slot";
    type Domain = Demo;
    type Id = u32;
    type State = SlotState;
    type Command = SlotCommand;
    type Event = SlotEvent;
    type Rejection = SlotRejection;

    fn meta() -> &'static AggregateMeta {
        &AGGREGATES[1]
    }

    fn decide(
        state: &SlotState,
        command: &SlotCommand,
        ctx: &Context<'_, u32>,
    ) -> Result<Vec<SlotEvent>, SlotRejection> {
        let mut copy = state.clone();
        Self::execute(&mut copy, command, ctx)
    }

    fn execute(
        state: &mut SlotState,
        command: &SlotCommand,
        _ctx: &Context<'_, u32>,
    ) -> Result<Vec<SlotEvent>, SlotRejection> {
        let event = match command {
            SlotCommand::Configure { capacity } => SlotEvent::Configured { capacity: *capacity },
            SlotCommand::Book if state.booked >= state.capacity => return Err(SlotRejection::Full),
            SlotCommand::Book => SlotEvent::Booked,
            SlotCommand::BookThenPanic => {
                // Changes the state first, as a careless extern command might, then panics.
                state.booked += 1;
                panic!("book-then-panic always panics");
            }
        };
        slot_evolve(state, &event).map_err(|_| SlotRejection::Full)?;
        Ok(vec![event])
    }

    fn evolve(state: &mut SlotState, event: &SlotEvent, _ctx: &EventContext<'_, u32>) -> Result<(), ArithmeticError> {
        slot_evolve(state, event)
    }

    fn react(_event: &SlotEvent, _ctx: &EventContext<'_, u32>) -> Result<Vec<Reaction<Command>>, ArithmeticError> {
        Ok(Vec::new())
    }

    fn update_views(_: &SlotEvent, _: &EventContext<'_, u32>, _: &mut dyn ViewTables) -> Result<(), ViewError> {
        Ok(())
    }

    fn encode_event(event: &SlotEvent) -> Vec<u8> {
        anthill_runtime::codec::encode(event)
    }
    fn decode_event(bytes: &[u8]) -> Result<SlotEvent, DecodeError> {
        anthill_runtime::codec::decode(bytes)
    }
    fn encode_state(state: &SlotState) -> Vec<u8> {
        anthill_runtime::codec::encode(state)
    }
    fn decode_state(bytes: &[u8]) -> Result<SlotState, DecodeError> {
        anthill_runtime::codec::decode(bytes)
    }
    fn command_from_json(name: &str, json: &[u8]) -> Result<SlotCommand, CommandError> {
        match name {
            "book" => Ok(SlotCommand::Book),
            "configure" => {
                #[derive(anthill_runtime::serde::Deserialize)]
                #[serde(crate = "::anthill_runtime::serde")]
                struct Params {
                    capacity: u32,
                }
                anthill_runtime::codec::command_params::<Params>(json)
                    .map(|p| SlotCommand::Configure { capacity: p.capacity })
            }
            _ => Err(CommandError::UnknownCommand { name: name.to_owned() }),
        }
    }
    fn event_to_json(event: &SlotEvent) -> anthill_runtime::serde_json::Value {
        anthill_runtime::codec::to_json(event)
    }
    fn state_to_json(state: &SlotState) -> anthill_runtime::serde_json::Value {
        anthill_runtime::codec::to_json(state)
    }
}

/// A small engine configuration for tests: small map (so growth is exercised), short budgets.
pub fn test_config(partitions: u32) -> anthill_runtime::engine::Config {
    let mut config = anthill_runtime::engine::Config { partitions, ..Default::default() };
    config.store.map_size_bytes = 1 << 20;
    config.latency_budget = std::time::Duration::from_secs(10);
    config
}

pub fn money(units: i64) -> Money {
    Money::from_mantissa(units * 100)
}
