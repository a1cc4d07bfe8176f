//! The shipments workload (`docs/domains.md`, Shipments, Workload): fifty depots and 500 routes planned and
//! the parcels registered before the clock starts; then the scans of many parcels at once (a few thousand in
//! progress, interleaved): in at one or two depots, loaded onto a route (the `routing` process adds the stop),
//! a failed attempt for about 3%, delivered. About 20% of scans reach the server late, after later scans of
//! the same parcel, backdated to their scan time (the device's clock); about 1% are uploaded twice. In a run
//! of seconds "late" is by up to some thousands of messages (milliseconds to seconds), not the hours of the
//! field, since a parcel's registration time is the server's clock. The check reads the `parcel-tracking`
//! view of a sample of parcels: each history is in the order the scans happened.

use std::collections::BTreeMap;

use anthill_runtime::engine::Engine;
use anthill_runtime::{Domain, Timestamp};

use super::rng::Rng;
use super::{Check, HttpCommand, Step, Tally, Workload};
use crate::shipments::{parcel, route, Command, DepotId, ParcelId, RouteId, Shipments};

const DEPOTS: u64 = 50;
const ROUTES: u64 = 500;
/// Parcels whose scans are in progress at once.
const ACTIVE: usize = 4_096;

/// One parcel's way through the network.
struct Flow {
    parcel: usize,
    stage: u8,
    second_depot: bool,
    failed_attempt: bool,
    route: u64,
}

pub struct ShipmentsWorkload {
    rng: Rng,
    parcels: Vec<ParcelId>,
    destinations: Vec<u64>,
    next_parcel: usize,
    active: Vec<Flow>,
    /// Late scans by the message number they are sent at.
    late: BTreeMap<(u64, u64), Step<Command>>,
    sent: u64,
}

impl ShipmentsWorkload {
    pub fn new(seed: u64) -> ShipmentsWorkload {
        ShipmentsWorkload {
            rng: Rng::new(seed),
            parcels: Vec::new(),
            destinations: Vec::new(),
            next_parcel: 0,
            active: Vec::new(),
            late: BTreeMap::new(),
            sent: 0,
        }
    }

    /// Sizes the parcels for `commands` measured commands (at least three scans each), before `setup`.
    pub fn with_commands(mut self, commands: u64) -> ShipmentsWorkload {
        let parcels = (commands / 3) as usize + ACTIVE + 16;
        self.parcels = (0..parcels).map(|n| ParcelId(format!("p-{n:08}"))).collect();
        self.destinations = (0..parcels).map(|_| self.rng.below(DEPOTS)).collect();
        self
    }

    fn start_flow(&mut self) -> Option<Flow> {
        let parcel = self.next_parcel;
        if parcel >= self.parcels.len() {
            return None;
        }
        self.next_parcel += 1;
        Some(Flow {
            parcel,
            stage: 0,
            second_depot: self.rng.chance(0.5),
            failed_attempt: self.rng.chance(0.03),
            route: self.rng.below(ROUTES),
        })
    }

    /// The flow's next scan, or `None` when it is done.
    fn scan(&mut self, flow: &mut Flow) -> Option<Step<Command>> {
        let now = Timestamp::now();
        let id = self.parcels[flow.parcel].clone();
        let destination = DepotId(format!("depot-{}", self.destinations[flow.parcel]));
        let device = format!("hh-{}", self.rng.below(2_000));
        let (label, command) = loop {
            flow.stage += 1;
            match flow.stage {
                1 => {
                    let depot = DepotId(format!("depot-{}", self.rng.below(DEPOTS)));
                    let scan = parcel::commands::ScanIn { depot, device, scanned_at: now };
                    break ("scan-in", parcel::Command::ScanIn(scan));
                }
                2 if flow.second_depot => {
                    let scan = parcel::commands::ScanIn { depot: destination.clone(), device, scanned_at: now };
                    break ("scan-in", parcel::Command::ScanIn(scan));
                }
                3 => {
                    let route = RouteId(format!("r-{}", flow.route));
                    let scan = parcel::commands::Load { depot: destination.clone(), route, device, scanned_at: now };
                    break ("load", parcel::Command::Load(scan));
                }
                4 if flow.failed_attempt => {
                    let scan = parcel::commands::FailDelivery { reason: "nobody home".into(), device, scanned_at: now };
                    break ("fail-delivery", parcel::Command::FailDelivery(scan));
                }
                5 => {
                    let scan = parcel::commands::Deliver { signed_by: "recipient".into(), device, scanned_at: now };
                    break ("deliver", parcel::Command::Deliver(scan));
                }
                6.. => return None,
                _ => {}
            }
        };
        Some(Step { command: Command::Parcel { id, command }, label, occurred_at: Some(now) })
    }

