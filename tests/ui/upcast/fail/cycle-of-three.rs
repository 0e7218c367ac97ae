//! A longer loop: v1 names v3 as its previous version, v3 names v2, v2 names v1.
use annals::prelude::*;

#[derive(Event, Serialize, Deserialize)]
#[event(name = "Noted", version = 1, previous = Noted)]
struct NotedV1;

#[derive(Event, Serialize, Deserialize)]
#[event(name = "Noted", version = 2, previous = NotedV1)]
struct NotedV2;

#[derive(Event, Serialize, Deserialize)]
#[event(version = 3, previous = NotedV2)]
struct Noted;

impl From<Noted> for NotedV1 {
    fn from(_: Noted) -> Self {
        NotedV1
    }
}

impl From<NotedV1> for NotedV2 {
    fn from(_: NotedV1) -> Self {
        NotedV2
    }
}

impl From<NotedV2> for Noted {
    fn from(_: NotedV2) -> Self {
        Noted
    }
}

fn main() {}
