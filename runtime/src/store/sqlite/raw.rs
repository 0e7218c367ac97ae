//! Lean reads stepped on the caller's thread. The driver hands each row from its worker
//! thread to the caller's as values of its own, a copy per column: for the lean reads,
//! many small rows with little work each, that was most of the time. Here the read takes
//! the connection's handle (the driver's worker waits meanwhile) and steps the statement
//! itself, lending each event's text straight out of SQLite's row to the fold.
//!
//! This is the crate's one module of `unsafe` code: calls into the SQLite library the
//! driver links, on a connection the caller holds exclusively.

use std::ffi::{CStr, c_int};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use libsqlite3_sys as ffi;

use crate::store::StoreError;
use crate::store::sql::LeanRow;

/// A statement prepared on a connection handle that the caller holds locked for the
/// statement's whole life; finalized when dropped. `'a` is the life of the text bound to it.
pub(super) struct Statement<'a> {
    db: NonNull<ffi::sqlite3>,
    stmt: NonNull<ffi::sqlite3_stmt>,
    bound: PhantomData<&'a str>,
}

impl<'a> Statement<'a> {
    /// Prepares `sql` on `db`.
    ///
    /// # Safety
    ///
    /// `db` is an open connection that no other code uses until the statement is dropped
    /// (the caller holds its `LockedSqliteHandle` for that long).
    pub(super) unsafe fn prepare(
        db: NonNull<ffi::sqlite3>,
        sql: &CStr,
    ) -> Result<Self, StoreError> {
        let mut stmt = ptr::null_mut();
        // SAFETY: `db` is open and ours (the caller's contract); `sql` is NUL-terminated,
        // so -1 reads it up to the NUL; `stmt` is a valid place for the result.
        let code = unsafe {
            ffi::sqlite3_prepare_v2(db.as_ptr(), sql.as_ptr(), -1, &mut stmt, ptr::null_mut())
        };
        match NonNull::new(stmt) {
            Some(stmt) if code == ffi::SQLITE_OK => Ok(Self {
                db,
                stmt,
                bound: PhantomData,
            }),
            // A statement prepared despite an error code, or none: nothing to finalize
            // beyond the former, which `finalize` accepts.
            stmt => {
                let error = failure(db, code);
                if let Some(stmt) = stmt {
                    // SAFETY: the statement was prepared on `db` and is not used again.
                    unsafe { ffi::sqlite3_finalize(stmt.as_ptr()) };
                }
                Err(error)
            }
        }
    }

    /// Binds an integer to parameter `index` (from 1).
    pub(super) fn bind_int(&mut self, index: c_int, value: i64) -> Result<(), StoreError> {
        // SAFETY: the statement is live; SQLite checks the index.
        let code = unsafe { ffi::sqlite3_bind_int64(self.stmt.as_ptr(), index, value) };
        self.ok(code)
    }

    /// Binds `value` to parameter `index` (from 1), without a copy: `'a` keeps it alive
    /// as long as the statement.
    pub(super) fn bind_text(&mut self, index: c_int, value: &'a str) -> Result<(), StoreError> {
        let len = c_int::try_from(value.len())
            .map_err(|_| StoreError::backend(std::io::Error::other("a bound text beyond 2 GiB")))?;
        // SAFETY: the statement is live; `value` outlives it ('a), so SQLITE_STATIC (no
        // copy, no destructor) is sound; the length is given, so no NUL is needed.
        let code = unsafe {
            ffi::sqlite3_bind_text(
                self.stmt.as_ptr(),
                index,
                value.as_ptr().cast(),
                len,
                ffi::SQLITE_STATIC(),
            )
        };
        self.ok(code)
    }

    /// The next row, or `None` after the last. The row borrows the statement: its text
    /// lives until the next step.
    pub(super) fn step(&mut self) -> Result<Option<RawRow<'_>>, StoreError> {
        // SAFETY: the statement is live and used by this thread alone.
        match unsafe { ffi::sqlite3_step(self.stmt.as_ptr()) } {
            ffi::SQLITE_ROW => Ok(Some(RawRow {
                stmt: self.stmt,
                row: PhantomData,
            })),
            ffi::SQLITE_DONE => Ok(None),
            code => Err(failure(self.db, code)),
        }
    }

    fn ok(&self, code: c_int) -> Result<(), StoreError> {
        if code == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(failure(self.db, code))
        }
    }
}

