//! The seed domains' processes, end to end on the generated logic: scenarios test one command of one aggregate,
//! these tests follow a flow across aggregates (a transfer and its refund, a disbursement's fan-out, an order's
//! reservations and their release, a machine breakdown, a route's stops). A small in-memory world runs each
//! command, records its events, runs the processes' reactions (and their `on-rejected` compensations) until
//! none is left, and folds every event into the views. No store, no engine: the engine's own tests cover those.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;

use anthill::{delivery, factory, ledger, shipments};
use anthill_runtime::{
    Aggregate, CommandVisitor, Context, Decimal, Domain, DomainCommand, EventContext, Reaction, Rejection, Timestamp,
    ViewError, ViewTables,
};

const NOW: Timestamp = Timestamp::from_micros(1_767_225_600_000_000);

/// Every instance's state, the events in the order they were recorded, the rejected commands and the views.
struct World<D: Domain> {
    states: HashMap<String, (Box<dyn Any>, u64)>,
    events: Vec<String>,
    rejections: Vec<String>,
    next_event_id: u128,
    views: Tables,
    /// The clock commands run at, `(now)`.
    now: Timestamp,
    domain: PhantomData<D>,
}

/// View rows by view and key, as the engine stores them.
#[derive(Default)]
struct Tables(HashMap<(&'static str, Vec<u8>), Vec<u8>>);

impl ViewTables for Tables {
    fn get(&mut self, view: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, ViewError> {
        Ok(self.0.get(&(view, key.to_vec())).cloned())
    }

    fn put(&mut self, view: &'static str, key: &[u8], row: &[u8]) -> Result<(), ViewError> {
        self.0.insert((view, key.to_vec()), row.to_vec());
        Ok(())
    }
}

impl<D: Domain> World<D> {
    fn new() -> Self {
        World {
            states: HashMap::new(),
            events: Vec::new(),
            rejections: Vec::new(),
            next_event_id: 1,
            views: Tables::default(),
            now: NOW,
            domain: PhantomData,
        }
    }

    /// Runs the command and everything the processes send in reaction, breadth first.
    fn send(&mut self, command: impl Into<D::Command>) {
        self.send_at(command, self.now);
    }

    /// [`World::send`], backdated: the events (and those of the reactions) occurred at `occurred_at`.
    fn send_at(&mut self, command: impl Into<D::Command>, occurred_at: Timestamp) {
        let mut queue: VecDeque<Reaction<D::Command>> = VecDeque::new();
        queue.push_back(Reaction { command_id: 0, command: command.into(), on_rejected: Vec::new() });
        while let Some(reaction) = queue.pop_front() {
            let step = Step {
                states: &mut self.states,
                events: &mut self.events,
                next_event_id: &mut self.next_event_id,
                views: &mut self.views,
                now: self.now,
                occurred_at,
            };
            match reaction.command.dispatch(step) {
                Ok(reactions) => {
                    let reactions = reactions.downcast::<Vec<Reaction<D::Command>>>().expect("the domain's commands");
                    queue.extend(*reactions);
                }
                Err(rejected) => {
                    self.rejections.push(rejected);
                    queue.extend(reaction.on_rejected);
                }
            }
        }
    }

    fn state<A: Aggregate>(&self, id: &str) -> &A::State {
        let (state, _) = &self.states[&format!("{}/{id}", A::NAME)];
        state.downcast_ref::<A::State>().expect("the aggregate's state")
    }

    /// The names of the events recorded so far, as `AGGREGATE/ID EVENT`.
    fn recorded(&self, prefix: &str) -> Vec<&str> {
        self.events.iter().filter(|e| e.starts_with(prefix)).map(String::as_str).collect()
    }
}

struct Step<'w> {
    states: &'w mut HashMap<String, (Box<dyn Any>, u64)>,
    events: &'w mut Vec<String>,
    next_event_id: &'w mut u128,
    views: &'w mut Tables,
    now: Timestamp,
    occurred_at: Timestamp,
}

impl CommandVisitor for Step<'_> {
    /// The reactions (a `Vec<Reaction<D::Command>>`), or the rejection as `AGGREGATE/ID COMMAND: CODE`.
    type Output = Result<Box<dyn Any>, String>;

    fn visit<A: Aggregate>(self, id: A::Id, command: A::Command) -> Self::Output {
        let key = format!("{}/{id}", A::NAME);
        let (state, version) = self.states.entry(key.clone()).or_insert_with(|| (Box::new(A::State::default()), 0));
        let state = state.downcast_mut::<A::State>().expect("one state type per aggregate");
        let ctx = Context { id: &id, version: *version, now: self.now, occurred_at: self.occurred_at };
        let events = A::execute(state, &command, &ctx)
            .map_err(|r| format!("{key} {}: {}", anthill_runtime::CommandName::name(&command), r.code()))?;
        let mut reactions = Vec::new();
        for event in &events {
            let ctx = EventContext {
                id: &id,
                version: *version,
                occurred_at: self.occurred_at,
                event_id: *self.next_event_id,
            };
            *self.next_event_id += 1;
            *version += 1;
            self.events.push(format!("{key} {}", anthill_runtime::EventName::name(event)));
            reactions.extend(A::react(event, &ctx).expect("no overflow in the processes"));
            A::update_views(event, &ctx, self.views).expect("the views fold the event");
        }
        Ok(Box::new(reactions))
    }
}

fn money(units: i64) -> Decimal<2> {
    Decimal::from_mantissa(units * 100)
}

mod ledger_flows {
    use super::*;
    use ledger::{account, disbursement, AccountId, Command, DisbursementId, DisbursementStatus, Ledger, TransferId};

    fn to_account(id: &str, command: impl Into<account::Command>) -> Command {
        Command::Account { id: AccountId::from(id), command: command.into() }
    }

    fn to_disbursement(id: &str, command: impl Into<disbursement::Command>) -> Command {
        Command::Disbursement { id: DisbursementId::from(id), command: command.into() }
    }

    fn open(world: &mut World<Ledger>, id: &str, deposit: i64) {
        world.send(to_account(id, account::commands::Open { owner: id.to_string(), overdraft_limit: money(0) }));
        if deposit > 0 {
            world.send(to_account(id, account::commands::Deposit { amount: money(deposit) }));
        }
    }

    #[test]
    fn a_transfer_to_a_closed_account_comes_back() {
        let mut world = World::<Ledger>::new();
        open(&mut world, "ann", 100);
        open(&mut world, "bob", 0);
        world.send(to_account("bob", account::commands::Close {}));
        world.send(to_account(
            "ann",
            account::commands::SendTransfer {
                transfer: TransferId::from("t-1"),
                to: AccountId::from("bob"),
                amount: money(30),
            },
        ));
        assert_eq!(world.rejections, ["account/bob receive-transfer: not-open"]);
        assert_eq!(
            world.recorded("account/ann"),
            [
                "account/ann opened",
                "account/ann deposited",
                "account/ann transfer-sent",
                "account/ann transfer-refunded"
            ]
        );
        assert_eq!(world.state::<account::Account>("ann").balance(), money(100));
    }

    #[test]
    fn a_disbursement_credits_every_line_and_refunds_the_refused_ones() {
        let mut world = World::<Ledger>::new();
        open(&mut world, "payroll", 300);
        open(&mut world, "ann", 0);
        open(&mut world, "bob", 0);
        world.send(to_account("bob", account::commands::Freeze { reason: "audit".into() }));
        open(&mut world, "cat", 0);
        world.send(to_disbursement("d-1", disbursement::commands::Plan { payer: AccountId::from("payroll") }));
        for (to, amount) in [("ann", 100), ("bob", 50), ("cat", 25)] {
            world.send(to_disbursement(
                "d-1",
                disbursement::commands::AddPayout { to: AccountId::from(to), amount: money(amount) },
            ));
        }
        world.send(to_disbursement("d-1", disbursement::commands::Release {}));

        assert_eq!(world.rejections, ["account/bob credit-disbursement: not-open"]);
        assert_eq!(world.state::<account::Account>("ann").balance(), money(100));
        assert_eq!(world.state::<account::Account>("bob").balance(), money(0));
        assert_eq!(world.state::<account::Account>("cat").balance(), money(25));
        assert_eq!(world.state::<account::Account>("payroll").balance(), money(300 - 175 + 50));
        assert_eq!(world.state::<disbursement::Disbursement>("d-1").status(), DisbursementStatus::Completed);
        assert_eq!(
            world.recorded("disbursement/d-1 payout-sent").len(),
            3,
            "one payout event per line: {:?}",
            world.events
        );
    }

    #[test]
    fn a_disbursement_the_payer_cannot_fund_pays_nothing() {
        let mut world = World::<Ledger>::new();
        open(&mut world, "payroll", 10);
        open(&mut world, "ann", 0);
        world.send(to_disbursement("d-1", disbursement::commands::Plan { payer: AccountId::from("payroll") }));
        world.send(to_disbursement(
            "d-1",
            disbursement::commands::AddPayout { to: AccountId::from("ann"), amount: money(100) },
        ));
        world.send(to_disbursement("d-1", disbursement::commands::Release {}));
        assert_eq!(world.rejections, ["account/payroll debit-disbursement: non-negative"]);
        assert_eq!(world.state::<disbursement::Disbursement>("d-1").status(), DisbursementStatus::Unfunded);
        assert_eq!(world.state::<account::Account>("payroll").balance(), money(10));
        assert!(world.recorded("account/ann disbursement-credited").is_empty());
    }
}

mod factory_flows {
    use super::*;
    use factory::{
        assembly_job, machine, order, stock_item, Availability, Command, Factory, JobId, JobStatus, Loss, MachineId,
        MachineStatus, OrderId, OrderStatus, Sku, SupplySource,
    };

    fn to_stock(sku: &str, command: impl Into<stock_item::Command>) -> Command {
        Command::StockItem { id: Sku::from(sku), command: command.into() }
    }

    fn to_order(id: &str, command: impl Into<order::Command>) -> Command {
        Command::Order { id: OrderId::from(id), command: command.into() }
    }

    fn stock(world: &mut World<Factory>, sku: &str, availability: Availability, qty: u32) {
        world.send(to_stock(sku, stock_item::commands::Register { availability, back_order_tolerance: 5 }));
        world.send(to_stock(sku, stock_item::commands::Receive { qty, source: SupplySource::Delivery }));
    }

    #[test]
    fn an_order_reserves_its_items_and_a_cancellation_releases_them_all() {
        let mut world = World::<Factory>::new();
        stock(&mut world, "SKU-A", Availability::Rare, 5);
        stock(&mut world, "SKU-B", Availability::BackOrderable, 1);
        for (sku, qty) in [("SKU-A", 2), ("SKU-B", 3), ("SKU-UNKNOWN", 1)] {
            world.send(to_order("ord-1", order::commands::AddItem { item: Sku::from(sku), qty }));
        }
        assert_eq!(world.rejections, ["stock-item/SKU-UNKNOWN reserve: unknown-sku"]);
        assert_eq!(world.recorded("stock-item/SKU-B back-ordered").len(), 1, "SKU-B is promised beyond its stock");
        world.send(to_order("ord-1", order::commands::Place {}));
        assert_eq!(world.recorded("order/ord-1 placed").len(), 1);
        world.send(to_order("ord-1", order::commands::Cancel { reason: "customer".into() }));
        assert_eq!(world.recorded("order/ord-1 item-released").len(), 2, "one release per reserved item");
        assert_eq!(world.state::<stock_item::StockItem>("SKU-A").reserved(), 0);
        assert_eq!(world.state::<stock_item::StockItem>("SKU-B").reserved(), 0);
        assert_eq!(world.state::<order::Order>("ord-1").status(), OrderStatus::Cancelled);
    }

    #[test]
    fn a_reservation_that_arrives_after_the_cancellation_is_released() {
        let mut world = World::<Factory>::new();
        stock(&mut world, "SKU-A", Availability::Rare, 5);
        world.send(to_order("ord-1", order::commands::AddItem { item: Sku::from("SKU-A"), qty: 1 }));
        world.send(to_order("ord-1", order::commands::Cancel { reason: "customer".into() }));
        assert_eq!(world.state::<stock_item::StockItem>("SKU-A").reserved(), 0);
        // A reservation that was still on its way when the order was cancelled (the engine runs processes
        // asynchronously): the order refuses it and the process releases it again.
        world.send(to_stock("SKU-A", stock_item::commands::Reserve { order: OrderId::from("ord-1"), qty: 2 }));
        assert_eq!(world.rejections, ["order/ord-1 confirm-reservation: not-active"]);
        assert_eq!(world.state::<stock_item::StockItem>("SKU-A").reserved(), 0);
    }

    #[test]
    fn picking_every_item_packs_the_order_and_it_ships() {
        let mut world = World::<Factory>::new();
        stock(&mut world, "SKU-A", Availability::Rare, 5);
        stock(&mut world, "SKU-B", Availability::Rare, 5);
        world.send(to_order("ord-1", order::commands::AddItem { item: Sku::from("SKU-A"), qty: 2 }));
        world.send(to_order("ord-1", order::commands::AddItem { item: Sku::from("SKU-B"), qty: 1 }));
        world.send(to_order("ord-1", order::commands::Place {}));
        world.send(to_stock("SKU-A", stock_item::commands::Pick { order: OrderId::from("ord-1"), qty: 1 }));
        world.send(to_stock("SKU-B", stock_item::commands::Pick { order: OrderId::from("ord-1"), qty: 1 }));
        assert_eq!(world.state::<order::Order>("ord-1").status(), OrderStatus::Placed);
        world.send(to_stock("SKU-A", stock_item::commands::Pick { order: OrderId::from("ord-1"), qty: 1 }));
        assert_eq!(world.state::<order::Order>("ord-1").status(), OrderStatus::Packed);
        world.send(to_order("ord-1", order::commands::Ship { carrier: "dhl".into() }));
        assert_eq!(world.state::<order::Order>("ord-1").status(), OrderStatus::Shipped);
        assert_eq!(world.state::<stock_item::StockItem>("SKU-A").on_hand(), 3);
        assert_eq!(world.state::<stock_item::StockItem>("SKU-A").reserved(), 0);
        assert!(world.rejections.is_empty(), "{:?}", world.rejections);
    }

    #[test]
    fn units_picked_for_a_cancelled_order_go_back_on_the_shelf() {
        let mut world = World::<Factory>::new();
        stock(&mut world, "SKU-A", Availability::Rare, 5);
        world.send(to_order("ord-1", order::commands::AddItem { item: Sku::from("SKU-A"), qty: 2 }));
        world.send(to_order("ord-1", order::commands::Place {}));
        world.send(to_order("ord-1", order::commands::Cancel { reason: "customer".into() }));
        world.send(to_stock("SKU-A", stock_item::commands::Pick { order: OrderId::from("ord-1"), qty: 2 }));
        assert_eq!(world.rejections, ["order/ord-1 record-pick: not-placed"]);
        assert_eq!(world.state::<stock_item::StockItem>("SKU-A").on_hand(), 5);
    }

    #[test]
    fn a_machine_breakdown_aborts_its_job_and_the_issued_materials_stay_consumed() {
        let mut world = World::<Factory>::new();
        stock(&mut world, "STEEL-2MM", Availability::BackOrderable, 10);
        let job = |command: assembly_job::Command| Command::AssemblyJob { id: JobId::from("job-1"), command };
        world.send(job(assembly_job::commands::Plan {
            product: Sku::from("GADGET-7"),
            qty: 2,
            machine: MachineId::from("press-1"),
        }
        .into()));
        world.send(job(assembly_job::commands::AddMaterial { material: Sku::from("STEEL-2MM"), qty: 4 }.into()));
        world.send(job(assembly_job::commands::Start {}.into()));
        assert_eq!(world.state::<machine::Machine>("press-1").status(), MachineStatus::Busy);
        world.send(Command::Machine {
            id: MachineId::from("press-1"),
            command: machine::commands::BreakDown { cause: "hydraulics".into() }.into(),
        });
        assert_eq!(world.state::<assembly_job::AssemblyJob>("job-1").status(), JobStatus::Aborted);
        assert_eq!(world.state::<stock_item::StockItem>("STEEL-2MM").on_hand(), 6);
        assert!(world.rejections.is_empty(), "{:?}", world.rejections);
        world.send(to_stock("STEEL-2MM", stock_item::commands::WriteOff { qty: 1, loss: Loss::Broken }));
        assert_eq!(world.state::<stock_item::StockItem>("STEEL-2MM").on_hand(), 5);
    }
}

mod shipments_flows {
    use super::*;
    use shipments::{parcel, route, views, Command, DepotId, ParcelId, ParcelStatus, RouteId, ScanKind, Shipments};

    const HOUR: i64 = 3_600_000_000;

    #[test]
    fn a_scan_uploaded_late_takes_its_place_in_the_history() {
        let mut world = World::<Shipments>::new();
        let to_parcel = |command: parcel::Command| Command::Parcel { id: ParcelId::from("p-1"), command };
        let hours_ago = |hours: i64| Timestamp::from_micros(NOW.micros() - hours * HOUR);
        let register = parcel::commands::Register {
            sender: "acme".into(),
            recipient: "ann".into(),
            destination: DepotId::from("north"),
        };
        world.now = hours_ago(10);
        world.send(to_parcel(register.into()));
        world.now = NOW;
        let scan_in =
            parcel::commands::ScanIn { depot: DepotId::from("north"), device: "hh-1".into(), scanned_at: hours_ago(3) };
        world.send_at(to_parcel(scan_in.into()), hours_ago(3));
        let deliver =
            parcel::commands::Deliver { signed_by: "ann".into(), device: "hh-2".into(), scanned_at: hours_ago(1) };
        world.send_at(to_parcel(deliver.into()), hours_ago(1));
        // The van's device was offline: its load scan, made between the two, arrives last, backdated.
        let load = parcel::commands::Load {
            depot: DepotId::from("north"),
            route: RouteId::from("r-1"),
            device: "hh-3".into(),
            scanned_at: hours_ago(2),
        };
        world.send_at(to_parcel(load.into()), hours_ago(2));
        assert_eq!(world.rejections, ["route/r-1 add-stop: unknown-route"], "the route was never planned");
        assert_eq!(world.state::<parcel::Parcel>("p-1").status(), ParcelStatus::Delivered);

        let key = views::ParcelTracking::key_bytes(&ParcelId::from("p-1"));
        let row = views::ParcelTracking::decode(&world.views.0[&("parcel-tracking", key)]).expect("a tracking row");
        assert_eq!(
            row.status,
            Some(ParcelStatus::Delivered),
            "the late load scan happened earlier, so it does not win"
        );
        let kinds: Vec<ScanKind> = row.history.iter().map(|h| h.kind).collect();
        assert_eq!(kinds, [ScanKind::Arrived, ScanKind::Loaded, ScanKind::Delivered], "in the order they happened");
        assert_eq!(row.scans, 3);
    }

    #[test]
    fn a_loaded_and_delivered_parcel_completes_its_route_stop() {
        let mut world = World::<Shipments>::new();
        world.send(Command::Route {
            id: RouteId::from("r-1"),
            command: route::commands::Plan { depot: DepotId::from("north"), planned_stops: 1 }.into(),
        });
        let to_parcel = |command: parcel::Command| Command::Parcel { id: ParcelId::from("p-1"), command };
        world.send(to_parcel(
            parcel::commands::Register {
                sender: "acme".into(),
                recipient: "ann".into(),
                destination: DepotId::from("north"),
            }
            .into(),
        ));
        world.send(to_parcel(
            parcel::commands::Load {
                depot: DepotId::from("north"),
                route: RouteId::from("r-1"),
                device: "hh-1".into(),
                scanned_at: NOW,
            }
            .into(),
        ));
        world.send(to_parcel(
            parcel::commands::Deliver { signed_by: "ann".into(), device: "hh-2".into(), scanned_at: NOW }.into(),
        ));
        assert!(world.rejections.is_empty(), "{:?}", world.rejections);
        assert_eq!(world.recorded("route/r-1"), ["route/r-1 planned", "route/r-1 stop-added", "route/r-1 stop-done"]);
    }
}

mod delivery_flows {
    use super::*;
    use delivery::{slot, views, Access, BookingId, Command, Delivery, SlotId};

    fn to_slot(command: impl Into<slot::Command>) -> Command {
        Command::Slot { id: SlotId::from("2026-01-02/08-10/north"), command: command.into() }
    }

    fn book(booking: &str) -> Command {
        to_slot(slot::commands::Book {
            booking: BookingId::from(booking),
            address: format!("{booking} Main St"),
            area: "SW1".into(),
            access: Access::AnyVan,
            picking_minutes: 10,
            chilled_totes: 1,
            frozen_totes: 0,
        })
    }

    #[test]
    fn of_two_customers_racing_for_the_last_van_stop_exactly_one_wins() {
        let mut world = World::<Delivery>::new();
        world.send(to_slot(slot::commands::Open {
            day: "2026-01-02".into(),
            window: "08-10".into(),
            cutoff: Timestamp::from_micros(NOW.micros() + 3_600_000_000),
            van_stops: 2,
            small_van_stops: 1,
            picking_minutes: 600,
            chilled_totes: 40,
            frozen_totes: 20,
        }));
        world.send(to_slot(slot::commands::ServeArea { area: "SW1".into() }));
        world.send(book("b-1"));
        world.send(book("b-2"));
        world.send(book("b-3"));
        assert_eq!(world.rejections, ["slot/2026-01-02/08-10/north book: van-stops-within-limit"]);

        let key = views::SlotCounters::key_bytes(&SlotId::from("2026-01-02/08-10/north"));
        let counters = |world: &World<Delivery>| {
            views::SlotCounters::decode(&world.views.0[&("slot-counters", key.clone())]).expect("a counters row")
        };
        let row = counters(&world);
        assert_eq!((row.bookings, row.van_stops, row.van_stops_limit), (2, 2, Some(2)));
        assert_eq!((row.picking_minutes, row.chilled_totes), (20, 2));

        world.send(to_slot(slot::commands::Cancel { booking: BookingId::from("b-1") }));
        world.send(book("b-3"));
        assert_eq!(world.rejections.len(), 1, "the cancelled booking's stop went to the next customer");
        assert_eq!(counters(&world).van_stops, 2);
    }
}
