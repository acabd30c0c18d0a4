package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Changes implements Store. On PostgreSQL one connection LISTENs to the
// channel every change-serial transaction NOTIFYs at commit; when it
// drops, it is opened again with a backoff (1 s doubling to 30 s), and
// the callers' polling covers the gap. On SQLite it returns nil: the
// processes on one machine poll the serial, which costs one indexed read.
func (s *sqlStore) Changes(ctx context.Context) <-chan struct{} {
	if s.url == "" {
		return nil
	}
	ch := make(chan struct{}, 1)
	go func() {
		defer close(ch)
		backoff := time.Second
		for ctx.Err() == nil {
			err := s.listen(ctx, ch, &backoff)
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("store: change notifications lost; polling until they are back", "err", err, "retry", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
		}
	}()
	return ch
}

// listen holds one LISTEN connection until it fails or ctx ends, sending
// on ch (without blocking: one pending value stands for any number of
// changes) for every notification, and once when it starts, since changes
// may have been missed while it was not listening.
func (s *sqlStore) listen(ctx context.Context, ch chan<- struct{}, backoff *time.Duration) error {
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx) // the connection is done with either way
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgChannel); err != nil {
		return err
	}
	*backoff = time.Second
	signal := func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	signal()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		signal()
	}
}
