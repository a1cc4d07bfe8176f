//! The factory workload (`docs/domains.md`, Factory, Workload), with the observed distributions of the
//! factory note: SKU identifiers 3 to 40 characters (mostly 6 to 13), order identifiers 13 to 47 characters
//! (peaks at 20 and 33), and items per order 0: 179, 1: 708, 2: 65, 3: 26, 4: 16, 5: 10, 6: 6, 7: 4, 8: 4,
//! 9: 2, 10 to 12: 1 each (out of 1,023 orders).
//!
//! Setup registers a catalogue of 2,000 SKUs (a fifth rare, the rest back-orderable with tolerances of 5 to
//! 20) and receives their stock. Then about 2,000 orders are in progress at once, their commands interleaved:
//! `add-item` per item (SKUs Zipf-popular; the `reservations` process reserves each), `place` (an empty
//! basket is rejected with `empty-order`), one `pick` per item at the shelf (the `picking` process records it
//! on the order) and `ship`; about 2% are cancelled before packing (the reservations are released by the
//! chain of `release-next`); `ship`, and an assembly job's `start` and `complete`, are sent 32,768 messages
//! later, once the processes have recorded the picks and issued the materials. Write-offs at about 0.1% of picks, deliveries now and then, assembly jobs
//! (2 to 6 materials) that replenish rare SKUs, and machines that break down and are repaired.

use std::collections::{BTreeMap, HashSet, VecDeque};

use anthill_runtime::engine::Engine;
use anthill_runtime::Aggregate;

use super::rng::{Rng, Zipf};
use super::{json_u64, Check, HttpCommand, Step, Tally, Workload};
use crate::factory::{
    assembly_job, machine, order, stock_item, Availability, Command, Factory, JobId, Loss, MachineId, OrderId, Sku,
    SupplySource,
};

const SKUS: usize = 2_000;
const ACTIVE_ORDERS: usize = 2_048;
const MACHINES: u64 = 20;
/// Items per order, 0 to 12: the note's counts out of 1,023 orders.
const ITEMS_PER_ORDER: [u64; 13] = [179, 708, 65, 26, 16, 10, 6, 4, 4, 2, 1, 1, 1];

/// SKU identifier lengths 3 to 40, weighted: mostly 6 to 13, peaks at 9, 10, 12 and 13.
fn sku_length_weights() -> Vec<u64> {
    (3..=40u64)
        .map(|len| match len {
            3 => 1,
            4 => 2,
            5 => 4,
            6 => 8,
            7 => 10,
            8 => 14,
            9 => 22,
            10 => 20,
            11 => 14,
            12 => 26,
            13 => 20,
            14 => 6,
            15 => 4,
            16..=20 => 2,
            _ => 1,
        })
        .collect()
}

const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";

fn random_text(rng: &mut Rng, len: usize) -> String {
    (0..len).map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize] as char).collect()
}

/// An order identifier length: 13 to 47, peaks at 20 and 33.
fn order_id_length(rng: &mut Rng) -> usize {
    let len = match rng.below(100) {
        0..=54 => 20.0 + 1.5 * rng.normal(),
        55..=94 => 33.0 + 2.0 * rng.normal(),
        _ => rng.range(13, 47) as f64,
    };
    (len.round() as i64).clamp(13, 47) as usize
}

pub struct FactoryWorkload {
    rng: Rng,
    skus: Vec<Sku>,
    rare: Vec<bool>,
    popular: Zipf,
    orders: u64,
    jobs: u64,
    active: Vec<VecDeque<Step<Command>>>,
    /// Single commands waiting to go out (write-offs, deliveries, breakdowns...).
    extra: VecDeque<Step<Command>>,
    /// Commands that wait for a process's effect (`ship` for the picks to be recorded, `start` for the
    /// materials to be issued), by the message number they go out at.
    later: BTreeMap<(u64, u64), Step<Command>>,
    sent: u64,
}

/// Messages a command that waits for a process's effect is held back: some batches' worth.
const PROCESS_DELAY: u64 = 32_768;

impl FactoryWorkload {
    pub fn new(seed: u64) -> FactoryWorkload {
        let mut rng = Rng::new(seed);
        let weights = sku_length_weights();
        let mut seen = HashSet::new();
        let mut skus = Vec::with_capacity(SKUS);
        while skus.len() < SKUS {
            let len = 3 + rng.weighted(&weights);
            let text = random_text(&mut rng, len);
            if seen.insert(text.clone()) {
                skus.push(Sku(text));
            }
        }
        let rare = (0..SKUS).map(|_| rng.chance(0.2)).collect();
        FactoryWorkload {
            rng,
            skus,
            rare,
            popular: Zipf::new(SKUS, 0.8),
            orders: 0,
            jobs: 0,
            active: Vec::new(),
            extra: VecDeque::new(),
            later: BTreeMap::new(),
            sent: 0,
        }
    }

