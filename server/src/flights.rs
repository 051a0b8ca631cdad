//! Work in flight per key, across threads (single flight): the first comer leads it, the
//! others wait for it to end — backend cold reads of one key (D28), a bucket made from its
//! cluster record (D34).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

pub struct Flights<K> {
    inflight: Mutex<HashMap<K, Arc<event_listener::Event>>>,
}

impl<K> Default for Flights<K> {
    fn default() -> Self {
        Flights { inflight: Mutex::new(HashMap::new()) }
    }
}

/// What a comer to `key` does.
pub enum Flight<K: Eq + Hash> {
    /// Lead it; the guard ends the flight (and wakes the waiters) when dropped.
    Lead(FlightGuard<K>),
    /// Someone else leads it: wait for this, then look again.
    Wait(event_listener::EventListener),
}

pub struct FlightGuard<K: Eq + Hash> {
    flights: Arc<Flights<K>>,
    key: K,
}

impl<K: Eq + Hash + Clone> Flights<K> {
    pub fn join(self: &Arc<Self>, key: K) -> Flight<K> {
        let mut m = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        match m.get(&key) {
            Some(ev) => Flight::Wait(ev.listen()),
            None => {
                m.insert(key.clone(), Arc::new(event_listener::Event::new()));
                Flight::Lead(FlightGuard { flights: self.clone(), key })
            }
        }
    }

    /// The end of `key`'s flight to wait for, if one is in the air (never leads one).
    pub fn in_flight(&self, key: &K) -> Option<event_listener::EventListener> {
        self.inflight.lock().unwrap_or_else(|p| p.into_inner()).get(key).map(|ev| ev.listen())
    }
}

impl<K: Eq + Hash> Drop for FlightGuard<K> {
    fn drop(&mut self) {
        let ev = self.flights.inflight.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.key);
        if let Some(ev) = ev {
            ev.notify(usize::MAX);
        }
    }
}
