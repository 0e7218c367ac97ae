//! The settings of a PostgreSQL store: where, which schema, how many connections and
//! group-commit writers.

/// Group-commit writers unless [`PostgresOptions::group_writers`] says otherwise.
pub(super) const DEFAULT_GROUP_WRITERS: usize = 2;

/// Settings for [`PostgresStore::connect_with`].
///
/// ```
/// use annals::PostgresOptions;
/// let options = PostgresOptions::new("postgres://postgres@127.0.0.1:5432/test")
///     .schema("billing")
///     .max_connections(16);
/// # drop(options);
/// ```
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    pub(super) url: String,
    pub(super) schema: String,
    pub(super) max_connections: u32,
    pub(super) group_writers: usize,
}

impl PostgresOptions {
    /// Options for the server at `url`: schema `public`, 10 connections, group commit
    /// with 2 writers.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: "public".to_owned(),
            max_connections: 10,
            group_writers: DEFAULT_GROUP_WRITERS,
        }
    }

    /// The schema holding annals' tables (created if missing). Lowercase letters, digits
    /// and `_`, starting with a letter or `_`, at most 48 characters.
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The size of each pool: annals' own, and the one [`PostgresStore::pool`] hands
    /// out for your queries, which opens no connection until you use it.
    #[must_use]
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Group commit: how many appends may be written at once (at least 1), each writer on
    /// a connection of its own besides the pool's. Appends that arrive while every writer
    /// is busy wait and then go together, many streams in one statement and one commit.
    /// Fewer writers make bigger groups; the default, 2, keeps one group filling while the
    /// other commits.
    ///
    /// ```
    /// use annals::PostgresOptions;
    /// let options = PostgresOptions::new("postgres://postgres@127.0.0.1:5432/test").group_writers(4);
    /// # drop(options);
    /// ```
    #[must_use]
    pub fn group_writers(mut self, writers: usize) -> Self {
        self.group_writers = writers.max(1);
        self
    }
}
