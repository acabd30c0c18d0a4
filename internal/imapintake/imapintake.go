// Package imapintake takes reports from an IMAP mailbox (IMAP4rev1, RFC
// 3501): it reads each message of a folder, hands its bytes to a Sink that
// stores every report in it, and moves the message out of the folder once
// the Sink has answered: to the processed folder when its reports are
// committed, to the failed folder when it holds none. ImportOnce empties a
// folder once (`moat import imap://...`); a Poller keeps doing it, woken by
// IDLE (RFC 2177) where the server offers it; Part runs the pollers of the
// configuration in `moat serve`.
//
// No report is lost and none is stored twice:
//
//   - Messages are read with BODY.PEEK[] (RFC 3501 §6.4.5), which does not
//     set \Seen, and leave the folder only by the move that follows the
//     Sink's answer (MOVE, RFC 6851; else COPY, STORE \Deleted and UID
//     EXPUNGE, RFC 4315).
//   - A failure at any step before the move (a cut connection, a timeout,
//     the store down, a crash) leaves the message in the folder, and the
//     next pass reads it again. Its reports that were committed already are
//     then found by the store as duplicates (the same organization and
//     report id, or the same bytes) and not stored again.
//   - A message the Sink fails to store stays in the folder; the pass goes
//     on with the next messages unless no message of the batch could be
//     stored (the store is down).
//   - Messages are named by UID (RFC 3501 §2.3.1.1), never by sequence
//     number, so that expunges by other clients change nothing. A message
//     answered but not yet moved is remembered by UID within its folder's
//     UIDVALIDITY, so that a later pass only moves it.
package imapintake

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/moatmail/moat/internal/config"
	"github.com/moatmail/moat/internal/intake"
)

// Errors. Each names what failed; nothing is lost by any of them: every
// message not moved stays in the folder for the next pass.
var (
	// ErrURL: the mailbox URL is not valid; the message says why.
	ErrURL = errors.New("imapintake: invalid mailbox URL")
	// ErrConnect: the server could not be reached, or TLS failed (an
	// untrusted certificate, STARTTLS refused). Check the URL and the CA
	// file; a Poller retries with backoff.
	ErrConnect = errors.New("imapintake: cannot connect")
	// ErrLogin: the server refused the user name and password.
	ErrLogin = errors.New("imapintake: login refused")
	// ErrFolder: the folder could not be selected, or the processed or
	// failed folder could not be created or moved to.
	ErrFolder = errors.New("imapintake: folder")
	// ErrConnection: the connection broke or a command got no answer in
	// time, in the middle of the work.
	ErrConnection = errors.New("imapintake: connection failed")
	// ErrSink: the Sink failed temporarily (the store is down) for a
	// message, which stays in the folder.
	ErrSink = errors.New("imapintake: storing failed")
)

// Sink stores the reports of one mail message. intake.MailSink is the
// TLS-RPT one.
type Sink interface {
	// StoreMail stores every report in raw, one whole message as fetched
	// (RFC 5322), and returns once they are committed. detail says where
	// the message came from (mailbox, UIDVALIDITY, UID), for the stored
	// reports.
	//
	// A nil error comes with a final answer: the reports are committed
	// (the message is moved to the processed folder), or the outcome's
	// Unstorable says why the message holds none to store (it is moved to
	// the failed folder). An error is temporary: the message stays and is
	// offered again later, when the reports committed already must count
	// as duplicates. It must be safe for concurrent use.
	StoreMail(ctx context.Context, raw []byte, detail string) (intake.MailOutcome, error)
}

var _ Sink = (*intake.MailSink)(nil)

