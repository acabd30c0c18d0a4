package imapintake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/moatmail/moat/internal/config"
	"github.com/moatmail/moat/internal/intake"
)

// ImportOnce reads every message in the folder of mb once, as it is when
// the pass begins: it stores each message's reports through sink and moves
// the message to the processed folder, or to the failed folder when it
// holds no report or is larger than Opts.MaxMessageBytes (listed in the
// stats, not an error). password is used when mb has none. log receives
// one line per message; nil discards.
//
// It stops at the first failure of the connection (ErrConnect, ErrLogin,
// ErrConnection) or of a folder (ErrFolder), or when ctx ends; the stats
// then say what was done until then. A message the sink fails to store
// stays in the folder, listed in Errors, and the pass goes on (unless a
// whole batch failed: the store is down); ErrSink then ends it. Every
// message not moved stays in the folder: run it again.
func ImportOnce(ctx context.Context, log *slog.Logger, mb config.IMAPURL, password string, sink Sink, opts Opts) (Stats, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	if mb.Password != "" {
		password = mb.Password
	}
	tc, err := tlsConfig(mb, opts.CAFile)
	if err != nil {
		return Stats{}, err
	}
	s, err := connect(ctx, mb, password, tc, opts)
	if err != nil {
		return Stats{}, err
	}
	defer s.logout()
	var st Stats
	m := &memo{}
	m.reset(s.uidValidity)
	err = s.pass(ctx, log, sink, m, &st)
	return st, err
}

// pass processes the messages in the selected folder, in UID order, in
// batches: fetch (BODY.PEEK[]), hand each message to the sink, then move
// the answered ones. The moves of a batch come only after the sink's
// answers for it.
func (s *session) pass(ctx context.Context, log *slog.Logger, sink Sink, m *memo, st *Stats) error {
	var uids []imap.UID
	err := s.within(ctx, s.opts.CommandTimeout, "search", func() error {
		// Messages flagged \Deleted are on their way out (a user's delete,
		// or a COPY fallback whose expunge did not happen): they are not
		// read again.
		data, err := s.c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagDeleted}}, nil).Wait()
		if err == nil {
			uids = data.AllUIDs()
		}
		return err
	})
	if err != nil {
		return err
	}
	// Forget the answered messages that left the folder otherwise.
	present := make(map[imap.UID]bool, len(uids))
	for _, uid := range uids {
		present[uid] = true
	}
	for uid := range m.moves {
		if !present[uid] {
			delete(m.moves, uid)
		}
	}
	if len(uids) == 0 {
		return nil
	}
	slices.Sort(uids)
	sizes, err := s.sizes(ctx, uids)
	if err != nil {
		return err
	}
	var sinkErr error // the first temporary failure of the sink
	for len(uids) > 0 {
		if err := ctx.Err(); err != nil {
			return errors.Join(err, sinkErr)
		}
		var batch []imap.UID
		var toProcessed, toFailed imap.UIDSet
		var bytes int64
	fill:
		for len(uids) > 0 && len(batch) < s.opts.BatchMessages {
			uid := uids[0]
			size, ok := sizes[uid]
			switch toProc, known := m.moves[uid]; {
			case known && toProc:
				toProcessed.AddNum(uid)
			case known:
				toFailed.AddNum(uid)
			case !ok:
				// Gone since the search (expunged by another client).
			case size > s.opts.MaxMessageBytes:
				st.Messages++
				why := fmt.Sprintf("message of %d bytes, larger than the limit of %d", size, s.opts.MaxMessageBytes)
				log.Warn("imap message too large, moved to the failed folder unread", "mailbox", s.mb.String(), "uid", uid, "size", size)
				st.Errors = append(st.Errors, Issue{UID: uint32(uid), Reason: why})
				m.moves[uid] = false
				toFailed.AddNum(uid)
			default:
				if len(batch) > 0 && bytes+size > s.opts.BatchBytes {
					break fill
				}
				batch = append(batch, uid)
				bytes += size
			}
			uids = uids[1:]
		}
		failed, answered, err := s.batch(ctx, log, sink, m, st, batch, &toProcessed, &toFailed)
		if failed != nil && sinkErr == nil {
			sinkErr = failed
		}
		if err != nil {
			return errors.Join(err, sinkErr)
		}
		if failed != nil && !answered {
			// Not one message of the batch could be stored: the store is
			// down, not a message at fault. Later batches would fail too.
			return sinkErr
		}
		// Some messages failed beside others that were stored: those stay
		// in the folder, and the pass goes on (one message the store
		// refuses must not hold up the ones after it).
	}
	return sinkErr
}

// sizes returns the RFC822.SIZE of each message.
func (s *session) sizes(ctx context.Context, uids []imap.UID) (map[imap.UID]int64, error) {
	sizes := make(map[imap.UID]int64, len(uids))
	err := s.within(ctx, s.opts.CommandTimeout, "fetch sizes", func() error {
		msgs, err := s.c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, RFC822Size: true}).Collect()
		for _, msg := range msgs {
			if msg.UID != 0 {
				sizes[msg.UID] = msg.RFC822Size
			}
		}
		return err
	})
	return sizes, err
}

