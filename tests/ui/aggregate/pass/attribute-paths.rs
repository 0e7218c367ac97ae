//! The macros by path, without the prelude: `#[annals::apply]` and `#[annals::command]`
//! inside `#[annals::aggregate]` are removed like the bare names.
#![deny(warnings)]

#[derive(annals::Event, serde::Serialize, serde::Deserialize, Debug, Clone)]
struct Pinged {
    n: u32,
}

struct Ping(u32);

#[derive(Default)]
struct Pinger {
    total: u32,
}

#[annals::aggregate]
impl Pinger {
    #[annals::command(create)]
    fn ping(&self, cmd: &Ping) -> Pinged {
        Pinged { n: cmd.0 }
    }

    #[::annals::apply]
    fn pinged(&mut self, e: &Pinged) {
        self.total += e.n;
    }
}

fn main() {
    let pinger = annals::testing::AggregateTest::<Pinger>::given([Pinged { n: 1 }])
        .when(Ping(2))
        .then_expect_events([Pinged { n: 2 }]);
    assert_eq!(pinger.total, 3);
    assert_eq!(<Pinger as annals::Aggregate>::CATEGORY, "pinger");
    assert!(<Pinger as annals::Handle<Ping>>::CREATES);
}
