//! Course cohorts with a limited number of seats, an enrollment deadline and a waitlist:
//! students enroll (or join the waitlist when the cohort is full), withdraw (the first on
//! the waitlist is promoted into the freed seat), and enrollment closes. A cohort is never
//! overbooked and takes no enrollment after its deadline or once closed. Three
//! projections read it: cohorts by instructor, recent withdrawals and seat changes by
//! week.
//!
//! Run it with `cargo run --example cohorts [path/to/cohorts.db]`.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use annals::SqliteStore;
use annals::chrono::{DateTime, Datelike, TimeZone, Utc};
use annals::prelude::*;
use annals::projection::{Documents, EventMeta, Runner};

/// A cohort of a course was scheduled.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
pub struct CohortScheduled {
    /// The course.
    pub course: String,
    /// Who teaches it.
    pub instructor: String,
    /// How many students it takes.
    pub seats: u32,
    /// The last moment to enroll.
    pub deadline: DateTime<Utc>,
}

/// A student took a seat.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
pub struct StudentEnrolled {
    /// The student.
    pub student: String,
    /// Who teaches the cohort, for views by instructor.
    pub instructor: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// The cohort was full: the student waits for a seat.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
pub struct StudentWaitlisted {
    /// The student.
    pub student: String,
    /// Who teaches the cohort.
    pub instructor: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A student gave up their seat or their place on the waitlist.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
pub struct StudentWithdrew {
    /// The student.
    pub student: String,
    /// Who teaches the cohort.
    pub instructor: String,
    /// Whether they had a seat (else they were waiting).
    pub had_seat: bool,
    /// When.
    pub at: DateTime<Utc>,
}

/// The first student on the waitlist took a freed seat.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
pub struct StudentPromoted {
    /// The student.
    pub student: String,
    /// Who teaches the cohort.
    pub instructor: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Enrollment closed; the waitlist is dropped.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
pub struct EnrollmentClosed {
    /// Who teaches the cohort.
    pub instructor: String,
}

/// Schedules a cohort; the command that starts its stream.
pub struct Schedule {
    /// The course.
    pub course: String,
    /// Who teaches it.
    pub instructor: String,
    /// How many students it takes (at least one).
    pub seats: u32,
    /// The last moment to enroll.
    pub deadline: DateTime<Utc>,
}

/// Enrolls a student at a moment (the caller's clock: decisions stay deterministic).
pub struct Enroll {
    /// The student.
    pub student: String,
    /// When they ask.
    pub at: DateTime<Utc>,
}

/// Withdraws a student from their seat or the waitlist.
pub struct Withdraw {
    /// The student.
    pub student: String,
    /// When they ask.
    pub at: DateTime<Utc>,
}

/// Closes enrollment.
pub struct Close;

/// Why a cohort refused a command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CohortError {
    /// `Schedule` on a cohort that exists.
    #[error("the cohort is already scheduled")]
    AlreadyScheduled,
    /// A command on a cohort that was never scheduled.
    #[error("no such cohort")]
    NotScheduled,
    /// A cohort of no seats.
    #[error("a cohort needs at least one seat")]
    NoSeats,
    /// An enrollment after the deadline.
    #[error("enrollment ended at {deadline}")]
    PastDeadline {
        /// The deadline.
        deadline: DateTime<Utc>,
    },
    /// An enrollment once closed.
    #[error("enrollment is closed")]
    Closed,
    /// The student is enrolled or waiting already.
    #[error("{0} is already enrolled or waiting")]
    AlreadyIn(String),
    /// The student is neither enrolled nor waiting.
    #[error("{0} is not in this cohort")]
    NotIn(String),
}

/// A cohort's state, from its events.
#[derive(Debug, Default)]
pub struct Cohort {
    scheduled: Option<CohortScheduled>,
    enrolled: Vec<String>,
    waitlist: VecDeque<String>,
    closed: bool,
}

impl Cohort {
    fn scheduled(&self) -> Result<&CohortScheduled, CohortError> {
        self.scheduled.as_ref().ok_or(CohortError::NotScheduled)
    }
}

/// What `Enroll` decides: a seat, or the waitlist.
pub enum Enrolled {
    /// A seat.
    Seat(StudentEnrolled),
    /// The waitlist.
    Waiting(StudentWaitlisted),
}

#[aggregate(category = "cohort")]
impl Cohort {
    #[command(create)]
    fn schedule(&self, cmd: &Schedule) -> Result<CohortScheduled, CohortError> {
        if self.scheduled.is_some() {
            return Err(CohortError::AlreadyScheduled);
        }
        if cmd.seats == 0 {
            return Err(CohortError::NoSeats);
        }
        Ok(CohortScheduled {
            course: cmd.course.clone(),
            instructor: cmd.instructor.clone(),
            seats: cmd.seats,
            deadline: cmd.deadline,
        })
    }

