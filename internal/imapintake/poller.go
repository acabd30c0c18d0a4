package imapintake

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/moatmail/moat/internal/config"
)

// Poller keeps taking reports from one folder: a pass over it (as
// ImportOnce), then a wait for new mail, then another pass, until stopped.
// It waits with IDLE (RFC 2177) where the server offers it, leaving IDLE
// at least every PollInterval to look anyway, and otherwise polls every
// PollInterval. After a failure (connection, login, folder, store) it
// connects again after a backoff growing from MinBackoff to MaxBackoff.
type Poller struct {
	log      *slog.Logger
	mb       config.IMAPURL
	password string
	sink     Sink
	opts     Opts
	tc       *tls.Config
	memo     memo
}

// NewPoller returns a poller of mb's folder storing through sink.
// password is used when mb has none. log receives a line per message and
// per failure; nil discards. It fails only when Opts.CAFile cannot be
// read.
func NewPoller(log *slog.Logger, mb config.IMAPURL, password string, sink Sink, opts Opts) (*Poller, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	if mb.Password != "" {
		password = mb.Password
	}
	tc, err := tlsConfig(mb, opts.CAFile)
	if err != nil {
		return nil, err
	}
	return &Poller{log: log, mb: mb, password: password, sink: sink, opts: opts, tc: tc}, nil
}

// Run works until ctx ends, then returns nil. A stop does not cut short
// the sink's answers and the moves of the batch in progress (each bounded
// by its timeout); a fetch or a wait is cut at once.
func (p *Poller) Run(ctx context.Context) error {
	backoff := p.opts.MinBackoff
	for {
		worked, err := p.session(ctx)
		select {
		case <-ctx.Done():
			return nil // stopped: whatever failed, failed because of it
		default:
		}
		if worked {
			backoff = p.opts.MinBackoff
		}
		// A little jitter keeps many pollers of one server apart.
		wait := backoff/2 + rand.N(backoff/2+1) //nolint:gosec // jitter, not a secret
		p.log.Warn("imap intake: connecting again later", "mailbox", p.mb.String(), "err", err, "in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, p.opts.MaxBackoff)
	}
}

// session connects and works until a failure or ctx's end. worked says
// whether a pass succeeded (then the backoff starts again from its
// least).
func (p *Poller) session(ctx context.Context) (bool, error) {
	s, err := connect(ctx, p.mb, p.password, p.tc, p.opts)
	if err != nil {
		return false, err
	}
	defer s.logout()
	p.memo.reset(s.uidValidity)
	idle := s.caps.Has(imap.CapIdle) // RFC 2177
	p.log.Info("imap intake: connected", "mailbox", p.mb.String(), "uidvalidity", s.uidValidity, "idle", idle)
	worked := false
	for {
		var st Stats
		err := s.pass(ctx, p.log, p.sink, &p.memo, &st)
		if p.opts.OnPass != nil {
			p.opts.OnPass(st, err)
		}
		if err != nil || ctx.Err() != nil {
			return worked, err
		}
		worked = true
		if idle {
			err = s.idle(ctx, p.opts.PollInterval)
		} else {
			err = s.sleep(ctx, p.opts.PollInterval)
		}
		if err != nil || ctx.Err() != nil {
			return worked, err
		}
	}
}

// idle waits in IDLE (RFC 2177) until the server reports new messages, d
// passes, or ctx ends.
func (s *session) idle(ctx context.Context, d time.Duration) error {
	select {
	case <-s.exists: // mail came during the pass
		return nil
	default:
	}
	var cmd interface {
		Close() error
		Wait() error
	}
	err := s.within(ctx, s.opts.CommandTimeout, "idle", func() error {
		c, err := s.c.Idle()
		if err == nil {
			cmd = c
		}
		return err
	})
	if err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.exists:
	case <-t.C:
	case <-ctx.Done():
	case <-s.c.Closed():
		return errors.Join(ErrConnection, errors.New("connection closed while idling"))
	}
	// RFC 2177: DONE ends the IDLE command; its tagged answer follows.
	return s.within(context.WithoutCancel(ctx), s.opts.CommandTimeout, "idle done", func() error {
		if err := cmd.Close(); err != nil {
			return err
		}
		return cmd.Wait()
	})
}

// sleep waits d or until ctx ends, for a server without IDLE.
func (s *session) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-s.c.Closed():
		return errors.Join(ErrConnection, errors.New("connection closed"))
	}
	return nil
}