    fn clone_step(step: &Step<Command>) -> Step<Command> {
        Step { command: step.command.clone(), label: step.label, occurred_at: step.occurred_at }
    }
}

impl Workload for ShipmentsWorkload {
    type D = Shipments;

    fn setup(&mut self) -> Vec<Vec<Step<Command>>> {
        let planned_stops = (self.parcels.len() as u64 / ROUTES + 1) as u32;
        let mut steps = Vec::new();
        for r in 0..ROUTES {
            let depot = DepotId(format!("depot-{}", r % DEPOTS));
            let command = route::Command::Plan(route::commands::Plan { depot, planned_stops });
            steps.push(Step::new("plan", Command::Route { id: RouteId(format!("r-{r}")), command }));
        }
        for (id, destination) in self.parcels.iter().zip(&self.destinations) {
            let command = parcel::Command::Register(parcel::commands::Register {
                sender: "shop".into(),
                recipient: format!("{id} recipient"),
                destination: DepotId(format!("depot-{destination}")),
            });
            steps.push(Step::new("register", Command::Parcel { id: id.clone(), command }));
        }
        vec![steps]
    }

    fn next(&mut self) -> Step<Command> {
        self.sent += 1;
        if let Some(entry) = self.late.first_entry() {
            if entry.key().0 <= self.sent {
                return entry.remove();
            }
        }
        while self.active.len() < ACTIVE {
            match self.start_flow() {
                Some(flow) => self.active.push(flow),
                None => break,
            }
        }
        loop {
            if self.active.is_empty() {
                // Out of parcels (more commands than sized for): the late scans, then duplicates of a scan.
                if let Some(entry) = self.late.first_entry() {
                    return entry.remove();
                }
                let id = self.parcels[0].clone();
                let scan = parcel::commands::ScanIn {
                    depot: DepotId("depot-0".into()),
                    device: "hh-0".into(),
                    scanned_at: Timestamp::now(),
                };
                let at = scan.scanned_at;
                return Step {
                    command: Command::Parcel { id, command: parcel::Command::ScanIn(scan) },
                    label: "scan-in",
                    occurred_at: Some(at),
                };
            }
            let index = self.rng.below(self.active.len() as u64) as usize;
            let mut flow = std::mem::replace(
                &mut self.active[index],
                Flow { parcel: 0, stage: 0, second_depot: false, failed_attempt: false, route: 0 },
            );
            let scan = self.scan(&mut flow);
            self.active[index] = flow;
            let Some(step) = scan else {
                let replacement = self.start_flow();
                match replacement {
                    Some(flow) => self.active[index] = flow,
                    None => {
                        self.active.swap_remove(index);
                    }
                }
                continue;
            };
            if self.rng.chance(0.01) {
                let again = self.sent + self.rng.range(1, 5_000);
                self.late.insert((again, self.sent), Self::clone_step(&step));
            }
            if self.rng.chance(0.2) {
                // Uploaded late: sent after later scans of the same parcel, with its own scan time.
                let at = self.sent + self.rng.range(ACTIVE as u64, 4 * ACTIVE as u64);
                self.late.insert((at, self.sent + u64::MAX / 2), step);
                continue;
            }
            return step;
        }
    }

    fn check(&self, engine: &Engine<Shipments>, _tally: &Tally) -> Vec<Check> {
        let mut unordered = Vec::new();
        let mut read = 0u64;
        for id in self.parcels.iter().take(self.next_parcel).step_by(97) {
            let row = Shipments::view_key("parcel-tracking", &id.0)
                .and_then(Result::ok)
                .and_then(|key| engine.view_get("parcel-tracking", &key).ok().flatten())
                .and_then(|bytes| Shipments::view_row_json("parcel-tracking", &bytes))
                .and_then(Result::ok);
            let Some(row) = row else {
                unordered.push(format!("{id}: no tracking row"));
                continue;
            };
            read += 1;
            let times: Vec<Timestamp> = row["history"]
                .as_array()
                .map(|entries| entries.iter().filter_map(|e| e["at"].as_str().and_then(Timestamp::parse)).collect())
                .unwrap_or_default();
            if times.windows(2).any(|pair| pair[0] > pair[1]) {
                unordered.push(format!("{id}: history out of order"));
            }
        }
        vec![Check::new(
            "views in scan order",
            unordered.is_empty(),
            if unordered.is_empty() {
                format!("{read} sampled parcels' histories ordered by scan time")
            } else {
                unordered.into_iter().take(5).collect::<Vec<_>>().join("; ")
            },
        )]
    }

    fn http(command: &Command) -> HttpCommand {
        match command {
            Command::Parcel { id, command } => super::http_command::<parcel::Parcel>(id, command),
            Command::Route { id, command } => super::http_command::<route::Route>(id, command),
        }
    }
}