    #[command]
    fn enroll(&self, cmd: &Enroll) -> Result<Vec<CohortEvent>, CohortError> {
        let cohort = self.scheduled()?;
        if self.closed {
            return Err(CohortError::Closed);
        }
        if cmd.at > cohort.deadline {
            return Err(CohortError::PastDeadline {
                deadline: cohort.deadline,
            });
        }
        if self.enrolled.contains(&cmd.student) || self.waitlist.contains(&cmd.student) {
            return Err(CohortError::AlreadyIn(cmd.student.clone()));
        }
        // Never overbooked: a seat only while one is free.
        let event = if (self.enrolled.len() as u32) < cohort.seats {
            CohortEvent::from(StudentEnrolled {
                student: cmd.student.clone(),
                instructor: cohort.instructor.clone(),
                at: cmd.at,
            })
        } else {
            CohortEvent::from(StudentWaitlisted {
                student: cmd.student.clone(),
                instructor: cohort.instructor.clone(),
                at: cmd.at,
            })
        };
        Ok(vec![event])
    }

    #[command]
    fn withdraw(&self, cmd: &Withdraw) -> Result<Vec<CohortEvent>, CohortError> {
        let cohort = self.scheduled()?;
        let had_seat = self.enrolled.contains(&cmd.student);
        if !had_seat && !self.waitlist.contains(&cmd.student) {
            return Err(CohortError::NotIn(cmd.student.clone()));
        }
        let mut events = vec![CohortEvent::from(StudentWithdrew {
            student: cmd.student.clone(),
            instructor: cohort.instructor.clone(),
            had_seat,
            at: cmd.at,
        })];
        // The freed seat goes to the first who waits, in the same append.
        if let (true, false, Some(next)) = (had_seat, self.closed, self.waitlist.front()) {
            events.push(CohortEvent::from(StudentPromoted {
                student: next.clone(),
                instructor: cohort.instructor.clone(),
                at: cmd.at,
            }));
        }
        Ok(events)
    }

    #[command]
    fn close(&self, _: &Close) -> Result<Option<EnrollmentClosed>, CohortError> {
        let cohort = self.scheduled()?;
        Ok((!self.closed).then(|| EnrollmentClosed {
            instructor: cohort.instructor.clone(),
        }))
    }

    #[apply]
    fn scheduled_(&mut self, e: &CohortScheduled) {
        self.scheduled = Some(e.clone());
    }

    #[apply]
    fn enrolled_(&mut self, e: &StudentEnrolled) {
        self.enrolled.push(e.student.clone());
    }

    #[apply]
    fn waitlisted(&mut self, e: &StudentWaitlisted) {
        self.waitlist.push_back(e.student.clone());
    }

    #[apply]
    fn withdrew(&mut self, e: &StudentWithdrew) {
        self.enrolled.retain(|s| *s != e.student);
        self.waitlist.retain(|s| *s != e.student);
    }

