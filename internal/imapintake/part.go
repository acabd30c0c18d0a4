package imapintake

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/moatmail/moat/internal/config"
	"github.com/moatmail/moat/internal/intake"
	"github.com/moatmail/moat/internal/server"
)

// Part is the IMAP intake of `moat serve`: a Poller per intake.imap entry,
// storing through the system's ingester. It is made by NewPart's PartFunc
// and started after the ingester, so stopped before it: the answers
// awaited when it stops are committed.
type Part struct {
	log     *slog.Logger
	pollers []*Poller

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ server.Part = (*Part)(nil)

// NewPart returns the PartFunc of the pollers of entries (validated by
// config.Validate). An entry's password is the URL's, else its password,
// else its password_file's first line, else defaultPassword
// (MOAT_IMAP_PASSWORD); a missing password, an unreadable password or CA
// file fails the start, naming the entry.
func NewPart(log *slog.Logger, entries []config.IMAP, defaultPassword string) server.PartFunc {
	return func(env *server.Env) (server.Part, error) {
		p := &Part{log: log}
		sink := intake.NewMailSink(env.Ingester, intake.SourceIMAP)
		for i, e := range entries {
			field := fmt.Sprintf("intake.imap[%d]", i)
			mb, err := ParseURL(e.URL)
			if err != nil {
				return nil, fmt.Errorf("%s.url: %w", field, err)
			}
			password, err := entryPassword(mb, e, defaultPassword)
			if err != nil {
				return nil, fmt.Errorf("%s (%s): %w", field, mb, err)
			}
			poller, err := NewPoller(log, mb, password, sink, Opts{
				ProcessedFolder: e.ProcessedFolder, FailedFolder: e.FailedFolder,
				PollInterval: e.PollInterval, CAFile: e.CAFile,
				MaxMessageBytes: 2 * env.Config.Intake.MaxReportSize,
			})
			if err != nil {
				return nil, fmt.Errorf("%s (%s): %w", field, mb, err)
			}
			p.pollers = append(p.pollers, poller)
		}
		return p, nil
	}
}

// entryPassword picks the password of an entry.
func entryPassword(mb config.IMAPURL, e config.IMAP, fallback string) (string, error) {
	switch {
	case mb.Password != "":
		return mb.Password, nil
	case e.Password != "":
		return e.Password, nil
	case e.PasswordFile != "":
		b, err := os.ReadFile(e.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("password_file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		if line = strings.TrimRight(line, "\r"); line == "" {
			return "", fmt.Errorf("password_file %s: empty", e.PasswordFile)
		}
		return line, nil
	case fallback != "":
		return fallback, nil
	}
	return "", fmt.Errorf("%w: no password (url, password, password_file or MOAT_IMAP_PASSWORD)", ErrLogin)
}

// Name implements server.Part.
func (*Part) Name() string { return "imap intake" }

// Start implements server.Part: it starts the pollers and returns. A
// server that cannot be reached does not fail the start: its poller logs
// and tries again.
func (p *Part) Start(ctx context.Context, env *server.Env) error {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	for _, poller := range p.pollers {
		p.wg.Go(func() {
			if err := poller.Run(rctx); err != nil && rctx.Err() == nil {
				env.Fail(p.Name(), err)
			}
		})
	}
	p.log.Info("imap intake started", "mailboxes", len(p.pollers))
	return nil
}

// Stop implements server.Part: it stops the pollers and waits for them
// (the batch in progress is finished) until ctx ends.
func (p *Part) Stop(ctx context.Context) error {
	p.cancel()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("imap intake did not stop in time: %w", ctx.Err())
	}
}
