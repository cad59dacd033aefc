//! The tour list: filters, sort orders and pages over `tour_sessions`, each filter on an index of
//! its own (started_at, status+started_at, property_id+started_at, device_key+started_at), and
//! one tour by our UUID or the headset's own id.

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OptionalExtension};

use super::super::StoreError;

/// Which tours a list, a count or an export takes. Every field narrows; `None`/empty takes all.
#[derive(Clone, Debug, Default)]
pub struct TourFilter {
    /// Started at or after (unix ms).
    pub from_ms: Option<i64>,
    /// Started before (unix ms).
    pub to_ms: Option<i64>,
    pub statuses: Vec<String>,
    /// A device key, or a headset's name (any letter case).
    pub headset: Option<String>,
    pub property_id: Option<String>,
    pub customer_id: Option<String>,
    /// A piece of the UUID, the headset's id, the device key, the headset's name, the customer
    /// or property id (any letter case).
    pub search: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    StartedAt,
    Duration,
    Events,
    Headset,
}

#[derive(Clone, Copy, Debug)]
pub struct TourOrder {
    pub key: SortKey,
    pub descending: bool,
}

/// One tour as the dashboard shows it (times unix ms).
#[derive(Clone, Debug)]
pub struct TourRow {
    /// The row id, for reading the tour's events.
    pub id: i64,
    pub uuid: String,
    pub external_id: Option<String>,
    pub device_key: String,
    pub headset_name: Option<String>,
    pub status: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub last_event_at: i64,
    pub duration_ms: Option<i64>,
    pub event_count: i64,
    pub customer_id: Option<String>,
    pub property_id: Option<String>,
    pub device_type: Option<String>,
    pub time_warnings: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "t.id, t.uuid, t.external_id, t.device_key, h.name, t.status, t.started_at, t.ended_at, t.last_event_at,
     t.duration_ms, t.event_count, t.customer_id, t.property_id, t.device_type, t.time_warnings, t.created_at, t.updated_at";
const WITH_NAMES: &str = "tour_sessions t LEFT JOIN headsets h ON h.device_key = t.device_key";

fn tour_row(r: &rusqlite::Row) -> rusqlite::Result<TourRow> {
    Ok(TourRow {
        id: r.get(0)?,
        uuid: r.get(1)?,
        external_id: r.get(2)?,
        device_key: r.get(3)?,
        headset_name: r.get(4)?,
        status: r.get(5)?,
        started_at: r.get(6)?,
        ended_at: r.get(7)?,
        last_event_at: r.get(8)?,
        duration_ms: r.get(9)?,
        event_count: r.get(10)?,
        customer_id: r.get(11)?,
        property_id: r.get(12)?,
        device_type: r.get(13)?,
        time_warnings: r.get(14)?,
        created_at: r.get(15)?,
        updated_at: r.get(16)?,
    })
}

/// The filter as SQL over `tour_sessions t`, with its parameters; `device` narrows to one
/// device key.
fn where_clause(filter: &TourFilter, device: Option<&str>) -> (String, Vec<Value>) {
    let mut terms: Vec<String> = vec!["1".into()];
    let mut values: Vec<Value> = Vec::new();
    let mut bind = |value: Value| {
        values.push(value);
        format!("?{}", values.len())
    };
    if let Some(device) = device {
        terms.push(format!("t.device_key = {}", bind(device.to_string().into())));
    }
    if let Some(from) = filter.from_ms {
        terms.push(format!("t.started_at >= {}", bind(from.into())));
    }
    if let Some(to) = filter.to_ms {
        terms.push(format!("t.started_at < {}", bind(to.into())));
    }
    if !filter.statuses.is_empty() {
        let list: Vec<String> = filter.statuses.iter().map(|s| bind(s.clone().into())).collect();
        terms.push(format!("t.status IN ({})", list.join(", ")));
    }
    if let Some(headset) = &filter.headset {
        let p = bind(headset.clone().into());
        terms.push(format!("t.device_key IN (SELECT {p} UNION SELECT device_key FROM headsets WHERE name = {p} COLLATE NOCASE)"));
    }
    if let Some(property) = &filter.property_id {
        terms.push(format!("t.property_id = {}", bind(property.clone().into())));
    }
    if let Some(customer) = &filter.customer_id {
        terms.push(format!("t.customer_id = {}", bind(customer.clone().into())));
    }
    if let Some(search) = &filter.search {
        let escaped = search.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        let p = bind(format!("%{escaped}%").into());
        let like = |column: &str| format!("{column} LIKE {p} ESCAPE '\\'");
        terms.push(format!(
            "({} OR {} OR {} OR {} OR {} OR t.device_key IN (SELECT device_key FROM headsets WHERE {}))",
            like("t.uuid"),
            like("t.external_id"),
            like("t.device_key"),
            like("t.customer_id"),
            like("t.property_id"),
            like("name"),
        ));
    }
    (terms.join(" AND "), values)
}

/// ORDER BY for `order`; ties go newest first, then by row id, so pages never overlap. The
/// headset order is a walk over the headsets (see [`headsets_in_order`]), each newest first.
fn order_clause(order: TourOrder) -> String {
    let dir = if order.descending { "DESC" } else { "ASC" };
    match order.key {
        SortKey::StartedAt => format!("t.started_at {dir}, t.id {dir}"),
        SortKey::Duration => format!("t.duration_ms {dir} NULLS LAST, t.started_at DESC, t.id DESC"),
        SortKey::Events => format!("t.event_count {dir}, t.started_at DESC, t.id DESC"),
        SortKey::Headset => "t.started_at DESC, t.id DESC".into(),
    }
}

/// How many tours the filter takes (of one device, when given).
fn count_of(conn: &Connection, filter: &TourFilter, device: Option<&str>) -> Result<i64, StoreError> {
    let (condition, values) = where_clause(filter, device);
    let sql = format!("SELECT count(*) FROM tour_sessions t WHERE {condition}");
    Ok(conn.prepare_cached(&sql)?.query_row(params_from_iter(values), |r| r.get(0))?)
}

/// How many tours the filter takes.
pub fn count(conn: &Connection, filter: &TourFilter) -> Result<i64, StoreError> {
    count_of(conn, filter, None)
}

/// Every device key that has tours, by the headset's name (else its key; any letter case), then
/// key. Found by stepping through the device index, one seek per device: a showroom has a few
/// headsets and many tours, so sorting tours by headset is a walk over the headsets rather
/// than a sort of every tour.
fn headsets_in_order(conn: &Connection, descending: bool) -> Result<Vec<String>, StoreError> {
    let mut statement = conn.prepare_cached(
        "WITH RECURSIVE keys(k) AS (
             SELECT min(device_key) FROM tour_sessions
             UNION ALL SELECT (SELECT min(device_key) FROM tour_sessions WHERE device_key > k) FROM keys WHERE k IS NOT NULL)
         SELECT k FROM keys LEFT JOIN headsets h ON h.device_key = k WHERE k IS NOT NULL
         ORDER BY coalesce(h.name, k) COLLATE NOCASE, k",
    )?;
    let mut keys: Vec<String> = statement.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    if descending {
        keys.reverse();
    }
    Ok(keys)
}