    fn on_stock(sku: &Sku, label: &'static str, command: stock_item::Command) -> Step<Command> {
        Step::new(label, Command::StockItem { id: sku.clone(), command })
    }

    fn on_order(id: &OrderId, label: &'static str, command: order::Command) -> Step<Command> {
        Step::new(label, Command::Order { id: id.clone(), command })
    }

    /// Every command of one order, in order.
    fn order_flow(&mut self) -> VecDeque<Step<Command>> {
        self.orders += 1;
        let prefix = format!("ORD-{}-", self.orders);
        let len = order_id_length(&mut self.rng).max(prefix.len() + 1);
        let id = OrderId(format!("{prefix}{}", random_text(&mut self.rng, len - prefix.len())));
        let count = self.rng.weighted(&ITEMS_PER_ORDER);
        let mut items: Vec<(usize, u32)> = Vec::new();
        while items.len() < count {
            let sku = self.popular.sample(&mut self.rng);
            if !items.iter().any(|(s, _)| *s == sku) {
                items.push((sku, self.rng.range(1, 3) as u32));
            }
        }
        let mut flow = VecDeque::new();
        for &(sku, qty) in &items {
            let command = order::Command::AddItem(order::commands::AddItem { item: self.skus[sku].clone(), qty });
            flow.push_back(Self::on_order(&id, "add-item", command));
        }
        flow.push_back(Self::on_order(&id, "place", order::Command::Place(order::commands::Place {})));
        if items.is_empty() {
            return flow;
        }
        if self.rng.chance(0.02) {
            let command = order::Command::Cancel(order::commands::Cancel { reason: "customer".into() });
            flow.push_back(Self::on_order(&id, "cancel", command));
            return flow;
        }
        for &(sku, qty) in &items {
            let command = stock_item::Command::Pick(stock_item::commands::Pick { order: id.clone(), qty });
            flow.push_back(Self::on_stock(&self.skus[sku], "pick", command));
        }
        let command = order::Command::Ship(order::commands::Ship { carrier: "van".into() });
        flow.push_back(Self::on_order(&id, "ship", command));
        flow
    }

    /// An assembly job that builds a rare SKU from 2 to 6 back-orderable materials, then starts and completes.
    fn job_flow(&mut self) -> VecDeque<Step<Command>> {
        self.jobs += 1;
        let id = JobId(format!("job-{}", self.jobs));
        let product = loop {
            let sku = self.rng.below(SKUS as u64) as usize;
            if self.rare[sku] {
                break self.skus[sku].clone();
            }
        };
        let machine = MachineId(format!("m-{}", self.rng.below(MACHINES)));
        let mut flow = VecDeque::new();
        let plan = assembly_job::commands::Plan { product, qty: self.rng.range(5, 20) as u32, machine };
        flow.push_back(Step::new(
            "plan",
            Command::AssemblyJob { id: id.clone(), command: assembly_job::Command::Plan(plan) },
        ));
        let mut materials = Vec::new();
        let count = self.rng.range(2, 6) as usize;
        while materials.len() < count {
            let sku = self.rng.below(SKUS as u64) as usize;
            if !self.rare[sku] && !materials.contains(&sku) {
                materials.push(sku);
            }
        }
        for sku in materials {
            let add = assembly_job::commands::AddMaterial {
                material: self.skus[sku].clone(),
                qty: self.rng.range(1, 3) as u32,
            };
            let command = assembly_job::Command::AddMaterial(add);
            flow.push_back(Step::new("add-material", Command::AssemblyJob { id: id.clone(), command }));
        }
        for (label, command) in [
            ("start", assembly_job::Command::Start(assembly_job::commands::Start {})),
            ("complete", assembly_job::Command::Complete(assembly_job::commands::Complete {})),
        ] {
            flow.push_back(Step::new(label, Command::AssemblyJob { id: id.clone(), command }));
        }
        flow
    }

    fn new_flow(&mut self) -> VecDeque<Step<Command>> {
        if self.rng.chance(0.005) {
            self.job_flow()
        } else {
            self.order_flow()
        }
    }