// batch fetches the messages of batch, hands them to the sink together
// and moves every answered message, with those already in toProcessed and
// toFailed. It returns the first temporary failure of the sink (those
// messages stay), whether the sink answered any message of the batch, and
// a failure of the connection or of a move.
func (s *session) batch(ctx context.Context, log *slog.Logger, sink Sink, m *memo, st *Stats, batch []imap.UID,
	toProcessed, toFailed *imap.UIDSet) (sinkErr error, answered bool, err error) {
	if len(batch) > 0 {
		bodies, err := s.fetch(ctx, batch)
		if err != nil {
			// Nothing of this batch was handed over: it is read again.
			return nil, false, err
		}
		type answer struct {
			out intake.MailOutcome
			err error
		}
		answers := make([]answer, len(batch))
		var wg sync.WaitGroup
		for i, uid := range batch {
			body, ok := bodies[uid]
			if !ok {
				answers[i].err = errGone
				continue
			}
			st.Messages++
			if body == nil {
				answers[i].out.TooLarge = fmt.Sprintf("message larger than the limit of %d bytes", s.opts.MaxMessageBytes)
				continue
			}
			detail := fmt.Sprintf("%s uidvalidity=%d uid=%d", s.mb.String(), s.uidValidity, uid)
			wg.Go(func() {
				// The answer is awaited even when ctx ends: the commit of
				// a report handed over is not abandoned half-way.
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.StoreTimeout)
				defer cancel()
				answers[i].out, answers[i].err = sink.StoreMail(sctx, body, detail)
			})
		}
		wg.Wait()
		for i, uid := range batch {
			a := answers[i]
			l := log.With("mailbox", s.mb.String(), "uid", uid)
			switch {
			case errors.Is(a.err, errGone):
			case a.err != nil:
				l.Warn("imap message not stored, left in the folder", "err", a.err)
				st.Errors = append(st.Errors, Issue{UID: uint32(uid), Reason: a.err.Error()})
				if sinkErr == nil {
					sinkErr = fmt.Errorf("%w: uid %d: %w", ErrSink, uid, a.err)
				}
			case a.out.TooLarge != "":
				answered = true
				l.Warn("imap message too large, moved to the failed folder", "why", a.out.TooLarge)
				st.Errors = append(st.Errors, Issue{UID: uint32(uid), Reason: a.out.TooLarge})
				m.moves[uid] = false
				toFailed.AddNum(uid)
			case a.out.NotReport != "":
				answered = true
				l.Info("imap message holds no report, moved to the failed folder", "why", a.out.NotReport)
				st.NotReports = append(st.NotReports, Issue{UID: uint32(uid), Reason: a.out.NotReport})
				m.moves[uid] = false
				toFailed.AddNum(uid)
			default:
				answered = true
				l.Info("imap message stored", "reports", a.out.Stored, "invalid", a.out.Invalid, "duplicates", a.out.Duplicates)
				st.Reports += a.out.Stored
				st.Invalid += a.out.Invalid
				st.Duplicates += a.out.Duplicates
				m.moves[uid] = true
				toProcessed.AddNum(uid)
			}
		}
	}
	for _, mv := range []struct {
		uids   imap.UIDSet
		folder string
		count  *int
	}{{*toProcessed, s.processed, &st.Processed}, {*toFailed, s.failed, &st.Failed}} {
		if len(mv.uids) == 0 {
			continue
		}
		if err := s.move(ctx, mv.uids, mv.folder); err != nil {
			return sinkErr, answered, err
		}
		nums, _ := mv.uids.Nums()
		for _, uid := range nums {
			delete(m.moves, uid)
		}
		*mv.count += len(nums)
	}
	return sinkErr, answered, nil
}

// readLiteral reads a message body of at most limit bytes, or skips a
// larger one (nil). The whole literal is read either way: one cut short
// (the connection broke; the client then reports io.EOF) is an error.
func readLiteral(lit imap.LiteralReader, limit int64) ([]byte, error) {
	size := lit.Size()
	if size > limit {
		n, err := io.Copy(io.Discard, lit)
		if err == nil && n != size {
			err = fmt.Errorf("message body cut after %d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
		}
		return nil, err
	}
	b, err := io.ReadAll(lit)
	if err == nil && int64(len(b)) != size {
		err = fmt.Errorf("message body cut after %d of %d bytes: %w", len(b), size, io.ErrUnexpectedEOF)
	}
	return b, err
}

// errGone marks a message expunged by another client since the search.
var errGone = errors.New("imapintake: message gone")

// fetch reads the messages of uids with BODY.PEEK[] (RFC 3501 §6.4.5: no
// \Seen), each up to MaxMessageBytes: a larger body (the server's size
// was wrong) gives a nil entry. A message missing from the answer was
// expunged meanwhile.
func (s *session) fetch(ctx context.Context, uids []imap.UID) (map[imap.UID][]byte, error) {
	bodies := make(map[imap.UID][]byte, len(uids))
	limit := s.opts.MaxMessageBytes
	err := s.within(ctx, s.opts.FetchTimeout, "fetch", func() error {
		cmd := s.c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{
			UID:         true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		})
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			var uid imap.UID
			var body []byte
			var got bool
			for item := msg.Next(); item != nil; item = msg.Next() {
				switch it := item.(type) {
				case imapclient.FetchItemDataUID:
					uid = it.UID
				case imapclient.FetchItemDataBodySection:
					if it.Literal == nil {
						continue
					}
					b, err := readLiteral(it.Literal, limit)
					if err != nil {
						// The connection broke inside the literal. Not
						// cmd.Close: it would read the rest of the literal
						// while the client's reader goes on.
						_ = s.c.Close()
						return err
					}
					got, body = true, b
				}
			}
			if uid != 0 && got {
				bodies[uid] = body
			}
		}
		return cmd.Close()
	})
	if err != nil {
		return nil, err
	}
	return bodies, nil
}
