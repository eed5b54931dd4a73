//! `nexmark`: the Nexmark benchmark's event streams — people, auctions and
//! bids of an online auction site — generated straight into Arrow arrays.
//!
//! It follows the structure of the Nexmark generator: events are numbered,
//! and of every 50 one is a person, three are auctions and 46 are bids; bids
//! go mostly to "hot" auctions and come mostly from "hot" bidders, auctions
//! mostly from hot sellers; prices are log-uniform between 1 and 10^6
//! cents-ish units; event time advances by `1 / events_per_second` per event
//! from the start, shifted back by up to `max_out_of_orderness`. The stream is
//! a function of `seed`: every source with the same seed sees the same
//! people, auctions and bids.
//!
//! `CREATE SOURCE bid WITH (connector = 'nexmark', table = 'bid')` — the
//! columns come from the table; `events_per_second` (0 = as fast as
//! possible; event time then advances as at 10,000 events/s), `limit` (events
//! of this table), `seed`, `max_out_of_orderness` (a duration).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int64Array, StringBuilder, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;

use super::{Connector, SourceConnector, SourceContext, SourceSpec};
use crate::error::{Result, SluiceError};
use crate::sql::{Options, SourceColumn};

pub const CONNECTOR: Connector = Connector {
    name: "nexmark",
    source: Some(source_factory),
    source_options: &[
        "table",
        "events_per_second",
        "limit",
        "seed",
        "max_out_of_orderness",
        "start_time",
    ],
    source_decodes: false,
    metadata: &[],
    columns: Some(columns_of),
    sink: None,
    sink_options: &[],
};

const PERSON_PROPORTION: u64 = 1;
const AUCTION_PROPORTION: u64 = 3;
const TOTAL_PROPORTION: u64 = 50;
const FIRST_PERSON_ID: i64 = 1000;
const FIRST_AUCTION_ID: i64 = 1000;
const FIRST_CATEGORY_ID: i64 = 10;
const NUM_CATEGORIES: i64 = 5;
const ACTIVE_PEOPLE: i64 = 1000;
const IN_FLIGHT_AUCTIONS: i64 = 100;
const HOT_AUCTION_RATIO: u64 = 2;
const HOT_BIDDER_RATIO: u64 = 4;
const HOT_SELLER_RATIO: u64 = 4;
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
const CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const BATCH: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Person,
    Auction,
    Bid,
}

fn table_of(options: &Options) -> Result<Table> {
    match options.get("table").map(str::to_ascii_lowercase).as_deref() {
        Some("person") => Ok(Table::Person),
        Some("auction") => Ok(Table::Auction),
        Some("bid") => Ok(Table::Bid),
        Some(other) => Err(SluiceError::Options(format!(
            "option 'table' must be one of 'person', 'auction', 'bid', got '{other}'"
        ))),
        None => Err(SluiceError::Options(
            "missing required option 'table' for the nexmark source: 'person', 'auction' or 'bid'"
                .into(),
        )),
    }
}

fn col(name: &str, data_type: DataType) -> SourceColumn {
    SourceColumn {
        name: name.into(),
        data_type,
        nullable: false,
        metadata: None,
        pg_type: None,
    }
}

fn columns_of(options: &Options) -> Result<Vec<SourceColumn>> {
    Ok(table_columns(table_of(options)?))
}

fn table_columns(table: Table) -> Vec<SourceColumn> {
    let ts = || DataType::Timestamp(TimeUnit::Millisecond, None);
    match table {
        Table::Person => vec![
            col("id", DataType::Int64),
            col("name", DataType::Utf8),
            col("email_address", DataType::Utf8),
            col("credit_card", DataType::Utf8),
            col("city", DataType::Utf8),
            col("state", DataType::Utf8),
            col("date_time", ts()),
            col("extra", DataType::Utf8),
        ],
        Table::Auction => vec![
            col("id", DataType::Int64),
            col("item_name", DataType::Utf8),
            col("description", DataType::Utf8),
            col("initial_bid", DataType::Int64),
            col("reserve", DataType::Int64),
            col("date_time", ts()),
            col("expires", ts()),
            col("seller", DataType::Int64),
            col("category", DataType::Int64),
            col("extra", DataType::Utf8),
        ],
        Table::Bid => vec![
            col("auction", DataType::Int64),
            col("bidder", DataType::Int64),
            col("price", DataType::Int64),
            col("channel", DataType::Utf8),
            col("url", DataType::Utf8),
            col("date_time", ts()),
            col("extra", DataType::Utf8),
        ],
    }
}