/// A page of the tours the filter takes, in order (of one device, when given). The page's row
/// ids are found first (on the indexes alone where the filter and order allow), then only those
/// rows are read: a deep offset costs index steps.
fn page_of(
    conn: &Connection,
    filter: &TourFilter,
    device: Option<&str>,
    order: TourOrder,
    limit: i64,
    offset: i64,
) -> Result<Vec<TourRow>, StoreError> {
    let (condition, mut values) = where_clause(filter, device);
    let order_by = order_clause(order);
    let sql = format!(
        "SELECT {COLUMNS} FROM {WITH_NAMES} WHERE t.id IN (
             SELECT t.id FROM tour_sessions t WHERE {condition} ORDER BY {order_by} LIMIT ?{} OFFSET ?{})
         ORDER BY {order_by}",
        values.len() + 1,
        values.len() + 2
    );
    values.extend([Value::from(limit), Value::from(offset)]);
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(params_from_iter(values), tour_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One page of tours.
pub fn page(conn: &Connection, filter: &TourFilter, order: TourOrder, limit: i64, offset: i64) -> Result<Vec<TourRow>, StoreError> {
    if order.key != SortKey::Headset {
        return page_of(conn, filter, None, order, limit, offset);
    }
    let (mut rows, mut skip) = (Vec::new(), offset);
    for device in headsets_in_order(conn, order.descending)? {
        let wanted = limit - rows.len() as i64;
        if wanted <= 0 {
            break;
        }
        let tours = count_of(conn, filter, Some(&device))?;
        if skip >= tours {
            skip -= tours;
            continue;
        }
        rows.extend(page_of(conn, filter, Some(&device), order, wanted, skip)?);
        skip = 0;
    }
    Ok(rows)
}

/// Every tour the filter takes, in order, to `row` until it answers `false` (an export).
pub fn each(
    conn: &Connection,
    filter: &TourFilter,
    order: TourOrder,
    mut row: impl FnMut(&TourRow) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let devices = match order.key {
        SortKey::Headset => headsets_in_order(conn, order.descending)?.into_iter().map(Some).collect(),
        _ => vec![None],
    };
    let mut more = true;
    for device in devices {
        let (condition, values) = where_clause(filter, device.as_deref());
        let sql = format!("SELECT {COLUMNS} FROM {WITH_NAMES} WHERE {condition} ORDER BY {}", order_clause(order));
        let mut statement = conn.prepare_cached(&sql)?;
        let mut rows = statement.query(params_from_iter(values))?;
        super::each(&mut rows, tour_row, |t| {
            more = row(&t)?;
            Ok(more)
        })?;
        if !more {
            break;
        }
    }
    Ok(())
}

/// A tour by our UUID (any letter case) or by the headset's own id (case-insensitive).
pub fn by_reference(conn: &Connection, reference: &str) -> Result<Option<TourRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM {WITH_NAMES} WHERE t.uuid = lower(?1)
         UNION ALL SELECT {COLUMNS} FROM {WITH_NAMES} WHERE t.external_id = ?1 COLLATE NOCASE LIMIT 1"
    );
    Ok(conn.prepare_cached(&sql)?.query_row([reference], tour_row).optional()?)
}

/// Tours in progress (on the partial index of active tours).
pub fn active_count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.prepare_cached("SELECT count(*) FROM tour_sessions WHERE status = 'active'")?.query_row([], |r| r.get(0))?)
}