    /// Occasional single commands: deliveries, breakdowns and repairs.
    fn occasional(&mut self) -> Option<Step<Command>> {
        let roll = self.rng.below(10_000);
        if roll < 50 {
            let sku = self.skus[self.popular.sample(&mut self.rng)].clone();
            let receive = stock_item::commands::Receive { qty: 500, source: SupplySource::Delivery };
            return Some(Self::on_stock(&sku, "receive", stock_item::Command::Receive(receive)));
        }
        if roll < 52 {
            let id = MachineId(format!("m-{}", self.rng.below(MACHINES)));
            let command = machine::Command::BreakDown(machine::commands::BreakDown { cause: "spindle".into() });
            self.extra.push_back(Step::new(
                "repair",
                Command::Machine { id: id.clone(), command: machine::Command::Repair(machine::commands::Repair {}) },
            ));
            return Some(Step::new("break-down", Command::Machine { id, command }));
        }
        None
    }
}

impl Workload for FactoryWorkload {
    type D = Factory;

    fn setup(&mut self) -> Vec<Vec<Step<Command>>> {
        let mut register = Vec::new();
        let mut receive = Vec::new();
        for (sku, &rare) in self.skus.iter().zip(&self.rare) {
            let (availability, back_order_tolerance) = if rare {
                (Availability::Rare, 0)
            } else {
                (Availability::BackOrderable, self.rng.range(5, 20) as u32)
            };
            let command =
                stock_item::Command::Register(stock_item::commands::Register { availability, back_order_tolerance });
            register.push(Self::on_stock(sku, "register", command));
            let qty = if rare { 200 } else { 2_000 };
            let command =
                stock_item::Command::Receive(stock_item::commands::Receive { qty, source: SupplySource::Delivery });
            receive.push(Self::on_stock(sku, "receive", command));
        }
        vec![register, receive]
    }

    fn next(&mut self) -> Step<Command> {
        self.sent += 1;
        if let Some(entry) = self.later.first_entry() {
            if entry.key().0 <= self.sent {
                return entry.remove();
            }
        }
        if let Some(step) = self.extra.pop_front() {
            return step;
        }
        if let Some(step) = self.occasional() {
            return step;
        }
        while self.active.len() < ACTIVE_ORDERS {
            let flow = self.new_flow();
            self.active.push(flow);
        }
        loop {
            let index = self.rng.below(self.active.len() as u64) as usize;
            match self.active[index].pop_front() {
                Some(step) => {
                    if matches!(step.label, "ship" | "start" | "complete") {
                        self.later.insert((self.sent + PROCESS_DELAY, self.sent), step);
                        continue;
                    }
                    if step.label == "pick" && self.rng.chance(0.001) {
                        if let Command::StockItem { id, .. } = &step.command {
                            let write_off = stock_item::commands::WriteOff { qty: 1, loss: Loss::Broken };
                            self.extra.push_back(Self::on_stock(
                                id,
                                "write-off",
                                stock_item::Command::WriteOff(write_off),
                            ));
                        }
                    }
                    return step;
                }
                None => self.active[index] = self.new_flow(),
            }
        }
    }

    fn check(&self, engine: &Engine<Factory>, _tally: &Tally) -> Vec<Check> {
        // Rare SKUs are never promised beyond the stock except after losses; back-orderable ones at most by
        // their tolerance (the `not-oversold` policies).
        let (mut short, mut beyond, mut errors) = (0u64, Vec::new(), 0u64);
        for (sku, &rare) in self.skus.iter().zip(&self.rare) {
            let state = match engine.state::<stock_item::StockItem>(sku) {
                Ok(Some(snapshot)) => stock_item::StockItem::state_to_json(&snapshot.state),
                _ => {
                    errors += 1;
                    continue;
                }
            };
            let (on_hand, reserved) = (json_u64(&state, "on-hand"), json_u64(&state, "reserved"));
            let tolerance = json_u64(&state, "back-order-tolerance");
            if reserved > on_hand {
                short += 1;
                if !rare && reserved > on_hand + tolerance {
                    beyond.push(format!("{sku}: reserved {reserved} > on hand {on_hand} + {tolerance}"));
                }
            }
        }
        vec![Check::new(
            "stock promises",
            errors == 0,
            format!(
                "{} SKUs, {short} promised beyond their stock (back-ordered or after losses), {} beyond the tolerance, {errors} unreadable",
                self.skus.len(),
                beyond.len()
            ),
        )]
    }

    fn http(command: &Command) -> HttpCommand {
        match command {
            Command::StockItem { id, command } => super::http_command::<stock_item::StockItem>(id, command),
            Command::Order { id, command } => super::http_command::<order::Order>(id, command),
            Command::AssemblyJob { id, command } => super::http_command::<assembly_job::AssemblyJob>(id, command),
            Command::Machine { id, command } => super::http_command::<machine::Machine>(id, command),
        }
    }
}
