//! The ledger workload (`docs/domains.md`, Ledger, Workload): accounts opened up front (`--accounts`, 10,000
//! by default), limits 0 for most and 100 to 5,000 for a tenth; then deposits 33%, withdrawals 40% (amounts
//! log-normal, most under 100, about 1% over 1,000 so the strict branch runs), on Zipf-skewed accounts;
//! transfers 25% (the `transfer` process crosses partitions) between uniformly chosen accounts and a few hot
//! treasury accounts; a disbursement one message in a thousand (plan, 2 to 50 payouts, release: each a
//! command, so about 3% of commands);
//! limit changes, freezes and unfreezes under 1% together.

use anthill_runtime::engine::Engine;
use anthill_runtime::Decimal;

use super::rng::{Rng, Zipf};
use super::{Check, HttpCommand, Step, Tally, Workload};
use crate::ledger::{account, disbursement, AccountId, Command, DisbursementId, Ledger, TransferId};

/// Treasury accounts: the first few, which a Zipf share of the transfers touches.
const TREASURY: usize = 10;

pub struct LedgerWorkload {
    rng: Rng,
    ids: Vec<AccountId>,
    zipf: Zipf,
    treasury: Zipf,
    transfers: u64,
    disbursements: u64,
    /// The rest of a disbursement being planned: its commands go out one after another.
    queued: std::collections::VecDeque<Step<Command>>,
}

fn money(cents: i64) -> Decimal<2> {
    Decimal::from_mantissa(cents)
}

impl LedgerWorkload {
    pub fn new(seed: u64, accounts: u64) -> LedgerWorkload {
        let accounts = accounts.max(TREASURY as u64 + 1) as usize;
        LedgerWorkload {
            rng: Rng::new(seed),
            ids: (0..accounts).map(|n| AccountId(format!("acc-{n}"))).collect(),
            zipf: Zipf::new(accounts, 1.0),
            treasury: Zipf::new(TREASURY, 1.0),
            transfers: 0,
            disbursements: 0,
            queued: std::collections::VecDeque::new(),
        }
    }

    /// Log-normal cents: median about 30.00, about 1% over 1,000.00.
    fn amount(&mut self) -> Decimal<2> {
        let units = (3.4 + 1.45 * self.rng.normal()).exp();
        money(((units * 100.0) as i64).clamp(1, 10_000_000))
    }

    fn skewed(&mut self) -> AccountId {
        self.ids[self.zipf.sample(&mut self.rng)].clone()
    }

    fn uniform(&mut self) -> AccountId {
        self.ids[self.rng.below(self.ids.len() as u64) as usize].clone()
    }

    /// A transfer end: a treasury account one time in five, otherwise any account.
    fn transfer_end(&mut self) -> AccountId {
        if self.rng.chance(0.2) {
            self.ids[self.treasury.sample(&mut self.rng)].clone()
        } else {
            self.uniform()
        }
    }

    fn on_account(id: AccountId, label: &'static str, command: account::Command) -> Step<Command> {
        Step::new(label, Command::Account { id, command })
    }

    fn plan_disbursement(&mut self) -> Step<Command> {
        self.disbursements += 1;
        let id = DisbursementId(format!("d-{}", self.disbursements));
        let payer = self.skewed();
        let lines = self.rng.range(2, 50);
        for _ in 0..lines {
            let to = self.uniform();
            let amount = money(self.rng.range(100, 5_000) as i64);
            let command = disbursement::Command::AddPayout(disbursement::commands::AddPayout { to, amount });
            self.queued.push_back(Step::new("add-payout", Command::Disbursement { id: id.clone(), command }));
        }
        let release = disbursement::Command::Release(disbursement::commands::Release {});
        self.queued.push_back(Step::new("release", Command::Disbursement { id: id.clone(), command: release }));
        let plan = disbursement::Command::Plan(disbursement::commands::Plan { payer });
        Step::new("plan", Command::Disbursement { id, command: plan })
    }
}

impl Workload for LedgerWorkload {
    type D = Ledger;

