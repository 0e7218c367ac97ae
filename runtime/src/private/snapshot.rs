//! Snapshot states and fingerprints.

use serde::Serialize;
use serde::de::DeserializeOwned;

// Bounded by serde only: a missing `Snapshot` derive is reported once, at the
// fingerprint, not again at each helper.
/// Serialises a snapshot state.
pub fn encode_snapshot<T: Serialize>(state: &T) -> Result<String, serde_json::Error> {
    serde_json::to_string(state)
}

/// Deserialises a snapshot state.
pub fn decode_snapshot<T: DeserializeOwned>(state: &str) -> Result<T, serde_json::Error> {
    serde_json::from_str(state)
}

/// Combines the state type's fingerprint with the aggregate's (FNV-1a over both), at
/// compile time.
pub const fn fingerprint(state: u64, aggregate: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = [state.to_le_bytes(), aggregate.to_le_bytes()];
    let mut i = 0;
    while i < 16 {
        hash ^= bytes[i / 8][i % 8] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}
