//! The delivery workload (`docs/domains.md`, Delivery slots, Workload): three hubs, seven two-hour windows a
//! day, a week ahead (147 slots), opened with their counters' limits and five served areas each. Then
//! bookings on a Zipf choice of slot (popular windows fill first and the in-flight bookings race for their
//! last units), picking 5 to 30 minutes, 0 to 3 chilled and 0 to 2 frozen totes, 5% of addresses small-van
//! only, 1% in an area the slot does not serve; about 10% of messages cancel an earlier booking, which
//! reopens capacity for the racers. The check: no counter exceeds its limit, and the van stops in use equal
//! the accepted bookings less the accepted cancellations (each last unit went to exactly one booking).

use anthill_runtime::engine::Engine;
use anthill_runtime::{Aggregate, Timestamp};

use super::rng::{Rng, Zipf};
use super::{json_u64, Check, HttpCommand, Recent, Step, Tally, Workload};
use crate::delivery::{slot, Access, BookingId, Command, Delivery, SlotId};

const HUBS: [&str; 3] = ["north", "east", "west"];
const WINDOWS: [&str; 7] = ["08-10", "10-12", "12-14", "14-16", "16-18", "18-20", "20-22"];
const DAYS: u32 = 7;
const AREAS: [&str; 5] = ["A1", "A2", "A3", "B1", "B2"];
/// The counters of a slot: (name in the state, limit).
const LIMITS: [(&str, u32); 5] = [
    ("van-stops", 120),
    ("small-van-stops", 30),
    ("picking-minutes", 2_100),
    ("chilled-totes", 200),
    ("frozen-totes", 120),
];

pub struct DeliveryWorkload {
    rng: Rng,
    slots: Vec<SlotId>,
    zipf: Zipf,
    bookings: u64,
    recent: Recent<(usize, BookingId)>,
}

impl DeliveryWorkload {
    pub fn new(seed: u64) -> DeliveryWorkload {
        let mut rng = Rng::new(seed);
        let mut slots = Vec::new();
        for day in 0..DAYS {
            for window in WINDOWS {
                for hub in HUBS {
                    slots.push(SlotId(format!("2026-12-{:02}/{window}/{hub}", day + 1)));
                }
            }
        }
        // Popularity is not the key order: shuffle which slots are the popular ones.
        for i in (1..slots.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            slots.swap(i, j);
        }
        let zipf = Zipf::new(slots.len(), 1.0);
        DeliveryWorkload { rng, slots, zipf, bookings: 0, recent: Recent::new(4_096) }
    }
}

impl Workload for DeliveryWorkload {
    type D = Delivery;

    fn setup(&mut self) -> Vec<Vec<Step<Command>>> {
        // Cut-off a year ahead: the run never passes it.
        let cutoff = Timestamp::from_micros(Timestamp::now().micros() + 365 * 24 * 3_600 * 1_000_000);
        let mut open = Vec::new();
        let mut areas = Vec::new();
        for id in &self.slots {
            let mut parts = id.0.split('/');
            let (day, window) =
                (parts.next().unwrap_or_default().to_owned(), parts.next().unwrap_or_default().to_owned());
            let command = slot::Command::Open(slot::commands::Open {
                day,
                window,
                cutoff,
                van_stops: LIMITS[0].1,
                small_van_stops: LIMITS[1].1,
                picking_minutes: LIMITS[2].1,
                chilled_totes: LIMITS[3].1,
                frozen_totes: LIMITS[4].1,
            });
            open.push(Step::new("open", Command::Slot { id: id.clone(), command }));
            for area in AREAS {
                let command = slot::Command::ServeArea(slot::commands::ServeArea { area: area.into() });
                areas.push(Step::new("serve-area", Command::Slot { id: id.clone(), command }));
            }
        }
        vec![open, areas]
    }

    fn next(&mut self) -> Step<Command> {
        if self.rng.chance(0.1) {
            if let Some((slot, booking)) = self.recent.pick(&mut self.rng) {
                let command = slot::Command::Cancel(slot::commands::Cancel { booking });
                return Step::new("cancel", Command::Slot { id: self.slots[slot].clone(), command });
            }
        }
        self.bookings += 1;
        let slot = self.zipf.sample(&mut self.rng);
        let booking = BookingId(format!("b-{}", self.bookings));
        self.recent.push((slot, booking.clone()));
        let area = if self.rng.chance(0.01) { "Z9" } else { AREAS[self.rng.below(AREAS.len() as u64) as usize] };
        let access = if self.rng.chance(0.05) { Access::SmallVanOnly } else { Access::AnyVan };
        let command = slot::Command::Book(slot::commands::Book {
            booking,
            address: format!("{} High Street", self.rng.below(100_000)),
            area: area.into(),
            access,
            picking_minutes: self.rng.range(5, 30) as u32,
            chilled_totes: self.rng.range(0, 3) as u32,
            frozen_totes: self.rng.range(0, 2) as u32,
        });
        Step::new("book", Command::Slot { id: self.slots[slot].clone(), command })
    }

    fn check(&self, engine: &Engine<Delivery>, tally: &Tally) -> Vec<Check> {
        let mut over = Vec::new();
        let mut van_stops_used = 0u64;
        let mut full = 0u64;
        for id in &self.slots {
            let state = match engine.state::<slot::Slot>(id) {
                Ok(Some(snapshot)) => slot::Slot::state_to_json(&snapshot.state),
                Ok(None) => {
                    over.push(format!("{id}: never opened"));
                    continue;
                }
                Err(e) => {
                    over.push(format!("{id}: {e}"));
                    continue;
                }
            };
            for (counter, _) in LIMITS {
                let used = json_u64(&state, &format!("{counter}-used"));
                let limit = json_u64(&state, &format!("{counter}-limit"));
                if used > limit {
                    over.push(format!("{id}: {counter} {used} > {limit}"));
                }
            }
            let used = json_u64(&state, "van-stops-used");
            van_stops_used += used;
            if used == json_u64(&state, "van-stops-limit") {
                full += 1;
            }
        }
        let expected = tally.accepted_of("book").saturating_sub(tally.accepted_of("cancel"));
        vec![
            Check::new(
                "capacity",
                over.is_empty(),
                if over.is_empty() {
                    format!("no counter of {} slots over its limit; {full} slots full", self.slots.len())
                } else {
                    over.join("; ")
                },
            ),
            Check::new(
                "one winner per unit",
                van_stops_used == expected,
                format!("van stops in use {van_stops_used}, accepted bookings less cancellations {expected}"),
            ),
        ]
    }

    fn http(command: &Command) -> HttpCommand {
        match command {
            Command::Slot { id, command } => super::http_command::<slot::Slot>(id, command),
        }
    }
}