    fn setup(&mut self) -> Vec<Vec<Step<Command>>> {
        let mut open = Vec::with_capacity(self.ids.len());
        let mut fund = Vec::with_capacity(self.ids.len());
        for (n, id) in self.ids.clone().into_iter().enumerate() {
            let limit = if self.rng.chance(0.1) { money(self.rng.range(100, 5_000) as i64 * 100) } else { money(0) };
            let owner = format!("owner-{n}");
            let command = account::Command::Open(account::commands::Open { owner, overdraft_limit: limit });
            open.push(Self::on_account(id.clone(), "open", command));
            // Treasury accounts hold far more.
            let amount = if n < TREASURY { money(100_000_000) } else { money(100_000) };
            let command = account::Command::Deposit(account::commands::Deposit { amount });
            fund.push(Self::on_account(id, "deposit", command));
        }
        vec![open, fund]
    }

    fn next(&mut self) -> Step<Command> {
        if let Some(step) = self.queued.pop_front() {
            return step;
        }
        let roll = self.rng.below(1000);
        match roll {
            0..=329 => {
                let (id, amount) = (self.skewed(), self.amount());
                Self::on_account(id, "deposit", account::Command::Deposit(account::commands::Deposit { amount }))
            }
            330..=729 => {
                let (id, amount) = (self.skewed(), self.amount());
                Self::on_account(id, "withdraw", account::Command::Withdraw(account::commands::Withdraw { amount }))
            }
            730..=988 => {
                self.transfers += 1;
                let (from, to, amount) = (self.transfer_end(), self.transfer_end(), self.amount());
                let transfer = TransferId(format!("t-{}", self.transfers));
                let command = account::Command::SendTransfer(account::commands::SendTransfer { transfer, to, amount });
                Self::on_account(from, "send-transfer", command)
            }
            989 => self.plan_disbursement(),
            990..=994 => {
                let id = self.uniform();
                let overdraft_limit = money(self.rng.range(0, 5_000) as i64 * 100);
                let command = account::Command::ChangeLimit(account::commands::ChangeLimit { overdraft_limit });
                Self::on_account(id, "change-limit", command)
            }
            995..=997 => {
                let id = self.ids[TREASURY + self.rng.below((self.ids.len() - TREASURY) as u64) as usize].clone();
                let command = account::Command::Freeze(account::commands::Freeze { reason: "review".into() });
                Self::on_account(id, "freeze", command)
            }
            _ => {
                let id = self.uniform();
                Self::on_account(id, "unfreeze", account::Command::Unfreeze(account::commands::Unfreeze {}))
            }
        }
    }

    fn check(&self, engine: &Engine<Ledger>, _tally: &Tally) -> Vec<Check> {
        // No account is overdrawn beyond its limit (the `non-negative` invariant and its tolerance).
        let mut beyond = 0u64;
        let mut overdrawn = 0u64;
        let mut read_errors = 0u64;
        for id in &self.ids {
            match engine.state::<account::Account>(id) {
                Ok(Some(snapshot)) => {
                    let state = <account::Account as anthill_runtime::Aggregate>::state_to_json(&snapshot.state);
                    let balance = decimal_cents(&state["balance"]);
                    let limit = decimal_cents(&state["overdraft-limit"]);
                    if balance < 0 {
                        overdrawn += 1;
                    }
                    if balance < -limit {
                        beyond += 1;
                    }
                }
                Ok(None) => {}
                Err(_) => read_errors += 1,
            }
        }
        vec![Check::new(
            "overdraft limits",
            beyond == 0 && read_errors == 0,
            format!(
                "{} accounts, {overdrawn} overdrawn, {beyond} beyond their limit, {read_errors} unreadable",
                self.ids.len()
            ),
        )]
    }

    fn http(command: &Command) -> HttpCommand {
        match command {
            Command::Account { id, command } => super::http_command::<account::Account>(id, command),
            Command::Disbursement { id, command } => super::http_command::<disbursement::Disbursement>(id, command),
        }
    }
}

/// A decimal's JSON text (`"-12.50"`) in cents.
fn decimal_cents(value: &serde_json::Value) -> i64 {
    value.as_str().and_then(|text| Decimal::<2>::parse(text).ok()).map_or(0, Decimal::mantissa)
}
