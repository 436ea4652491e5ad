//! A pool of connections that hands one out untested and takes it back only
//! when its user says the command completed.
//!
//! Why not sqlx's own pool: it sends a round trip of its own (a `Sync`
//! ping) every time a connection is returned, and by default another
//! before it is handed out, so a one-statement check cost three round
//! trips. Here a connection is trusted while
//! it works: one whose command failed, timed out or was cancelled by its
//! caller may hold half an answer, and is dropped instead of returned.

use std::future::Future;

pub(crate) struct Pool<C> {
    idle: parking_lot::Mutex<Vec<C>>,
    slots: tokio::sync::Semaphore,
}

/// A connection out of its [`Pool`]; back in it only through [`Lease::done`].
pub(crate) struct Lease<'p, C> {
    pool: &'p Pool<C>,
    conn: C,
    _slot: tokio::sync::SemaphorePermit<'p>,
}

impl<C> Pool<C> {
    /// A pool of at most `size` open connections.
    pub fn new(size: usize) -> Pool<C> {
        Pool {
            idle: parking_lot::Mutex::new(Vec::new()),
            slots: tokio::sync::Semaphore::new(size),
        }
    }

    /// An idle connection, or a new one from `open` when none is idle and
    /// fewer than the pool's size are open; waits for one otherwise (the
    /// caller bounds the wait).
    pub async fn lease<E, F: Future<Output = Result<C, E>>>(
        &self,
        open: impl FnOnce() -> F,
    ) -> Result<Lease<'_, C>, E> {
        let slot = self
            .slots
            .acquire()
            .await
            .expect("the pool's semaphore is never closed");
        let idle = self.idle.lock().pop();
        let conn = match idle {
            Some(c) => c,
            None => open().await?,
        };
        Ok(Lease {
            pool: self,
            conn,
            _slot: slot,
        })
    }
}

impl<C> Lease<'_, C> {
    /// The command completed: the connection is fit for the next one.
    pub fn done(self) {
        self.pool.idle.lock().push(self.conn);
    }
}

impl<C> std::ops::Deref for Lease<'_, C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.conn
    }
}

impl<C> std::ops::DerefMut for Lease<'_, C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_completed_connections_return() {
        let pool: Pool<u32> = Pool::new(2);
        let opened = std::sync::atomic::AtomicU32::new(0);
        let open =
            || async { Ok::<_, ()>(opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) };
        let a = pool.lease(open).await.unwrap();
        assert_eq!(*a, 0);
        a.done();
        let b = pool.lease(open).await.unwrap();
        assert_eq!(*b, 0, "the completed connection is reused");
        drop(b); // failed: not returned
        let c = pool.lease(open).await.unwrap();
        assert_eq!(*c, 1, "a dropped lease's connection is gone");
        let d = pool.lease(open).await.unwrap();
        let third = tokio::time::timeout(std::time::Duration::from_millis(50), pool.lease(open));
        assert!(third.await.is_err(), "no more than the pool's size at once");
        d.done();
        c.done();
    }
}
