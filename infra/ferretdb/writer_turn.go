// Added to FerretDB's database/sql utilities (package fsql) by infra/store.py when it builds FerretDB.

package fsql

import (
	"context"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/logging"
)

// writerState lets the write transactions of one database take turns, and checkpoints its WAL in the background.
//
// SQLite runs one write transaction per database at a time. A transaction that finds another in
// progress is put to sleep by SQLite's busy handler (1, 2, 5, 10, 15 ms and more) however soon the
// other ends; waiting for the turn here instead starts it the moment the previous one commits.
// The transaction that commits past the WAL's checkpoint threshold also copies the WAL into the
// database and syncs both files before it returns, which would hold the turn meanwhile; the
// checkpoints run in the background instead (PASSIVE: they never block a reader or a writer).
type writerState struct {
	turn   chan struct{}
	closed chan struct{}
	once   sync.Once
}

func newWriterState() *writerState {
	return &writerState{turn: make(chan struct{}, 1), closed: make(chan struct{})}
}

// wait returns once it is the caller's turn to write, with the function that ends it.
func (w *writerState) wait(ctx context.Context) (func(), error) {
	select {
	case w.turn <- struct{}{}:
		return func() { <-w.turn }, nil
	case <-ctx.Done():
		return nil, lazyerrors.Error(ctx.Err())
	}
}

func (w *writerState) stop() {
	w.once.Do(func() { close(w.closed) })
}

// checkpointEvery is how often CheckpointInBackground checkpoints.
const checkpointEvery = time.Second

// CheckpointInBackground checkpoints the database's WAL every checkpointEvery until the database is closed.
func (db *DB) CheckpointInBackground() {
	go func() {
		ticker := time.NewTicker(checkpointEvery)
		defer ticker.Stop()

		for {
			select {
			case <-db.ws.closed:
				return
			case <-ticker.C:
			}

			var busy, log, checkpointed int64

			row := db.sqlDB.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
			if err := row.Scan(&busy, &log, &checkpointed); err != nil {
				select {
				case <-db.ws.closed:
					return
				default:
					db.l.Warn("WAL checkpoint failed", logging.Error(err))
				}
			}
		}
	}()
}