    #[apply]
    fn promoted(&mut self, e: &StudentPromoted) {
        self.waitlist.retain(|s| *s != e.student);
        self.enrolled.push(e.student.clone());
    }

    #[apply]
    fn closed_(&mut self, _: &EnrollmentClosed) {
        self.closed = true;
        self.waitlist.clear();
    }
}

/// Each instructor's cohorts: seats, who holds them, and how many wait.
#[derive(Default, Serialize, Deserialize, Debug, PartialEq)]
pub struct InstructorCohorts {
    /// By cohort stream id.
    pub cohorts: BTreeMap<String, CohortLine>,
}

/// One cohort, as its instructor sees it.
#[derive(Default, Serialize, Deserialize, Debug, PartialEq)]
pub struct CohortLine {
    /// The course.
    pub course: String,
    /// Seats in all.
    pub seats: u32,
    /// Seats taken.
    pub taken: u32,
    /// Students waiting.
    pub waiting: u32,
    /// Whether enrollment is closed.
    pub closed: bool,
}

#[projection(name = "cohorts_by_instructor", of = Cohort)]
impl InstructorCohorts {
    #[handle(key = e.instructor)]
    fn scheduled(&mut self, e: &CohortScheduled, meta: &EventMeta) {
        let line = self.cohorts.entry(meta.stream_id.clone()).or_default();
        line.course = e.course.clone();
        line.seats = e.seats;
    }

    #[handle(key = e.instructor)]
    fn enrolled(&mut self, e: &StudentEnrolled, meta: &EventMeta) {
        self.line(meta).taken += 1;
    }

    #[handle(key = e.instructor)]
    fn waitlisted(&mut self, e: &StudentWaitlisted, meta: &EventMeta) {
        self.line(meta).waiting += 1;
    }

    #[handle(key = e.instructor)]
    fn withdrew(&mut self, e: &StudentWithdrew, meta: &EventMeta) {
        let line = self.line(meta);
        if e.had_seat {
            line.taken -= 1;
        } else {
            line.waiting -= 1;
        }
    }

    #[handle(key = e.instructor)]
    fn promoted(&mut self, e: &StudentPromoted, meta: &EventMeta) {
        let line = self.line(meta);
        line.taken += 1;
        line.waiting -= 1;
    }

    #[handle(key = e.instructor)]
    fn closed(&mut self, e: &EnrollmentClosed, meta: &EventMeta) {
        let line = self.line(meta);
        line.closed = true;
        line.waiting = 0;
    }
}

impl InstructorCohorts {
    fn line(&mut self, meta: &EventMeta) -> &mut CohortLine {
        self.cohorts.entry(meta.stream_id.clone()).or_default()
    }
}

/// The latest withdrawals across every cohort, newest first, at most ten.
#[derive(Default, Serialize, Deserialize, Debug, PartialEq)]
pub struct RecentWithdrawals {
    /// (cohort, student, when).
    pub latest: VecDeque<(String, String, DateTime<Utc>)>,
}

#[projection(name = "recent_withdrawals")]
impl RecentWithdrawals {
    #[handle(key = "all")]
    fn withdrew(&mut self, e: &StudentWithdrew, meta: &EventMeta) {
        self.latest
            .push_front((meta.stream_id.clone(), e.student.clone(), e.at));
        self.latest.truncate(10);
    }
}

/// Seats taken and given back per ISO week, across every cohort.
#[derive(Default, Serialize, Deserialize, Debug, PartialEq)]
pub struct WeeklySeats {
    /// Seats taken (enrollments and promotions).
    pub taken: u32,
    /// Seats given back.
    pub freed: u32,
}

fn week(at: &DateTime<Utc>) -> String {
    let week = at.iso_week();
    format!("{}-W{:02}", week.year(), week.week())
}

#[projection(name = "seat_changes_by_week")]
impl WeeklySeats {
    #[handle(key = week(&e.at))]
    fn enrolled(&mut self, e: &StudentEnrolled) {
        self.taken += 1;
    }