#[derive(Debug, Clone)]
struct Nexmark {
    table: Table,
    events_per_second: u64,
    limit: Option<u64>,
    seed: u64,
    max_out_of_orderness: i64,
    start_time: Option<i64>,
}

fn source_factory(options: &mut Options, spec: &SourceSpec) -> Result<Arc<dyn SourceConnector>> {
    let table = table_of(options)?;
    options.take("table");
    let expected = table_columns(table);
    let got: Vec<(&str, &DataType)> = spec
        .columns
        .iter()
        .map(|c| (c.name.as_str(), &c.data_type))
        .collect();
    let want: Vec<(&str, &DataType)> = expected
        .iter()
        .map(|c| (c.name.as_str(), &c.data_type))
        .collect();
    if got != want {
        return Err(SluiceError::Plan(format!(
            "the nexmark {table:?} table has columns ({}); leave out the column list to get them",
            want.iter()
                .map(|(n, t)| format!("{n} {t}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let events_per_second = options
        .take_parsed::<u64>(
            "events_per_second",
            "a whole number (0 = as fast as possible)",
        )?
        .unwrap_or(10_000);
    let limit = options.take_parsed::<u64>("limit", "a whole number of events")?;
    let seed = options
        .take_parsed::<u64>("seed", "a whole number")?
        .unwrap_or(0);
    let max_out_of_orderness = match options.take("max_out_of_orderness") {
        Some(d) => crate::sql::parse_duration("max_out_of_orderness", &d)?.as_millis() as i64,
        None => 0,
    };
    let start_time = match options.take("start_time") {
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(&t)
                .map_err(|e| {
                    SluiceError::Options(format!(
                        "option 'start_time' must be an RFC 3339 time: {e}"
                    ))
                })?
                .timestamp_millis(),
        ),
        None => None,
    };
    Ok(Arc::new(Nexmark {
        table,
        events_per_second,
        limit,
        seed,
        max_out_of_orderness,
        start_time,
    }))
}

impl Table {
    /// The fraction of the stream's events that are of this table.
    fn share(self) -> f64 {
        let of_50 = match self {
            Table::Person => PERSON_PROPORTION,
            Table::Auction => AUCTION_PROPORTION,
            Table::Bid => TOTAL_PROPORTION - PERSON_PROPORTION - AUCTION_PROPORTION,
        };
        of_50 as f64 / TOTAL_PROPORTION as f64
    }
}

/// Which table global event `n` is of.
fn kind_of(n: u64) -> Table {
    let r = n % TOTAL_PROPORTION;
    if r < PERSON_PROPORTION {
        Table::Person
    } else if r < PERSON_PROPORTION + AUCTION_PROPORTION {
        Table::Auction
    } else {
        Table::Bid
    }
}

/// People created before event `n`.
fn people_before(n: u64) -> i64 {
    ((n / TOTAL_PROPORTION) * PERSON_PROPORTION + (n % TOTAL_PROPORTION).min(PERSON_PROPORTION))
        as i64
}

/// Auctions created before event `n`.
fn auctions_before(n: u64) -> i64 {
    let r = (n % TOTAL_PROPORTION)
        .saturating_sub(PERSON_PROPORTION)
        .min(AUCTION_PROPORTION);
    ((n / TOTAL_PROPORTION) * AUCTION_PROPORTION + r) as i64
}

/// A per-event random source: the same event always draws the same values.
fn rng_for(seed: u64, n: u64) -> fastrand::Rng {
    fastrand::Rng::with_seed(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn price(rng: &mut fastrand::Rng) -> i64 {
    // 10^(6x) as e^(6x ln 10): the same log-uniform draw, at a fraction of
    // `powf`'s cost (it was 7 % of a generated query's time).
    ((rng.f64() * 6.0 * std::f64::consts::LN_10).exp() * 100.0).round() as i64
}

fn text(rng: &mut fastrand::Rng, len: usize) -> String {
    let mut s = String::with_capacity(len);
    push_text(rng, len, &mut s);
    s
}

/// `len` random lowercase letters onto `out` (no allocation of its own).
/// Each letter is the next base-26 digit of a random 64-bit fraction, so
/// one draw gives 13 letters (26^13 < 2^64): a draw per letter was the
/// largest part of making a bid.
fn push_text(rng: &mut fastrand::Rng, len: usize, out: &mut String) {
    let (mut fraction, mut left) = (0u64, 0);
    for _ in 0..len {
        if left == 0 {
            fraction = rng.u64(..);
            left = 13;
        }
        let wide = u128::from(fraction) * 26;
        out.push(char::from(b'a' + (wide >> 64) as u8));
        fraction = wide as u64;
        left -= 1;
    }
}

/// `n` in decimal onto `out`, without the formatting machinery.
fn push_number(n: u32, out: &mut String) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// A recent person (or a hot one).
fn person_id(rng: &mut fastrand::Rng, n: u64, hot_ratio: u64) -> i64 {
    let people = people_before(n).max(1);
    if rng.u64(..hot_ratio) > 0 {
        ((people - 1) / hot_ratio as i64) * hot_ratio as i64 + FIRST_PERSON_ID
    } else {
        let lo = (people - ACTIVE_PEOPLE).max(0);
        rng.i64(lo..people) + FIRST_PERSON_ID
    }
}

impl Nexmark {
    /// Event time of global event `n`, before disorder.
    fn event_time(&self, start: i64, n: u64) -> i64 {
        let per_second = if self.events_per_second == 0 {
            10_000
        } else {
            self.events_per_second
        };
        // In u64 while it fits (a 128-bit division per row showed in profiles).
        match n.checked_mul(1000) {
            Some(ms) => start + (ms / per_second) as i64,
            None => start + (n as u128 * 1000 / per_second as u128) as i64,
        }
    }

    fn batch(&self, schema: &SchemaRef, start: i64, events: &[u64]) -> Result<RecordBatch> {
        let n = events.len();
        let mut times = Vec::with_capacity(n);
        let mut extra = StringBuilder::with_capacity(n, n * 8);
        let columns: Vec<ArrayRef> = match self.table {
            Table::Bid => {
                let (mut auction, mut bidder, mut prices) = (
                    Vec::with_capacity(n),
                    Vec::with_capacity(n),
                    Vec::with_capacity(n),
                );
                let mut channel = StringBuilder::with_capacity(n, n * 8);
                let mut url = StringBuilder::with_capacity(n, n * 72);
                // One buffer for every row's strings: no allocation per row.
                let mut s = String::with_capacity(96);
                for &e in events {
                    let mut rng = rng_for(self.seed, e);
                    let auctions = auctions_before(e).max(1);
                    auction.push(if rng.u64(..HOT_AUCTION_RATIO) > 0 {
                        ((auctions - 1) / HOT_AUCTION_RATIO as i64) * HOT_AUCTION_RATIO as i64
                            + FIRST_AUCTION_ID
                    } else {
                        rng.i64((auctions - IN_FLIGHT_AUCTIONS).max(0)..auctions) + FIRST_AUCTION_ID
                    });
                    bidder.push(person_id(&mut rng, e, HOT_BIDDER_RATIO));
                    prices.push(price(&mut rng));
                    let hot = rng.bool();
                    let c = if hot {
                        let c = rng.usize(..HOT_CHANNELS.len());
                        channel.append_value(HOT_CHANNELS[c]);
                        None
                    } else {
                        let c = rng.u32(..10_000);
                        s.clear();
                        s.push_str("channel-");
                        push_number(c, &mut s);
                        channel.append_value(&s);
                        Some(c)
                    };
                    s.clear();
                    s.push_str("https://www.nexmark.com/");
                    for _ in 0..3 {
                        push_text(&mut rng, 5, &mut s);
                        s.push('/');
                    }
                    s.push_str("item.htm?query=1");
                    if let Some(c) = c {
                        s.push_str("&channel_id=");
                        push_number(c, &mut s);
                    }
                    url.append_value(&s);
                    times.push(self.event_time(start, e) - self.disorder(&mut rng));
                    let len = rng.usize(..8);
                    s.clear();
                    push_text(&mut rng, len, &mut s);
                    extra.append_value(&s);
                }
                vec![
                    Arc::new(Int64Array::from(auction)),
                    Arc::new(Int64Array::from(bidder)),
                    Arc::new(Int64Array::from(prices)),
                    Arc::new(channel.finish()),
                    Arc::new(url.finish()),
                    Arc::new(TimestampMillisecondArray::from(times)),
                    Arc::new(extra.finish()),
                ]
            }
            Table::Auction => {
                let (mut id, mut initial, mut reserve, mut expires, mut seller, mut category) = (
                    Vec::with_capacity(n),
                    Vec::with_capacity(n),
                    Vec::with_capacity(n),
                    Vec::with_capacity(n),
                    Vec::with_capacity(n),
                    Vec::with_capacity(n),
                );
                let mut item = StringBuilder::with_capacity(n, n * 12);
                let mut description = StringBuilder::with_capacity(n, n * 24);
                for &e in events {
                    let mut rng = rng_for(self.seed, e);
                    id.push(auctions_before(e) + FIRST_AUCTION_ID);
                    item.append_value(text(&mut rng, 12));
                    description.append_value(text(&mut rng, 24));
                    let p = price(&mut rng);
                    initial.push(p);
                    reserve.push(p + price(&mut rng));
                    let t = self.event_time(start, e) - self.disorder(&mut rng);
                    times.push(t);
                    expires.push(t + rng.i64(1_000..20_000));
                    seller.push(person_id(&mut rng, e, HOT_SELLER_RATIO));
                    category.push(FIRST_CATEGORY_ID + rng.i64(0..NUM_CATEGORIES));
                    let len = rng.usize(..8);
                    extra.append_value(text(&mut rng, len));
                }
                vec![
                    Arc::new(Int64Array::from(id)),
                    Arc::new(item.finish()),
                    Arc::new(description.finish()),
                    Arc::new(Int64Array::from(initial)),
                    Arc::new(Int64Array::from(reserve)),
                    Arc::new(TimestampMillisecondArray::from(times)),
                    Arc::new(TimestampMillisecondArray::from(expires)),
                    Arc::new(Int64Array::from(seller)),
                    Arc::new(Int64Array::from(category)),
                    Arc::new(extra.finish()),
                ]
            }
            Table::Person => {
                let mut id = Vec::with_capacity(n);
                let (mut name, mut email, mut card, mut city, mut state) = (
                    StringBuilder::new(),
                    StringBuilder::new(),
                    StringBuilder::new(),
                    StringBuilder::new(),
                    StringBuilder::new(),
                );
                for &e in events {
                    let mut rng = rng_for(self.seed, e);
                    id.push(people_before(e) + FIRST_PERSON_ID);
                    name.append_value(format!(
                        "{} {}",
                        FIRST_NAMES[rng.usize(..FIRST_NAMES.len())],
                        LAST_NAMES[rng.usize(..LAST_NAMES.len())]
                    ));
                    email.append_value(format!("{}@{}.com", text(&mut rng, 7), text(&mut rng, 5)));
                    card.append_value(format!(
                        "{:04} {:04} {:04} {:04}",
                        rng.u32(..10_000),
                        rng.u32(..10_000),
                        rng.u32(..10_000),
                        rng.u32(..10_000)
                    ));
                    city.append_value(CITIES[rng.usize(..CITIES.len())]);
                    state.append_value(STATES[rng.usize(..STATES.len())]);
                    times.push(self.event_time(start, e) - self.disorder(&mut rng));
                    let len = rng.usize(..8);
                    extra.append_value(text(&mut rng, len));
                }
                vec![
                    Arc::new(Int64Array::from(id)),
                    Arc::new(name.finish()),
                    Arc::new(email.finish()),
                    Arc::new(card.finish()),
                    Arc::new(city.finish()),
                    Arc::new(state.finish()),
                    Arc::new(TimestampMillisecondArray::from(times)),
                    Arc::new(extra.finish()),
                ]
            }
        };
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }

    fn disorder(&self, rng: &mut fastrand::Rng) -> i64 {
        if self.max_out_of_orderness > 0 {
            rng.i64(0..=self.max_out_of_orderness)
        } else {
            0
        }
    }
}

#[async_trait]
impl SourceConnector for Nexmark {
    async fn run(&self, ctx: SourceContext) -> Result<()> {
        let start = self
            .start_time
            .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
        let mut started = Instant::now();
        let batch_events = if self.events_per_second == 0 {
            BATCH as u64
        } else {
            (self.events_per_second / 20).clamp(1, BATCH as u64)
        };
        let mut next: u64 = 0; // global event number
        let mut produced: u64 = 0; // events of this table
        let mut start = start;
        // Restored from a checkpoint: every event derives from its number,
        // so the stream carries on exactly where the checkpoint left it.
        if let Some(p) = ctx.restored_position("nexmark") {
            let field = |k: &str| p.get(k).and_then(|v| v.as_u64());
            if let (Some(n), Some(mine)) = (field("next"), field("produced")) {
                next = n;
                produced = mine;
                start = p.get("start").and_then(|v| v.as_i64()).unwrap_or(start);
                if self.events_per_second > 0 {
                    let ahead = Duration::from_secs_f64(n as f64 / self.events_per_second as f64);
                    started = Instant::now().checked_sub(ahead).unwrap_or(started);
                }
            }
        }
        if self.events_per_second > 0 {
            // This table's events due but not generated yet are its backlog
            // (when the pipeline cannot keep up with the pace). The figures
            // count this run's events, so the schedule starts at the
            // restored position.
            let ahead = Duration::from_secs_f64(next as f64 / self.events_per_second as f64);
            ctx.metrics.set_schedule(
                started + ahead,
                self.events_per_second as f64 * self.table.share(),
                self.limit.map(|l| l.saturating_sub(produced)),
            );
        }
        // Unpaced, batches are made on the blocking pool, a few at a time,
        // and emitted in order: generating is most of a simple query's
        // work, and every event derives from its number alone.
        let ahead = if self.events_per_second == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
        } else {
            1
        };
        let mut making = VecDeque::with_capacity(ahead);
        loop {
            while making.len() < ahead
                && self.limit.is_none_or(|l| produced < l)
                && !ctx.shutdown.is_cancelled()
            {
                // The next events of the stream, of which ours are kept.
                let mut mine = Vec::with_capacity(batch_events as usize);
                let end = next + batch_events;
                for e in next..end {
                    if kind_of(e) == self.table {
                        if self
                            .limit
                            .is_some_and(|l| produced + mine.len() as u64 >= l)
                        {
                            break;
                        }
                        mine.push(e);
                    }
                }
                next = end;
                if self.events_per_second > 0 {
                    let due = Duration::from_secs_f64(next as f64 / self.events_per_second as f64);
                    let wait = due.saturating_sub(started.elapsed());
                    if !wait.is_zero() {
                        tokio::select! {
                            _ = ctx.shutdown.cancelled() => return Ok(()),
                            _ = tokio::time::sleep(wait) => {}
                        }
                    }
                }
                if mine.is_empty() {
                    continue;
                }
                produced += mine.len() as u64;
                let (generator, schema) = (self.clone(), ctx.schema.clone());
                let batch =
                    tokio::task::spawn_blocking(move || generator.batch(&schema, start, &mine));
                let position =
                    serde_json::json!({"next": next, "produced": produced, "start": start});
                making.push_back((batch, position));
            }
            let Some((batch, position)) = making.pop_front() else {
                return Ok(());
            };
            if ctx.shutdown.is_cancelled() {
                return Ok(());
            }
            let batch = batch
                .await
                .map_err(|e| SluiceError::Internal(format!("nexmark generator: {e}")))??;
            if ctx
                .emit_batch_at(batch, "nexmark", Some(position))
                .await?
                .is_err()
            {
                return Ok(());
            }
        }
    }

    fn is_bounded(&self) -> bool {
        self.limit.is_some()
    }
}