impl Drop for Statement<'_> {
    fn drop(&mut self) {
        // SAFETY: the statement was prepared on `db`, which is still held, and is not used
        // again. The result repeats the last step's error, already reported.
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}

/// The row a statement is on. Its text is SQLite's, valid until the statement steps again,
/// which the borrow of the statement rules out.
pub(super) struct RawRow<'s> {
    stmt: NonNull<ffi::sqlite3_stmt>,
    row: PhantomData<&'s mut ()>,
}

impl<'s> RawRow<'s> {
    /// An integer column; a value of another type is an error, never converted.
    pub(super) fn int(&self, index: c_int) -> Result<i64, String> {
        // SAFETY: the statement is on a row; SQLite checks the index (NULL past the end).
        let kind = unsafe { ffi::sqlite3_column_type(self.stmt.as_ptr(), index) };
        if kind != ffi::SQLITE_INTEGER {
            return Err(format!("stored as {}, not an integer", type_name(kind)));
        }
        // SAFETY: as above; the value is an integer, so nothing is converted.
        Ok(unsafe { ffi::sqlite3_column_int64(self.stmt.as_ptr(), index) })
    }

    /// A text column, borrowed from the row; a value of another type, or text that is not
    /// UTF-8, is an error.
    pub(super) fn text(&self, index: c_int) -> Result<&'s str, String> {
        // SAFETY: the statement is on a row; SQLite checks the index.
        let kind = unsafe { ffi::sqlite3_column_type(self.stmt.as_ptr(), index) };
        if kind != ffi::SQLITE_TEXT {
            return Err(format!("stored as {}, not text", type_name(kind)));
        }
        // SAFETY: the value is text, so asking for it converts nothing and the pointer
        // stays valid until the statement steps, resets or is finalized, none of which can
        // happen while this row borrows it ('s). `column_bytes` comes after `column_text`,
        // as SQLite asks, and counts the bytes without the terminating NUL.
        let bytes = unsafe {
            let text = ffi::sqlite3_column_text(self.stmt.as_ptr(), index);
            let len = ffi::sqlite3_column_bytes(self.stmt.as_ptr(), index);
            match (NonNull::new(text.cast_mut()), usize::try_from(len)) {
                (Some(text), Ok(len)) => std::slice::from_raw_parts(text.as_ptr(), len),
                // An empty text may come back as a null pointer.
                _ => &[],
            }
        };
        std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))
    }
}

/// SQLite's name for a storage class.
fn type_name(kind: c_int) -> &'static str {
    match kind {
        ffi::SQLITE_INTEGER => "an integer",
        ffi::SQLITE_FLOAT => "a real number",
        ffi::SQLITE_TEXT => "text",
        ffi::SQLITE_BLOB => "a blob",
        _ => "NULL",
    }
}

/// The error SQLite reports for `code` on `db`.
fn failure(db: NonNull<ffi::sqlite3>, code: c_int) -> StoreError {
    // SAFETY: `db` is open; the message is SQLite's, NUL-terminated, copied at once.
    let message = unsafe {
        let message = ffi::sqlite3_errmsg(db.as_ptr());
        if message.is_null() {
            String::new()
        } else {
            CStr::from_ptr(message).to_string_lossy().into_owned()
        }
    };
    StoreError::backend(std::io::Error::other(format!(
        "SQLite error {code}: {message}"
    )))
}

impl<'s> LeanRow<'s> for RawRow<'s> {
    fn int(&self, index: usize) -> Result<i64, String> {
        RawRow::int(self, column(index))
    }

    fn text(&self, index: usize) -> Result<&'s str, String> {
        RawRow::text(self, column(index))
    }
}

/// A column index as SQLite takes it; one past any column reads as NULL, an error.
fn column(index: usize) -> c_int {
    c_int::try_from(index).unwrap_or(c_int::MAX)
}
