package imapintake

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/moatmail/moat/internal/config"
)

// session is one logged-in connection with the folder selected.
type session struct {
	c    *imapclient.Client
	mb   config.IMAPURL
	opts Opts

	caps              imap.CapSet // after login
	processed, failed string      // the folders' names on the server
	uidValidity       uint32
	// exists is signalled when the server reports new messages (an
	// untagged EXISTS outside SELECT), during IDLE or any command.
	exists chan struct{}
}

// connect opens a session: TCP, TLS (implicit or STARTTLS), greeting,
// login, the processed and failed folders created when absent, the folder
// selected.
func connect(ctx context.Context, mb config.IMAPURL, password string, tc *tls.Config, opts Opts) (*session, error) {
	d := net.Dialer{Timeout: opts.DialTimeout}
	octx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
	defer cancel()
	raw, err := d.DialContext(octx, "tcp", mb.Addr())
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConnect, mb.Addr(), err)
	}
	// Until the greeting is in (and STARTTLS done), a silent server is cut
	// off at the dial deadline.
	stopGuard := context.AfterFunc(octx, func() { _ = raw.Close() })
	s := &session{mb: mb, opts: opts, exists: make(chan struct{}, 1)}
	options := &imapclient.Options{
		TLSConfig: tc,
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case s.exists <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	conn := raw
	if mb.TLS {
		// RFC 8314 §3.2: implicit TLS, the certificate checked for the
		// host name of the URL.
		tc = tc.Clone()
		tc.NextProtos = []string{"imap"} // IMAP's ALPN protocol id (IANA registry)
		tconn := tls.Client(raw, tc)
		if err := tconn.HandshakeContext(octx); err != nil {
			stopGuard()
			_ = raw.Close()
			return nil, fmt.Errorf("%w: %s: TLS: %w", ErrConnect, mb.Addr(), err)
		}
		conn = tconn
	}
	if mb.StartTLS {
		// RFC 3501 §6.2.1: STARTTLS before any credential; a refusal or a
		// PREAUTH greeting ends the connection (imapclient.NewStartTLS).
		s.c, err = imapclient.NewStartTLS(conn, options)
		if err != nil {
			stopGuard()
			_ = raw.Close()
			return nil, fmt.Errorf("%w: %s: STARTTLS: %w", ErrConnect, mb.Addr(), err)
		}
	} else {
		s.c = imapclient.New(conn, options)
		if err := s.c.WaitGreeting(); err != nil {
			stopGuard()
			_ = s.c.Close()
			return nil, fmt.Errorf("%w: %s: greeting: %w", ErrConnect, mb.Addr(), err)
		}
	}
	if !stopGuard() {
		_ = s.c.Close()
		return nil, fmt.Errorf("%w: %s: no greeting within %s", ErrConnect, mb.Addr(), opts.DialTimeout)
	}
	if err := s.open(ctx, password); err != nil {
		_ = s.c.Close()
		return nil, err
	}
	return s, nil
}

// open logs in, makes sure the destination folders exist and selects the
// folder.
func (s *session) open(ctx context.Context, password string) error {
	err := s.within(ctx, s.opts.CommandTimeout, "login", func() error { return s.c.Login(s.mb.User, password).Wait() })
	var ie *imap.Error
	if errors.As(err, &ie) {
		return fmt.Errorf("%w: %s as %s: %s", ErrLogin, s.mb.Addr(), s.mb.User, ie.Text)
	}
	if err != nil {
		return err
	}
	// RFC 3501 §6.2.3: the capabilities may differ once logged in; the
	// server usually sends them with its answer to LOGIN.
	_ = s.within(ctx, s.opts.CommandTimeout, "capability", func() error {
		s.caps = s.c.Caps()
		return nil
	})
	var delim rune
	err = s.within(ctx, s.opts.CommandTimeout, "list", func() error {
		// RFC 3501 §6.3.8: an empty mailbox name asks for the hierarchy
		// delimiter.
		ls, err := s.c.List("", "", nil).Collect()
		if err == nil && len(ls) > 0 {
			delim = ls[0].Delim
		}
		return err
	})
	if err != nil {
		return err
	}
	name := func(f string) string {
		if delim == 0 || delim == '/' {
			return f
		}
		return strings.ReplaceAll(f, "/", string(delim))
	}
	s.processed, s.failed = name(s.opts.ProcessedFolder), name(s.opts.FailedFolder)
	for _, f := range []string{s.processed, s.failed} {
		if err := s.ensureFolder(ctx, f); err != nil {
			return err
		}
	}
	folder := name(s.mb.Folder)
	var sel *imap.SelectData
	err = s.within(ctx, s.opts.CommandTimeout, "select", func() error {
		var err error
		sel, err = s.c.Select(folder, nil).Wait()
		return err
	})
	if errors.As(err, &ie) {
		return fmt.Errorf("%w: select %q: %s", ErrFolder, folder, ie.Text)
	}
	if err != nil {
		return err
	}
	s.uidValidity = sel.UIDValidity
	return nil
}

