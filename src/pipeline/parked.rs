//! Which rooms the inbox reader parked, and where their events left in the inbox are.
//!
//! A parked room's events stay in the inbox; the reader lists their inbox ids (8 bytes each) so
//! that it reads them back by id, which needs no index on the inbox: the ack of a transaction
//! then writes its rows and nothing else. The lists are bounded in total; a room parked past the
//! bound keeps only where it stopped and is read back by scanning the inbox from there.

use std::collections::{HashMap, VecDeque};

use ruma::{OwnedRoomId, RoomId};

/// Inbox ids listed at most, over all parked rooms (2 MiB).
pub(super) const LISTED_MAX: usize = 262_144;

/// Where a parked room's events left in the inbox are.
#[derive(Debug)]
enum Left {
    /// Every one of them, by inbox id, oldest first.
    Listed(VecDeque<i64>),
    /// Too many to list: they are the room's events from this inbox id on.
    From(i64),
}

/// What to read back for a parked room that has space again.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ReadBack {
    /// These inbox items, by id, oldest first.
    Ids(Vec<i64>),
    /// The room's events from this inbox id on, scanning the inbox.
    From(i64),
}

/// The parked rooms of the reader.
#[derive(Debug)]
pub(super) struct ParkedRooms {
    rooms: HashMap<OwnedRoomId, Left>,
    /// Ids in all `Left::Listed` lists.
    listed: usize,
    /// Bound on `listed`.
    max: usize,
}

impl ParkedRooms {
    /// No room parked; at most `max` ids listed.
    pub(super) fn new(max: usize) -> Self {
        Self {
            rooms: HashMap::new(),
            listed: 0,
            max,
        }
    }

    /// Whether `room` is parked.
    pub(super) fn contains(&self, room: &RoomId) -> bool {
        self.rooms.contains_key(room)
    }

    /// Ids listed now, over all rooms.
    #[cfg(test)]
    pub(super) fn listed(&self) -> usize {
        self.listed
    }

    /// Parks `room` at inbox item `id`, the first of its events not queued.
    pub(super) fn park(&mut self, room: &RoomId, id: i64) {
        if let Some(Left::Listed(ids)) = self.rooms.remove(room) {
            self.listed -= ids.len();
        }
        let left = if self.listed < self.max {
            self.listed += 1;
            Left::Listed(VecDeque::from([id]))
        } else {
            Left::From(id)
        };
        self.rooms.insert(room.to_owned(), left);
    }

    /// Another event of `room`, inbox item `id`, left in the inbox. `false` when the room is not
    /// parked (the event is to be queued).
    pub(super) fn leave(&mut self, room: &RoomId, id: i64) -> bool {
        let Some(left) = self.rooms.get_mut(room) else {
            return false;
        };
        if let Left::Listed(ids) = left {
            if self.listed < self.max {
                ids.push_back(id);
                self.listed += 1;
            } else {
                // The bound is reached: the room is read back by scanning from its first id.
                let from = ids.front().copied().unwrap_or(id);
                self.listed -= ids.len();
                *left = Left::From(from);
            }
        }
        true
    }

    /// Takes up to `limit` of `room`'s events to read back; `None` when it is not parked. A
    /// listed room is unparked once its list is taken whole: its later events come with the
    /// main scan. A scanned room stays parked until [`ParkedRooms::caught_up`].
    pub(super) fn take(&mut self, room: &RoomId, limit: usize) -> Option<ReadBack> {
        match self.rooms.get_mut(room)? {
            Left::Listed(ids) => {
                let n = ids.len().min(limit.max(1));
                let taken: Vec<i64> = ids.drain(..n).collect();
                self.listed -= taken.len();
                if ids.is_empty() {
                    self.rooms.remove(room);
                }
                Some(ReadBack::Ids(taken))
            }
            Left::From(from) => Some(ReadBack::From(*from)),
        }
    }

