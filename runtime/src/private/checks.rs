//! What `#[derive(Event)]` and `#[aggregate]` check event types with. Every rule is a
//! constant assertion with a message that names the types and versions as the user wrote
//! them, or a probe that answers a question about a type without failing: no error the
//! user sees names anything of this module.

use core::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::event::{DecodeErrorKind, PreviousEvent};

/// `<Same<A, B>>::SAME` is `true` when `A` and `B` are one type: the inherent constant
/// exists only then, and takes precedence over the trait's default.
pub struct Same<A: ?Sized, B: ?Sized>(PhantomData<fn(&A) -> &B>);

/// The fallback for [`Same`].
pub trait NotSame {
    /// Two types, unless the inherent constant says otherwise.
    const SAME: bool = false;
}
impl<A: ?Sized, B: ?Sized> NotSame for Same<A, B> {}
impl<A: ?Sized> Same<A, A> {
    /// One type.
    pub const SAME: bool = true;
}

/// The link before `T` in its upcast chain.
pub type Before<T> = <T as PreviousEvent>::Before;

/// Implemented for an event type by the derive of the type that names it as `previous`:
/// it is an old version, and an aggregate must apply the newest one of its chain (whose
/// decoding upcasts the old one). One old version has one successor.
pub trait Superseded {}

/// `<SupersededProbe<T>>::SUPERSEDED` is `true` when `T: Superseded`; see [`Same`].
pub struct SupersededProbe<T: ?Sized>(PhantomData<T>);

/// The fallback for [`SupersededProbe`].
pub trait NotSuperseded {
    /// Not superseded, unless the inherent constant says otherwise.
    const SUPERSEDED: bool = false;
}
impl<T: ?Sized> NotSuperseded for SupersededProbe<T> {}
impl<T: ?Sized + Superseded> SupersededProbe<T> {
    /// Superseded.
    pub const SUPERSEDED: bool = true;
}

/// `<SerializeProbe<T>>::SERIALIZES` is `true` when `T: Serialize`, and
/// `<SerializeProbe<T>>::encode` serialises it; see [`Same`]. The derive reports a current
/// event type without `Serialize` at the derive; the aggregate encodes through this probe,
/// so the same mistake is not reported again at every `#[apply]`.
pub struct SerializeProbe<T: ?Sized>(PhantomData<T>);

/// The fallback for [`SerializeProbe`].
pub trait NotSerializable<T: ?Sized> {
    /// Not serialisable, unless the inherent constant says otherwise.
    const SERIALIZES: bool = false;

    /// Unreachable in a program that compiles: the derive rejects the type.
    fn encode(_: &T) -> Result<Box<RawValue>, serde_json::Error> {
        Err(serde::ser::Error::custom(
            "the event type does not implement `Serialize`",
        ))
    }
}
impl<T: ?Sized> NotSerializable<T> for SerializeProbe<T> {}
impl<T: ?Sized + Serialize> SerializeProbe<T> {
    /// Serialisable.
    pub const SERIALIZES: bool = true;

    /// Serialises one event.
    pub fn encode(event: &T) -> Result<Box<RawValue>, serde_json::Error> {
        serde_json::value::to_raw_value(event)
    }
}

/// `<DeserializeProbe<T>>::DESERIALIZES` is `true` when `T` deserialises, and
/// `<DeserializeProbe<T>>::decode` reads it from a payload; see [`Same`]. Every event type
/// is read back, so the derive reports one that does not deserialise, at the derive; the
/// decoding goes through this probe, so the mistake is not reported again at every use.
pub struct DeserializeProbe<T>(PhantomData<T>);

/// The fallback for [`DeserializeProbe`].
pub trait NotDeserializable<T> {
    /// Not deserialisable, unless the inherent constant says otherwise.
    const DESERIALIZES: bool = false;

    /// Unreachable in a program that compiles: the derive rejects the type.
    fn decode(_: &str) -> Result<T, serde_json::Error> {
        Err(serde::de::Error::custom(
            "the event type does not implement `Deserialize`",
        ))
    }
}
impl<T> NotDeserializable<T> for DeserializeProbe<T> {}
impl<T: DeserializeOwned> DeserializeProbe<T> {
    /// Deserialisable.
    pub const DESERIALIZES: bool = true;

    /// Reads one event from its JSON payload.
    pub fn decode(payload: &str) -> Result<T, serde_json::Error> {
        serde_json::from_str(payload)
    }
}

/// The error of an upcaster to `T` that reads the stored record, on a read without one.
pub fn record_needed<T>() -> DecodeErrorKind {
    DecodeErrorKind::RecordNeeded {
        upcast_to: core::any::type_name::<T>(),
    }
}

/// A message built at compile time, for a constant assertion: pieces of text and numbers,
/// up to 1024 bytes (a longer one is cut at a character boundary).
pub struct Message {
    bytes: [u8; 1024],
    len: usize,
}

impl Message {
    /// An empty message.
    pub const fn new() -> Self {
        Self {
            bytes: [0; 1024],
            len: 0,
        }
    }

    /// Appends `text`, whole or not at all.
    pub const fn text(mut self, text: &str) -> Self {
        let bytes = text.as_bytes();
        if self.len + bytes.len() > self.bytes.len() {
            return self;
        }
        let mut i = 0;
        while i < bytes.len() {
            self.bytes[self.len] = bytes[i];
            self.len += 1;
            i += 1;
        }
        self
    }

    /// Appends `n` in decimal.
    pub const fn number(self, mut n: u32) -> Self {
        let mut digits = [0u8; 10];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        match core::str::from_utf8(digits.split_at(start).1) {
            Ok(text) => self.text(text),
            Err(_) => self,
        }
    }

    /// The message.
    pub const fn as_str(&self) -> &str {
        match core::str::from_utf8(self.bytes.split_at(self.len).0) {
            Ok(text) => text,
            Err(_) => "",
        }
    }
}

impl Default for Message {
    fn default() -> Self {
        Self::new()
    }
}