// ensureFolder creates folder unless it exists.
func (s *session) ensureFolder(ctx context.Context, folder string) error {
	exists := func() (bool, error) {
		var found bool
		err := s.within(ctx, s.opts.CommandTimeout, "list", func() error {
			ls, err := s.c.List("", folder, nil).Collect()
			found = len(ls) > 0
			return err
		})
		return found, err
	}
	if ok, err := exists(); ok || err != nil {
		return err
	}
	// RFC 3501 §6.3.3: CREATE makes the superior levels as needed.
	err := s.within(ctx, s.opts.CommandTimeout, "create", func() error { return s.c.Create(folder, nil).Wait() })
	var ie *imap.Error
	if errors.As(err, &ie) {
		// Made by another client meanwhile (ALREADYEXISTS), or refused.
		if ok, lerr := exists(); ok || lerr != nil {
			return lerr
		}
		return fmt.Errorf("%w: create %q: %s", ErrFolder, folder, ie.Text)
	}
	return err
}

// within runs fn, which waits for the server, and closes the connection
// when ctx ends or d passes before fn returns: every wait is bounded, and
// a command cut off fails at once. A failure of the connection gives
// ErrConnection; a NO or BAD answer an *imap.Error wrapped with what.
func (s *session) within(ctx context.Context, d time.Duration, what string, fn func() error) error {
	tctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	stop := context.AfterFunc(tctx, func() { _ = s.c.Close() })
	err := fn()
	fired := !stop()
	if err == nil {
		return nil
	}
	if fired {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %s: %w", ErrConnection, what, context.Cause(ctx))
		}
		return fmt.Errorf("%w: %s: no answer within %s", ErrConnection, what, d)
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrConnection, what, err)
}

// move moves the messages uids to folder: MOVE (RFC 6851 §3.1) where the
// server offers it, else UID COPY, UID STORE +FLAGS.SILENT (\Deleted) and
// UID EXPUNGE (RFC 4315 §2.1) of just those, or EXPUNGE (RFC 3501 §6.4.3,
// which removes every message flagged \Deleted) without UIDPLUS. A folder
// deleted meanwhile (TRYCREATE, RFC 3501 §6.4.7) is created again once.
// ctx's cancellation does not cut a move short: it is bounded by the
// command timeout alone.
func (s *session) move(ctx context.Context, uids imap.UIDSet, folder string) error {
	ctx = context.WithoutCancel(ctx)
	err := s.moveOnce(ctx, uids, folder)
	var ie *imap.Error
	if errors.As(err, &ie) && ie.Code == imap.ResponseCodeTryCreate {
		if err := s.ensureFolder(ctx, folder); err != nil {
			return err
		}
		err = s.moveOnce(ctx, uids, folder)
	}
	if errors.As(err, &ie) {
		return fmt.Errorf("%w: move to %q: %w", ErrFolder, folder, err)
	}
	return err
}

func (s *session) moveOnce(ctx context.Context, uids imap.UIDSet, folder string) error {
	caps := s.caps
	t := s.opts.CommandTimeout
	if caps.Has(imap.CapMove) {
		return s.within(ctx, t, "move", func() error {
			_, err := s.c.Move(uids, folder).Wait()
			return err
		})
	}
	if err := s.within(ctx, t, "copy", func() error {
		_, err := s.c.Copy(uids, folder).Wait()
		return err
	}); err != nil {
		return err
	}
	// From here the message is in both folders: a failure leaves a copy
	// in the destination and the original in place, read again later (its
	// reports are then duplicates).
	if err := s.within(ctx, t, "store", func() error {
		return s.c.Store(uids, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
	}); err != nil {
		return err
	}
	if caps.Has(imap.CapUIDPlus) {
		return s.within(ctx, t, "uid expunge", func() error { return s.c.UIDExpunge(uids).Close() })
	}
	return s.within(ctx, t, "expunge", func() error { return s.c.Expunge().Close() })
}

// logout ends the session politely, bounded by the command timeout.
func (s *session) logout() {
	_ = s.within(context.Background(), min(s.opts.CommandTimeout, 5*time.Second), "logout", func() error { return s.c.Logout().Wait() })
	_ = s.c.Close()
}