    /// Parks `room` again with `ids` (taken, not queued) ahead of what is still left of it.
    pub(super) fn put_back(&mut self, room: &RoomId, ids: &[i64]) {
        if ids.is_empty() {
            return;
        }
        match self.rooms.get_mut(room) {
            Some(Left::From(from)) => *from = (*from).min(ids[0]),
            Some(Left::Listed(left)) => {
                for &id in ids.iter().rev() {
                    left.push_front(id);
                }
                self.listed += ids.len();
            }
            None => {
                self.listed += ids.len();
                self.rooms
                    .insert(room.to_owned(), Left::Listed(ids.iter().copied().collect()));
            }
        }
    }

    /// A scanned room was read back up to (not including) inbox id `next`.
    pub(super) fn scanned_to(&mut self, room: &RoomId, next: i64) {
        if let Some(Left::From(from)) = self.rooms.get_mut(room) {
            *from = next;
        }
    }

    /// `room` has nothing left in the inbox: unparked.
    pub(super) fn caught_up(&mut self, room: &RoomId) {
        if let Some(Left::Listed(ids)) = self.rooms.remove(room) {
            self.listed -= ids.len();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn room(n: u8) -> OwnedRoomId {
        OwnedRoomId::try_from(format!("!r{n}:example.org")).unwrap()
    }

    #[test]
    fn listed_rooms_give_back_their_ids_in_order_and_unpark() {
        let (a, b) = (room(1), room(2));
        let mut parked = ParkedRooms::new(100);
        assert!(!parked.leave(&a, 1), "not parked: to be queued");
        parked.park(&a, 3);
        for id in [5, 8, 9] {
            assert!(parked.leave(&a, id));
        }
        assert!(!parked.leave(&b, 6));
        assert_eq!(parked.listed(), 4);
        assert_eq!(parked.take(&a, 2), Some(ReadBack::Ids(vec![3, 5])));
        assert!(parked.contains(&a));
        // One did not fit after all: it goes back ahead of the rest.
        parked.put_back(&a, &[5]);
        assert_eq!(parked.take(&a, 10), Some(ReadBack::Ids(vec![5, 8, 9])));
        assert!(!parked.contains(&a), "taken whole: unparked");
        assert_eq!(parked.listed(), 0);
        assert_eq!(parked.take(&a, 10), None);
    }

    #[test]
    fn past_the_bound_a_room_is_scanned_from_its_first_left_event() {
        let (a, b, c) = (room(1), room(2), room(3));
        let mut parked = ParkedRooms::new(3);
        parked.park(&a, 10);
        parked.leave(&a, 11);
        parked.park(&b, 12);
        assert_eq!(parked.listed(), 3);
        // Full: a's next event turns a into a scanned room, its list freed.
        assert!(parked.leave(&a, 13));
        assert_eq!(parked.listed(), 1);
        assert_eq!(parked.take(&a, 5), Some(ReadBack::From(10)));
        parked.scanned_to(&a, 12);
        assert_eq!(parked.take(&a, 5), Some(ReadBack::From(12)));
        parked.put_back(&a, &[11]);
        assert_eq!(parked.take(&a, 5), Some(ReadBack::From(11)));
        parked.caught_up(&a);
        assert!(!parked.contains(&a));
        // Room left under the bound again: listed.
        parked.park(&c, 20);
        assert!(parked.leave(&c, 21));
        assert_eq!(parked.listed(), 3);
        assert_eq!(parked.take(&c, 5), Some(ReadBack::Ids(vec![20, 21])));
        assert_eq!(parked.take(&b, 5), Some(ReadBack::Ids(vec![12])));
        assert_eq!(parked.listed(), 0);
    }

    #[test]
    fn a_full_bound_parks_new_rooms_as_scanned() {
        let (a, b) = (room(1), room(2));
        let mut parked = ParkedRooms::new(1);
        parked.park(&a, 1);
        parked.park(&b, 2);
        assert_eq!(parked.take(&b, 5), Some(ReadBack::From(2)));
        // Parking a listed room again replaces its list.
        parked.park(&a, 4);
        assert_eq!(parked.listed(), 1);
        assert_eq!(parked.take(&a, 5), Some(ReadBack::Ids(vec![4])));
    }
}