// Opts are the optional settings of ImportOnce and NewPoller; the zero
// value of each field means its default.
type Opts struct {
	// ProcessedFolder receives each message whose reports are committed.
	// "/" separates levels, translated to the server's delimiter. Created
	// when absent. Default config.DefaultIMAPProcessed (Moat/Processed).
	ProcessedFolder string
	// FailedFolder receives each message that holds no report or is too
	// large, the reason logged. Default config.DefaultIMAPFailed
	// (Moat/Failed).
	FailedFolder string
	// CAFile is a PEM file of roots trusted besides the system's (a private
	// CA). Empty: the system roots only.
	CAFile string
	// DialTimeout bounds connecting, the TLS handshake and the greeting.
	// Default 30 seconds.
	DialTimeout time.Duration
	// CommandTimeout bounds the answer to each command (login, select,
	// search, move). Default 1 minute.
	CommandTimeout time.Duration
	// FetchTimeout bounds the fetch of one batch of messages. Default 5
	// minutes.
	FetchTimeout time.Duration
	// StoreTimeout bounds the Sink's answer for one message. Default 2
	// minutes.
	StoreTimeout time.Duration
	// MaxMessageBytes is the largest message read; a larger one is moved to
	// the failed folder unread. Default 20 MiB (twice the default
	// intake.max_report_size, as the SMTP intake).
	MaxMessageBytes int64
	// BatchMessages is the largest number of messages fetched at once and
	// handed to the Sink together (their reports share commits). Default
	// 16.
	BatchMessages int
	// BatchBytes bounds the size of a batch (one larger message is a batch
	// of its own). Default 32 MiB.
	BatchBytes int64
	// PollInterval is how often a Poller looks at the folder without IDLE,
	// and the longest it idles before it looks anyway. Default
	// config.DefaultIMAPPollInterval (1 minute).
	PollInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait of a Poller before it
	// connects again after a failure; it doubles from the one to the
	// other. Defaults 1 second and 5 minutes.
	MinBackoff, MaxBackoff time.Duration
	// OnPass, when set, is called by a Poller after each pass over the
	// folder with what it did and its error (for tests and metrics).
	OnPass func(Stats, error)
}

func (o Opts) withDefaults() Opts {
	if o.ProcessedFolder == "" {
		o.ProcessedFolder = config.DefaultIMAPProcessed
	}
	if o.FailedFolder == "" {
		o.FailedFolder = config.DefaultIMAPFailed
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 30 * time.Second
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = time.Minute
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = 5 * time.Minute
	}
	if o.StoreTimeout <= 0 {
		o.StoreTimeout = 2 * time.Minute
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 20 << 20
	}
	if o.BatchMessages <= 0 {
		o.BatchMessages = 16
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 32 << 20
	}
	if o.PollInterval <= 0 {
		o.PollInterval = config.DefaultIMAPPollInterval
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Minute, o.MinBackoff)
	}
	return o
}

// Stats says what a pass over a folder did.
type Stats struct {
	Messages   int // messages read (or found too large)
	Reports    int // reports newly stored, invalid ones included
	Invalid    int // of Reports: kept, but they could not be parsed
	Duplicates int // reports stored before, not stored again
	Processed  int // messages moved to the processed folder
	Failed     int // messages moved to the failed folder
	// NotReports are the messages without a report, moved to the failed
	// folder.
	NotReports []Issue
	// Errors are the messages too large (moved to the failed folder) and
	// those that could not be stored (left in the folder).
	Errors []Issue
}

// Issue is a message that was not stored, and why.
type Issue struct {
	UID    uint32
	Reason string
}

// ParseURL parses a mailbox URL, imaps://USER[:PASSWORD]@HOST[:PORT]/FOLDER
// or imap://...[?starttls=1] (see config.ParseIMAPURL).
func ParseURL(s string) (config.IMAPURL, error) {
	u, err := config.ParseIMAPURL(s)
	if err != nil {
		return config.IMAPURL{}, fmt.Errorf("%w: %w", ErrURL, err)
	}
	return u, nil
}

// tlsConfig verifies the server's certificate for mb.Host against the
// system roots and the roots of caFile.
func tlsConfig(mb config.IMAPURL, caFile string) (*tls.Config, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("%w: CA file: %w", ErrConnect, err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: CA file %s: no PEM certificate in it", ErrConnect, caFile)
		}
	}
	return &tls.Config{ServerName: mb.Host, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// memo remembers, within one UIDVALIDITY of the folder, the messages the
// Sink has answered whose move has not succeeded yet: a later pass moves
// them without storing them again. Owned by one goroutine.
type memo struct {
	uidValidity uint32
	moves       map[imap.UID]bool // true: to the processed folder; false: to the failed one
}

// reset forgets everything when the folder's UIDVALIDITY is not the one
// the memo was made for: its UIDs may name other messages now (RFC 3501
// §2.3.1.1). UIDVALIDITY 0 (not sent) keeps nothing.
func (m *memo) reset(uidValidity uint32) {
	if m.uidValidity != uidValidity || uidValidity == 0 || m.moves == nil {
		m.uidValidity = uidValidity
		m.moves = map[imap.UID]bool{}
	}
}