    #[handle(key = week(&e.at))]
    fn promoted(&mut self, e: &StudentPromoted) {
        self.taken += 1;
    }

    #[handle(key = week(&e.at))]
    fn withdrew(&mut self, e: &StudentWithdrew) {
        if e.had_seat {
            self.freed += 1;
        }
    }
}

fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, d, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).map_or_else(
        || std::env::temp_dir().join(format!("annals-cohorts-{}.db", std::process::id())),
        std::path::PathBuf::from,
    );
    let store = SqliteStore::open(&path).await?;
    let cohorts = Repository::<Cohort, _>::new(store.clone());
    let running = Runner::new(store.clone()).all().start();

    cohorts
        .execute(
            "rust-1",
            Schedule {
                course: "Rust".into(),
                instructor: "grace".into(),
                seats: 2,
                deadline: day(10),
            },
        )
        .await?;
    let enroll = |student: &str, d| Enroll {
        student: student.into(),
        at: day(d),
    };
    for (student, d) in [("ann", 2), ("bo", 3), ("cy", 4), ("di", 9)] {
        cohorts.execute("rust-1", enroll(student, d)).await?;
    }
    // Full: cy and di wait. Too late: the deadline has passed.
    let late = cohorts.execute("rust-1", enroll("ed", 11)).await;
    let late = late.err().and_then(|e| e.rejection().cloned());
    assert_eq!(late, Some(CohortError::PastDeadline { deadline: day(10) }));

    // bo withdraws: cy, first on the waitlist, takes the seat in the same append.
    let done = cohorts
        .execute(
            "rust-1",
            Withdraw {
                student: "bo".into(),
                at: day(5),
            },
        )
        .await?;
    println!("bo withdrew: {} events recorded", done.events.len());
    assert_eq!(done.events.len(), 2);
    let cohort = cohorts.load("rust-1").await?;
    assert_eq!(
        cohort.state().enrolled,
        ["ann", "cy"],
        "never more than two seats"
    );
    assert_eq!(cohort.state().waitlist, ["di"]);

    let closed = cohorts.execute("rust-1", Close).await?;
    let after_close = cohorts.execute("rust-1", enroll("fay", 6)).await;
    let after_close = after_close.err().and_then(|e| e.rejection().cloned());
    assert_eq!(after_close, Some(CohortError::Closed));

    running
        .wait_for(closed.last_checkpoint, Duration::from_secs(5))
        .await?;
    let by_instructor = Documents::<InstructorCohorts, _>::new(store.clone());
    let grace = by_instructor
        .get("grace")
        .await?
        .ok_or("no cohorts for grace")?;
    let line = &grace.cohorts["cohort-rust-1"];
    println!(
        "grace: {} of {} seats taken, {} waiting, closed: {}",
        line.taken, line.seats, line.waiting, line.closed
    );
    assert_eq!(
        (line.taken, line.seats, line.waiting, line.closed),
        (2, 2, 0, true)
    );

    let recent = Documents::<RecentWithdrawals, _>::new(store.clone())
        .get("all")
        .await?
        .ok_or("no withdrawals")?;
    println!("recent withdrawals: {:?}", recent.latest);
    assert_eq!(recent.latest[0].1, "bo");

    let weeks = Documents::<WeeklySeats, _>::new(store.clone())
        .list(None, 10)
        .await?;
    for (week, seats) in &weeks.items {
        println!("{week}: {} seats taken, {} freed", seats.taken, seats.freed);
    }
    let taken: u32 = weeks.items.iter().map(|(_, s)| s.taken).sum();
    let freed: u32 = weeks.items.iter().map(|(_, s)| s.freed).sum();
    assert_eq!((taken, freed), (3, 1));

    running.shutdown().await?;
    store.close().await;
    Ok(())
}
